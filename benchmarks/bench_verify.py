"""Co-simulation throughput: vectors/s of the batch engine and the cocotb bench for lanes 1 and 4, next to the golden model.

For each lane count the update unit (default spec, B = 12) is built (cached) for both engines and the random
test runs twice per engine: without stalls (the simulator's ceiling) and with random valid/ready stalls. The
cocotb bench runs ``--vectors`` vectors, the batch engine (:mod:`lnsim_testbenches.batch`: the unit in a C++
harness, two instances on the two cores, checked in NumPy) ``--batch-vectors``. Next to each cocotb rate stands
the golden model's rate on the same vectors, as the bench computed them (serial kernel, one call per step of
2048 elements), and the golden model's rate on one large array (parallel kernel), for scale.

Usage: python benchmarks/bench_verify.py [--vectors 400000] [--batch-vectors 10000000] [--seed 0]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from lnsim import tables
from lnsim.golden import update_inplace
from lnsim.spec import LNSFormat, Spec
from lnsim_testbenches import runner
from lnsim_testbenches.batch import run_tests
from lnsim_testbenches.batch_build import build_batch


def golden_bulk_rate(spec: Spec, n: int = 4_000_000) -> float:
    """Golden updates/s on one array of ``n`` random elements (parallel kernel, best of 3)."""
    rng = np.random.default_rng(0)
    sw = rng.integers(0, 2, n).astype(np.uint8)
    k0 = rng.integers(0, spec.fmt.levels, n).astype(spec.fmt.code_dtype)
    g = (rng.standard_normal(n).astype(np.float32).view(np.uint32) >> 16).astype(np.uint16)
    st0 = np.zeros(n, np.uint32)
    log_eta, log_bc = tables.log_eta_term(spec), tables.bias_correction_term(spec, 1)
    best = float("inf")
    for _ in range(4):
        k, st = k0.copy(), st0.copy()
        t0 = time.perf_counter()
        update_inplace(spec, sw, k, g, st, log_eta=log_eta, log_bc=log_bc)
        best = min(best, time.perf_counter() - t0)
    return n / best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--vectors", type=int, default=400_000)
    ap.add_argument("--batch-vectors", type=int, default=10_000_000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    spec = Spec(LNSFormat(bits=12, eta0=0.001))
    print(f"{spec.fmt.describe()}, bfloat16 gradients; {args.vectors:,} random vectors per cocotb run, "
          f"{args.batch_vectors:,} per batch run\n")
    print(f"{'lanes':>5}  {'stalls':<7} {'batch vectors/s':>16} {'per lane':>10} {'cocotb vectors/s':>17} "
          f"{'cycles/s':>10} {'golden, same vectors':>21}")
    for lanes in (1, 4):
        t0 = time.perf_counter()
        build, latency = runner.build_unit(spec, lanes=lanes)
        lib, _ = build_batch(spec, lanes=lanes)
        built = time.perf_counter() - t0
        for stalls in ("none", "random"):
            b = run_tests(lib, spec, lanes=lanes, latency=latency, tests=["random_vectors"], vectors=args.batch_vectors,
                          seed=args.seed, stalls=stalls)
            bt = b["tests"]["random_vectors"]
            if bt["mismatches"] or bt["errors"]:
                raise SystemExit(f"batch engine: {bt['mismatches']} mismatches, errors {bt['errors']}")
            params = {"spec": spec.to_dict(), "lanes": lanes, "vectors": args.vectors, "seed": args.seed,
                      "latency": latency, "stalls": stalls}
            r = runner.run(build, "lnsim_testbenches.update_unit_tb", testcase="random_vectors", params=params)
            t = r["tests"]["random_vectors"]
            if t["mismatches"]:
                raise SystemExit(f"mismatches: {t['first_mismatches'][:1]}")
            golden = t["vectors"] / t["golden_seconds"] if t["golden_seconds"] else float("nan")
            print(f"{lanes:>5}  {stalls:<7} {bt['vectors_per_second']:>16,.0f} {bt['vectors_per_second'] / lanes:>10,.0f} "
                  f"{t['vectors_per_second']:>17,.0f} {t['cycles'] / t['seconds']:>10,.0f} {golden:>21,.0f}")
        print(f"{'':>5}  (builds {'cached' if build.cached and lib.cached else f'{built:.0f} s'})")
    print(f"\ngolden model, one array of 4,000,000 (parallel): {golden_bulk_rate(spec):,.0f} updates/s")


if __name__ == "__main__":
    main()
