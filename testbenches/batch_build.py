"""The batch engine's build: the update unit Verilated with the C++ harness ``batch_harness.cpp`` into a shared library.

Unlike a cocotb build (:mod:`lnsim_testbenches.cache`) the model has no VPI and no public signals, so Verilator and
the C++ compiler optimise it whole (``-O2``); the harness packs the payload ports and runs the stream protocol in
C++, and :mod:`lnsim_testbenches.batch` loads the library with ctypes. A library lives in
``<cache>/verilator/<top>-batch-<hash>`` (the hash over the Verilog text, the harness source, the tool versions
and the build flags), built in a temporary directory and renamed into place; its Verilator runtime objects
(compiled ``-fPIC``, so apart from the cocotb builds' ones) are cached in a ``runtime-<hash>`` directory of their
own. The memo ``<cache>/memo/<key>.json`` maps (spec, lanes, table overrides, RTL sources, tool versions,
harness) to a library, as :func:`lnsim_testbenches.unit_build.build_unit` does for cocotb builds.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from lnsim.files import atomic_write
from lnsim_testbenches.cache import BUILD_ARGS, _runtime_dir, build_directory, cache_root
from lnsim_testbenches.simulator import BenchError, check_tools, tool_versions, verilator_executable
from lnsim_testbenches.unit_build import UNIT_TOPLEVEL, _rtl_fingerprint, unit_verilog

__all__ = ["HARNESS", "BATCH_MAKE_OVERRIDES", "LIBRARY", "BatchBuild", "build_batch"]

#: The C++ harness (package data of ``lnsim_testbenches``).
HARNESS = Path(__file__).with_name("batch_harness.cpp")
#: Make variables of a batch build: the model and the runtime at -O2 (the simulation's speed is the model's now).
BATCH_MAKE_OVERRIDES = "CFG_CXXFLAGS_PCH_I=-include OPT_FAST=-O2 OPT_SLOW=-O1 OPT_GLOBAL=-O2"
#: Verilator options of a batch build besides :data:`lnsim_testbenches.cache.BUILD_ARGS`: position-independent
#: code, a shared object whose symbols bind within itself (several configurations load side by side).
_ARGS = ("-CFLAGS", "-fPIC", "-LDFLAGS", "-shared -Wl,-Bsymbolic")
#: File name of the library in a build directory.
LIBRARY = "liblnsim_batch.so"
#: The update unit's Verilog port names (docs/rtl.md) by the harness's macro names (``LNSIM_PORT_<NAME>``).
PORTS = {"CLK": "clk", "RST": "rst", "I_VALID": "i__valid", "I_READY": "i__ready", "I_PAYLOAD": "i__payload",
         "O_VALID": "o__valid", "O_READY": "o__ready", "O_PAYLOAD": "o__payload", "LOG_ETA": "log_eta",
         "LOG_BC": "log_bc"}


def cxx_name(name: str) -> str:
    """The C++ member name Verilator gives the Verilog port ``name``: an underscore right after another is written
    ``__05F`` (``i__valid`` -> ``i___05Fvalid``)."""
    out = []
    for i, c in enumerate(name):
        out.append("__05F" if c == "_" and i > 0 and name[i - 1] == "_" else c)
    return "".join(out)


def port_defines(verilog: str) -> str:
    """``-D`` definitions of the harness's port macros for ``verilog``.

    Raises
    ------
    BenchError
        If the Verilog declares no port of one of the names in :data:`PORTS`.
    """
    import re

    declared = set(re.findall(r"^\s*(?:input|output)\b[^;]*?\\?([A-Za-z_][A-Za-z0-9_$]*)\s*;", verilog, re.M))
    missing = [v for v in PORTS.values() if v not in declared]
    if missing:
        raise BenchError(f"the update unit's Verilog has no port {missing[0]!r} (the batch harness drives "
                         f"{', '.join(PORTS.values())}; lnsim_testbenches.batch_build.PORTS)")
    return " ".join(f"-DLNSIM_PORT_{macro}={cxx_name(port)}" for macro, port in PORTS.items())


@dataclass(frozen=True)
class BatchBuild:
    """A batch library ready to load: ``directory / LIBRARY``."""

    directory: Path
    #: True if the build was found in the cache.
    cached: bool
    #: Time spent building (0 if cached).
    seconds: float

    @property
    def library(self) -> Path:
        return self.directory / LIBRARY


def _args() -> list[str]:
    return list(BUILD_ARGS) + list(_ARGS)


def build_library(verilog: str, *, log=None) -> BatchBuild:
    """Verilate ``verilog`` (top module ``lnsim_update_unit``) with the harness into a shared library (cached)."""
    harness = HARNESS.read_text()
    args = _args()
    port_defines(verilog)  # a missing port is an error before any work
    key = hashlib.sha256(json.dumps([verilog, harness, args, tool_versions(), BATCH_MAKE_OVERRIDES]).encode()
                         ).hexdigest()[:20]
    final = cache_root() / "verilator" / f"{UNIT_TOPLEVEL}-batch-{key}"
    if (final / LIBRARY).is_file():
        return BatchBuild(final, True, 0.0)
    runtime = _runtime_dir(False, args + [BATCH_MAKE_OVERRIDES])
    source = f"{UNIT_TOPLEVEL}.v"
    seconds = build_directory(
        final, files={source: verilog, HARNESS.name: harness}, product=LIBRARY, runtime=runtime, waves=False,
        make_overrides=BATCH_MAKE_OVERRIDES, label="batch model", failure=f"Verilator batch build of {UNIT_TOPLEVEL}",
        log=log,
        verilate=lambda tmp: [str(verilator_executable()), "--cc", "--exe", "-Mdir", str(tmp), "--top-module",
                              UNIT_TOPLEVEL, "--prefix", "Vtop", "-o", LIBRARY, *args, "-CFLAGS",
                              port_defines(verilog), str(tmp / HARNESS.name), str(tmp / source)])
    return BatchBuild(final, False, seconds)


def build_batch(spec, *, lanes: int = 1, log_table=None, antilog_table=None, log=None) -> tuple[BatchBuild, int]:
    """Build (cached) the batch library of the update unit for ``spec`` and ``lanes``; ``(build, latency)``.

    A memo maps the inputs of the Verilog generation and the harness source to the library, so a cached run
    neither elaborates the design nor compiles.

    Raises
    ------
    BenchError
        If a program the build needs is missing (one line, before any work) or the build fails.
    """
    tables = [None if t is None else [int(x) for x in t] for t in (log_table, antilog_table)]
    memo_key = hashlib.sha256(
        json.dumps(["batch", spec.to_dict(), lanes, tables, _rtl_fingerprint(), tool_versions(), _args(),
                    BATCH_MAKE_OVERRIDES, hashlib.sha256(HARNESS.read_bytes()).hexdigest()]).encode()
    ).hexdigest()[:24]
    memo = cache_root() / "memo" / f"{memo_key}.json"
    if memo.is_file():
        try:
            m = json.loads(memo.read_text())
            build = BatchBuild(Path(m["directory"]), True, 0.0)
            if build.library.is_file():
                return build, int(m["latency"])
        except (ValueError, KeyError):
            pass
    check_tools()
    text, latency = unit_verilog(spec, lanes=lanes, log_table=log_table, antilog_table=antilog_table)
    build = build_library(text, log=log)
    memo.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(str(memo), json.dumps({"directory": str(build.directory), "latency": latency}))
    return build, latency
