"""Throughput of the functional coverage classifier (lnsim_testbenches.coverage.classify) against the golden
update of the same vectors, the work ``lnsim verify --coverage`` adds per vector on the host.

Prints vectors/s for the golden model (serial, as the verify engines call it) and for the classifier (its golden
trace plus the NumPy bins) on random default-spec vectors, best of ``--repeat``. Target: the classifier several
times faster than the batch engine's 1-3 million vectors/s, so that ``--coverage`` costs a batch run a fraction of
its time (without ``--coverage`` nothing is counted). The golden model's lean form is far faster still: the
classifier runs the element form, which names every stage value.

Usage: python benchmarks/bench_coverage.py [--n 1000000] [--repeat 5]
"""

from __future__ import annotations

import argparse

import numpy as np
from _timing import best_time

from lnsim import tables
from lnsim.golden import grad_dtype, update_inplace
from lnsim.spec import LNSFormat, Spec
from lnsim_testbenches.coverage import classify


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    spec = Spec(LNSFormat(bits=12, eta0=0.001))
    rng = np.random.default_rng(0)
    n = args.n
    sw = rng.integers(0, 2, n).astype(np.uint8)
    k = rng.integers(0, spec.fmt.code_max + 1, n).astype(spec.fmt.code_dtype)
    g = rng.integers(0, 2**16, n).astype(grad_dtype(spec))
    st = rng.integers(0, 2**32, n, dtype=np.uint64).astype(np.uint32)
    log_eta, log_bc = tables.log_eta_term(spec), tables.bias_correction_term(spec, 3)

    def golden():
        update_inplace(spec, sw, k.copy(), g, st.copy(), log_eta=log_eta, log_bc=log_bc, parallel=False)

    def coverage():
        classify(spec, sw, k, g, st, log_eta, log_bc)

    tg, tc = best_time(golden, args.repeat), best_time(coverage, args.repeat)
    print(f"golden model (serial)   {n / tg:,.0f} vectors/s")
    print(f"coverage classifier     {n / tc:,.0f} vectors/s ({tc / tg:.1f} x the golden model's time)")


if __name__ == "__main__":
    main()
