"""The Verilated-model cache: build Verilog into a cocotb-ready simulator executable once per configuration.

A model lives in ``<cache>/verilator/<top>-<hash>``, the hash taken over the Verilog text, the tool
versions (:func:`lnsim_testbenches.simulator.tool_versions`) and the build arguments (``<cache>`` is
``$LNSIM_CACHE`` or ``~/.cache/lnsim``). A build goes to a temporary directory first and is renamed into
place when done, so an interrupted build never looks finished. ``<cache>/verilator/runtime-<hash>`` keeps
the design-independent Verilator runtime objects of a configuration, copied into each new build.

The build is cocotb's documented Verilator flow ("Extending Existing Build Flows" in cocotb's manual):
``verilator`` with ``--vpi --public-flat-rw --prefix Vtop``, cocotb's ``verilator.cpp`` main and its VPI
library, then ``make -f Vtop.mk``, run here as two subprocesses with their own environment
(:func:`lnsim_testbenches.simulator.simulator_env`), so that the runtime objects can be copied in between
them. The executable is named after the top module, where ``cocotb_tools.runner``'s ``test()`` runs it.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from lnsim_testbenches.simulator import (MAKE_OVERRIDES, BenchError, check_tools, simulator_env, tool_versions,
                                         verilator_executable)

__all__ = ["BUILD_ARGS", "Build", "cache_root", "build_verilog", "build_directory", "verilate_command", "make_command"]

#: Verilator options of every simulation build. ``-Wno-fatal`` keeps Verilator's lint warnings (listed
#: in the build log; :func:`lnsim_testbenches.simulator.lint` is where the Verilog is held to ``-Wall``)
#: from stopping a simulation build; ``--x-assign fast --x-initial fast`` let Verilator pick any value for
#: X (the design is X-free after reset); ``-O3`` is Verilator's own optimisation level.
BUILD_ARGS = ("-Wno-fatal", "--x-assign", "fast", "--x-initial", "fast", "-O3")

#: Parallel compile jobs of a build: the number of cores, at most 4 (as ``cocotb_tools.runner`` does).
_MAX_MAKE_JOBS = 4


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


def verilate_command(source: Path, toplevel: str, build_dir: Path, *, waves: bool, args, ports_only: bool) -> list[str]:
    """The ``verilator`` command line that turns ``source`` into C++ in ``build_dir`` for cocotb.

    cocotb's flags (``--vpi``, the ``Vtop`` prefix, its main ``verilator.cpp`` and VPI library) with every
    signal visible to cocotb (``--public-flat-rw``), or with ``ports_only`` only the top module's
    (``--public-depth 1``); then ``--trace`` if ``waves``, then ``args``.
    """
    import cocotb_tools.config

    libs = cocotb_tools.config.libs_dir
    main = cocotb_tools.config.share_dir / "lib" / "verilator" / "verilator.cpp"
    public = ["--public-depth", "1"] if ports_only else ["--public-flat-rw"]
    return ([str(verilator_executable()), "-cc", "--exe", "-Mdir", str(build_dir), "--top-module", toplevel,
             "--vpi", *public, "--prefix", "Vtop", "-o", toplevel,
             "-LDFLAGS", f"-Wl,-rpath,{libs} -L{libs} -lcocotbvpi_verilator"]
            + (["--trace"] if waves else []) + list(args) + [str(main), str(source)])


def make_command(build_dir: Path, *, waves: bool) -> list[str]:
    """The ``make`` command line that compiles and links the Verilated model in ``build_dir``."""
    jobs = min(_MAX_MAKE_JOBS, multiprocessing.cpu_count())
    return ["make", "-j", str(jobs), "-C", str(build_dir), "-f", "Vtop.mk", f"VM_TRACE={int(waves)}"]


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
        Make only the top module's signals visible to cocotb (``--public-depth 1`` instead of
        ``--public-flat-rw``): with the signals of a gate-level netlist's thousands of cell instances public,
        the B = 8 unit's build took 2.5 minutes instead of 30 s.
    log : callable, optional
        Called with a one-line message when a build starts.

    Returns
    -------
    Build
        The cached model (``cached`` tells whether it was there already).

    Raises
    ------
    BenchError
        If a program the build runs is missing (:func:`lnsim_testbenches.simulator.check_tools`, before any
        work), or Verilator or the C++ compiler fails (the message names the build log).
    """
    args = list(BUILD_ARGS) + list(build_args)
    key = hashlib.sha256(
        json.dumps([verilog, toplevel, waves, args, tool_versions()] + (["ports_only"] if ports_only else [])).encode()
    ).hexdigest()[:20]
    final = cache_root() / "verilator" / f"{toplevel}-{key}{'-trace' if waves else ''}"
    exe = final / toplevel
    if exe.is_file():
        return Build(final, toplevel, waves, True, 0.0)

    runtime = _runtime_dir(waves, args)
    seconds = build_directory(
        final, files={f"{toplevel}.v": verilog}, product=toplevel, runtime=runtime, waves=waves,
        make_overrides=MAKE_OVERRIDES, label="model", failure=f"Verilator build of {toplevel}", log=log,
        verilate=lambda tmp: verilate_command(tmp / f"{toplevel}.v", toplevel, tmp, waves=waves, args=args,
                                              ports_only=ports_only))
    return Build(final, toplevel, waves, False, seconds)


def build_directory(final: Path, *, files: dict, product: str, verilate, runtime: Path, waves: bool,
                    make_overrides: str, label: str, failure: str, log=None) -> float:
    """Build ``product`` into the cache directory ``final``, atomically; the seconds it took.

    ``files`` (name -> text) are written into a temporary directory beside ``final``, ``verilate(tmp)`` is
    the Verilator command run there, then the design-independent runtime objects of ``runtime`` are copied
    in and ``make`` (with ``make_overrides`` added to ``MAKEFLAGS``) compiles. Only ``product``, ``files``
    and ``build.log`` are kept, and the directory is renamed to ``final`` (if another process finished the
    same build first, theirs is kept). ``log`` gets ``building the Verilated <label> <name> (cached
    afterwards)``.

    Raises BenchError for a missing program (before any work) or a failed step: ``"<failure> failed
    (<reason>); log: <final>.failed.log"``. Ctrl-C removes the half build.
    """
    env = simulator_env()
    check_tools(env=env)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f"{final.name}.", suffix=".tmp", dir=final.parent)).resolve()
    for name, text in files.items():
        (tmp / name).write_text(text)
    if log is not None:
        log(f"building the Verilated {label} {final.name} (cached afterwards)")
    t0 = time.perf_counter()
    build_log = tmp / "build.log"
    env["MAKEFLAGS"] = " ".join(filter(None, [env.get("MAKEFLAGS"), make_overrides]))
    # The compilers' temporary files in the build directory: gone with it, even when a build is killed.
    env["TMPDIR"] = str(tmp)
    try:
        with open(build_log, "w") as f:
            _step(verilate(tmp), tmp, env, f)
            _copy_runtime(runtime, tmp)
            _step(make_command(tmp, waves=waves), tmp, env, f)
    except (OSError, subprocess.CalledProcessError) as e:
        kept = final.parent / f"{final.name}.failed.log"
        shutil.copyfile(build_log, kept) if build_log.exists() else None
        shutil.rmtree(tmp, ignore_errors=True)
        raise BenchError(f"{failure} failed ({_reason(e)}); log: {kept}") from None
    except BaseException:  # KeyboardInterrupt: the step's processes are gone (see _step); so is the half build
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    seconds = time.perf_counter() - t0
    _save_runtime(runtime, tmp)
    # Keep only what a run needs (the product) and what a reader wants (sources, log): a build's
    # intermediate C++ and objects take tens of megabytes.
    for p in tmp.iterdir():
        if p.name not in (product, *files, build_log.name):
            shutil.rmtree(p) if p.is_dir() else p.unlink()
    # Publish atomically; if another process finished the same build first, keep theirs.
    try:
        os.rename(tmp, final)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        if not (final / product).is_file():
            raise
    return seconds


def _step(cmd: list[str], cwd: Path, env: dict, log) -> None:
    """Run one build command in ``cwd``, its output (stdout and stderr) appended to the open file ``log``.

    The command runs in a process group of its own, and whatever interrupts the wait (Ctrl-C) kills the whole
    group: ``make``'s compilers too, which would otherwise go on writing into a build directory being removed.
    Raises CalledProcessError for a non-zero exit status.
    """
    log.write(f"$ {subprocess.list2cmdline(cmd)}\n")
    log.flush()
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        rc = proc.wait()
    except BaseException:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()
        raise
    if rc != 0:
        raise subprocess.CalledProcessError(rc, cmd)


def _reason(error: Exception) -> str:
    if isinstance(error, subprocess.CalledProcessError):
        return f"{Path(error.cmd[0]).name} exited with status {error.returncode}"
    return str(error)


def _runtime_dir(waves: bool, args) -> Path:
    """Where the design-independent Verilator runtime objects of this configuration are kept."""
    key = hashlib.sha256(json.dumps([waves, list(args), tool_versions()]).encode()).hexdigest()[:20]
    return cache_root() / "verilator" / f"runtime-{key}"


def _copy_runtime(runtime: Path, build_dir: Path) -> None:
    """Copy the cached runtime objects (``verilated*.o`` and their ``.d``) into ``build_dir``, if there are any.

    They do not depend on the design (only ``verilator.o``, cocotb's main, includes the model's header),
    but ``verilated.mk`` makes them depend on the ``Vtop.mk`` that Verilator has just written, so they are
    copied in between the Verilator and the make steps, with fresh modification times. This saves the
    two thirds of a build spent compiling the runtime.
    """
    if not (runtime / "done").is_file():
        return
    for p in sorted(runtime.glob("verilated*.[od]")):
        shutil.copyfile(p, build_dir / p.name)


def _save_runtime(runtime: Path, build_dir: Path) -> None:
    """Keep ``build_dir``'s runtime objects as the configuration's cached runtime, unless it has one."""
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
