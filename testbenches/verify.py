"""``lnsim verify``: build (cached) and co-simulate the update unit against the golden model (host side).

On a mismatch it also writes the report a designer needs: the first mismatching vectors (inputs, RTL
output, golden output, decoded values), the first pipeline stage whose output differs from the golden
model's stage value (:mod:`lnsim_testbenches.localize`) and a VCD trace of the mismatching vectors
going through the unit.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

from lnsim import tables
from lnsim.spec import Option
from lnsim.validation import check_choice, check_int
from lnsim_testbenches.coverage import merge, never_hit
from lnsim_testbenches.runner import run
from lnsim_testbenches.unit_build import build_unit, fault_tables

__all__ = ["BENCH", "DEFAULT_TESTS", "TEST_LABELS", "VERIFY_OPTIONS", "STALLS", "ENGINES", "exhaustive_skip", "verify"]

#: The options of a run besides the spec and the lanes (``lnsim verify`` takes its flags from these).
VERIFY_OPTIONS = (
    Option(name="vectors", kind=int, default=100_000, bounds=(1, 10**9), help="random vectors (default {default})"),
    Option(name="seed", kind=int, default=0, bounds=(0, 2**63 - 1), help="random seed (default {default})"),
)
_OPTION = {o.name: o for o in VERIFY_OPTIONS}
#: Stall patterns of a run: random valid/ready stalls on both sides, or none.
STALLS = ("random", "none")
#: Engines of a run: the C++ harness with NumPy checking (:mod:`lnsim_testbenches.batch`, the default), or the
#: cocotb bench (a Python loop per cycle, about 30 times slower). A mismatch is replayed through cocotb either way.
ENGINES = ("batch", "cocotb")

#: The update unit's cocotb bench.
BENCH = "lnsim_testbenches.update_unit_tb"
#: Tests of a verify run (``exhaustive_grad`` is added on request).
DEFAULT_TESTS = ("random_vectors", "directed_corners", "reset_mid_stream")
#: What each test's vectors are, as ``lnsim verify`` names them in its count.
TEST_LABELS = {"random_vectors": "random", "directed_corners": "directed corners",
               "reset_mid_stream": "around resets mid-stream", "exhaustive_grad": "exhaustive gradients"}
#: Largest prefix of the random test re-run with a VCD when replaying the vectors alone does not reproduce.
_VCD_PREFIX_LIMIT = 50_000


def exhaustive_skip(spec) -> str | None:
    """Why ``exhaustive=True`` runs no exhaustive test for ``spec`` (its gradients are not 16 bits wide), or None."""
    g = spec.cfg.grad_format
    if g.width == 16:
        return None
    return (f"{g.value} gradients have 2**{g.width} bit patterns; only the 16-bit formats (bfloat16, float16) are "
            f"run exhaustively")


def verify(spec, *, lanes: int = 1, vectors: int = _OPTION["vectors"].default, seed: int = _OPTION["seed"].default,
           report_dir=".", stalls: str = STALLS[0], exhaustive: bool = False, fault: str | None = None, progress=None,
           log=None, engine: str = ENGINES[0], coverage: bool = False) -> dict:
    """Co-simulate ``vectors`` random vectors plus the directed and reset tests; report.

    Parameters
    ----------
    spec : Spec
    lanes, vectors, seed : int
    report_dir : path
        Where the mismatch report and the VCD go (created only on a mismatch).
    stalls : {"random", "none"}
        Random valid/ready stalls on both sides, or none.
    exhaustive : bool
        Also run all 2**16 gradient bit patterns (16-bit gradient formats) for four states; for other formats the
        test is not run and ``skipped`` says why (:func:`exhaustive_skip`).
    fault : str, optional
        Fault injection, ``"antilog:5"`` (:func:`lnsim_testbenches.unit_build.fault_tables`): the RTL is built
        with that table entry changed; the golden model is not.
    progress : callable, optional
        ``progress(test, done, total)`` while the bench runs.
    log : callable, optional
        One-line status messages (build started, VCD re-run).
    engine : {"batch", "cocotb"}
        ``"batch"``: the unit in a compiled C++ harness, the outputs compared with the golden model in NumPy
        (:mod:`lnsim_testbenches.batch`; the same vectors and report); ``"cocotb"``: the cocotb bench. After a
        mismatch in either, the first mismatching vectors are replayed through the cocotb bench for the VCD
        and the first differing stage is located.
    coverage : bool
        Also count the functional coverage bins (:mod:`lnsim_testbenches.coverage`) over every test's vectors:
        ``coverage`` (bin -> hits, None where not applicable, e.g. back-pressure in the batch engine) and
        ``coverage_never_hit`` (the applicable bins with no hit).

    Returns
    -------
    dict
        ``vectors``, ``mismatches``, ``vectors_per_second``, ``seconds``, ``tests`` (per test), ``latency``,
        ``build``, ``skipped`` (test name -> reason), with ``coverage`` the two coverage keys and, after a failure, ``first_mismatches``, ``first_differing_stage``, ``report``, ``vcd``.
    """
    check_int("lanes", lanes, 1)
    vectors = check_int("vectors", vectors, *_OPTION["vectors"].bounds)
    seed = check_int("seed", seed, *_OPTION["seed"].bounds)
    check_choice("stalls", stalls, STALLS)
    check_choice("engine", engine, ENGINES)
    overrides = fault_tables(spec, fault) if fault else {}
    if engine == "batch":
        from lnsim_testbenches.batch_build import build_batch

        build, latency = build_batch(spec, lanes=lanes, log=log, **overrides)
    else:
        build, latency = build_unit(spec, lanes=lanes, log=log, **overrides)
    skipped = {"exhaustive_grad": exhaustive_skip(spec)} if exhaustive and exhaustive_skip(spec) else {}
    tests = list(DEFAULT_TESTS) + (["exhaustive_grad"] if exhaustive and not skipped else [])
    params = {"spec": spec.to_dict(), "lanes": lanes, "vectors": vectors, "seed": seed, "latency": latency,
              "stalls": stalls, "reset_vectors": 4096, "coverage": bool(coverage)}
    with tempfile.TemporaryDirectory(prefix="lnsim-verify-") as tmp:
        if engine == "batch":
            from lnsim_testbenches.batch import run_tests

            results = run_tests(build, spec, lanes=lanes, latency=latency, tests=_bench_order(tests), vectors=vectors,
                                seed=seed, stalls=stalls, reset_vectors=params["reset_vectors"], progress=progress,
                                coverage=coverage)
            Path(tmp, "sim.log").write_text(json.dumps({k: v for k, v in results.items() if k != "tests"}, indent=1)
                                            + "\n")
        else:
            results = run(build, BENCH, testcase=tests, params=params, out_dir=tmp, progress=progress)
        out = {
            "vectors": results.get("vectors", 0),
            "mismatches": results.get("mismatches", 0),
            "vectors_per_second": results.get("vectors_per_second", 0.0),
            "seconds": results.get("seconds", 0.0),
            "tests": {name: {k: v for k, v in t.items() if k not in ("first_mismatches", "functional_coverage")}
                      for name, t in results.get("tests", {}).items()},
            "errors": results.get("errors", []),
            "latency": latency,
            "lanes": lanes,
            "seed": seed,
            "engine": engine,
            "fault": fault,
            "skipped": skipped,
            "build": {"directory": str(build.directory), "cached": build.cached, "seconds": build.seconds},
        }
        if coverage:
            out["coverage"] = merge(t["functional_coverage"] for t in results.get("tests", {}).values()
                                    if "functional_coverage" in t)
            out["coverage_never_hit"] = never_hit(out["coverage"])
        missing = [t for t in tests if t not in results.get("tests", {})]
        failed = out["mismatches"] > 0 or out["errors"] or missing or results.get("tests_failed")
        if not failed:
            return out
        report = Path(report_dir)
        report.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(Path(tmp) / "sim.log", report / "sim.log")
    out["log"] = str(report / "sim.log")
    if missing:
        out["errors"] = out["errors"] + [f"bench error in {', '.join(missing)}: see {out['log']}"]
    first = [m for m in results.get("first_mismatches", []) if "inputs" in m]
    out["first_mismatches"] = results.get("first_mismatches", [])
    if first:
        from lnsim_testbenches.localize import first_differing_stage

        vector = first[0]["inputs"]
        out["first_differing_stage"] = first_differing_stage(spec, vector, **overrides)
        out["vcd"] = _trace(spec, lanes, seed, latency, stalls, first, overrides, report, log)
    path = report / "verify-mismatches.json"
    with open(path, "w") as f:
        json.dump({"spec": tables.spec_summary(spec), **out}, f, indent=1)
        f.write("\n")
    out["report"] = str(path)
    return out


def _bench_order(tests) -> list:
    """``tests`` in the order the cocotb bench defines (and runs) them, so both engines report them alike."""
    order = ("random_vectors", "reset_mid_stream", "directed_corners", "replay", "exhaustive_grad")
    return sorted(tests, key=order.index)


def _trace(spec, lanes, seed, latency, stalls, first, overrides, report: Path, log) -> str | None:
    """A VCD of the mismatching vectors: replayed alone if that reproduces, else the failing test's prefix."""
    build, _ = build_unit(spec, lanes=lanes, waves=True, log=log, **overrides)
    params = {"spec": spec.to_dict(), "lanes": lanes, "seed": seed, "latency": latency, "stalls": stalls,
              "replay": [m["inputs"] for m in first]}
    if log is not None:
        log("writing a VCD trace of the mismatching vectors")
    with tempfile.TemporaryDirectory(prefix="lnsim-trace-") as tmp:
        r = run(build, BENCH, testcase="replay", params=params, out_dir=tmp, waves=True)
        name = "verify-mismatch.vcd"
        if r.get("mismatches", 0) == 0:
            # The failure depends on the stream (neighbours, stalls): re-run the failing test up to it.
            test, index = first[0]["test"], first[0]["vector"]
            if test != "random_vectors" or index > _VCD_PREFIX_LIMIT:
                return None
            params = dict(params, vectors=index + 64 * lanes, replay=None)
            r = run(build, BENCH, testcase=test, params=params, out_dir=tmp, waves=True)
            name = "verify-stream.vcd"
        vcd = Path(tmp) / "dump.vcd"
        if not vcd.is_file():
            return None
        shutil.copyfile(vcd, report / name)
    return str(report / name)
