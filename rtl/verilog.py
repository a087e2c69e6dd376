"""Plain Verilog of the update unit, the weight decoder and the update engine, with a header giving the full configuration."""

from __future__ import annotations

import json
import re

from amaranth.back import rtlil, verilog
from amaranth.lib import data

from lnsim import tables
from lnsim.spec import LNSFormat, Spec

from .decode_unit import DecodeUnit
from .update_engine import UpdateEngine
from .update_unit import LATENCY, UpdateUnit

__all__ = ["generate_verilog", "generate_decoder_verilog", "generate_engine_verilog", "convert", "plain_module_names", "PLAIN_NAME"]

#: A Verilog identifier that needs no escaping (Yosys escapes every name holding a ``$``): a top module's name.
PLAIN_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
#: One submodule name below the top: runs of letters and digits joined by single underscores, so that the
#: ``__`` which joins the names of a module's path cannot occur inside one (the scheme cannot collide).
_PART = re.compile(r"[A-Za-z0-9]+(?:_[A-Za-z0-9]+)*")


def plain_module_names(text: str, top: str) -> str:
    """The RTLIL ``text`` of a design with top module ``top``, each submodule renamed from Amaranth's dotted
    hierarchy path (``top.lane0_log_ratio_lookup.log_g``, an escaped identifier in Verilog) to the path's names
    joined by ``__`` (``top__lane0_log_ratio_lookup__log_g``).

    Only two kinds of RTLIL statement name a module: ``module <name>`` and ``cell <type> <instance>``; the
    rename replaces exactly those tokens, nothing else changes. The instance names (``lane0_...``) are
    Amaranth's submodule names already.

    Raises
    ------
    RuntimeError
        If a submodule's name is not letters and digits joined by single underscores (e.g. Amaranth's
        ``U$0`` for an unnamed submodule): the joined names could then be escaped or coincide.
    """
    prefix = f"\\{top}."
    renames = {}
    for line in text.splitlines():
        words = line.split()
        if words[:1] != ["module"] or words[1] == f"\\{top}":
            continue
        parts = words[1][len(prefix):].split(".") if words[1].startswith(prefix) else []
        bad = [p for p in parts if not _PART.fullmatch(p)]
        if not parts or bad:
            raise RuntimeError(f"module {words[1][1:]!r} below {top!r}: every submodule name must be letters and "
                               f"digits joined by single underscores (not {bad[0] if bad else words[1][1:]!r})")
        renames[words[1]] = "__".join([f"\\{top}", *parts])
    if not renames:
        return text
    lines = []
    for line in text.splitlines(keepends=True):
        words = line.split()
        if words[:1] in (["module"], ["cell"]) and words[1] in renames:
            indent = line[:len(line) - len(line.lstrip())]
            line = indent + " ".join([words[0], renames[words[1]], *words[2:]]) + "\n"
        lines.append(line)
    return "".join(lines)


def _check_name(name) -> None:
    if not isinstance(name, str) or not PLAIN_NAME.fullmatch(name):
        raise ValueError(f"name must be a Verilog identifier (letters, digits, _; not a digit first), not {name!r}")


def convert(elaboratable, name: str) -> str:
    """Verilog of the Amaranth component ``elaboratable`` as module ``name``: ``amaranth.back.verilog.convert``
    (without source locations), every module named by :func:`plain_module_names`.

    The same Yosys steps as Amaranth's own conversion run on the renamed RTLIL, so the Verilog differs from
    ``verilog.convert``'s only in the submodules' names.
    """
    _check_name(name)
    text = plain_module_names(rtlil.convert(elaboratable, name=name, emit_src=False), name)
    return verilog._convert_rtlil_text(text)


def _fields(layout: data.StructLayout) -> str:
    """``name [hi:lo]`` for each field of one lane, from the LSB."""
    return ", ".join(f"{name} [{f.offset + f.width - 1}:{f.offset}]" for name, f in layout)


def _payload_lines(port: str, direction: str, layout: data.StructLayout, lanes: int) -> list[str]:
    L = layout.size
    return [
        f"  {port:<12} {direction:<4} [{lanes * L - 1}:0]  lane j at [j*{L} +: {L}], j = 0..{lanes - 1}; "
        f"per lane from the LSB:",
        f"  {'':<12} {'':<4} {_fields(layout)}",
    ]


def _header(title: str, config: list[str], ports: list[str]) -> str:
    lines = [title, "", *config, "", "Ports (clk, rst: clock and synchronous active-high reset):", *ports]
    return "".join(f"// {line}".rstrip() + "\n" for line in lines)


def generate_verilog(spec: Spec, *, lanes: int = 1, name: str = "lnsim_update_unit") -> str:
    """Verilog of :class:`~lnsim_rtl.UpdateUnit` for ``spec`` (through Amaranth's Yosys back end).

    The module is named ``name`` (a :data:`PLAIN_NAME`, else ValueError), its submodules
    ``name__<instance path>`` (:func:`plain_module_names`); a ``//`` header states the full configuration (:func:`lnsim.tables.spec_summary`, as
    ``key = value`` lines and as one JSON line), the lanes, the latency and the port layout.
    """
    _check_name(name)
    unit = UpdateUnit(spec, lanes=lanes)
    summary = tables.spec_summary(spec)
    w = unit.widths
    config = [f"{key} = {json.dumps(value)}" for key, value in summary.items()]
    config += [
        f"lanes = {unit.lanes}",
        f"latency = {unit.latency} cycles (a register after each part of the 5 stages, docs/rtl.md); "
        f"throughput one update per lane per cycle",
        # The label predates lnsim.tables.spec_summary; it is kept so that the Verilog stays byte-identical.
        f"spec.summary() = {json.dumps(summary, sort_keys=True)}",
    ]
    ports = [
        "  i__valid     in   1     input stream handshake (i__ready out)",
        *_payload_lines("i__payload", "in", unit.lane_in, unit.lanes),
        "  o__valid     out  1     output stream handshake (o__ready in)",
        *_payload_lines("o__payload", "out", unit.lane_out, unit.lanes),
        f"  log_eta      in   [{w.log_eta.width - 1}:0]  round(2**F * 2 * log2(eta_rungs)), sampled with each "
        f"accepted input",
        f"  log_bc       in   [{w.log_bc.width - 1}:0]  round(2**F * -log2(1 - beta**t)), sampled with each "
        f"accepted input",
    ]
    title = f"{name}: B-bit Madam update unit (lnsim_rtl.UpdateUnit; docs/datapath.md, docs/rtl.md)"
    return _header(title, config, ports) + convert(unit, name)


def generate_decoder_verilog(fmt: LNSFormat, *, lanes: int = 1, name: str = "lnsim_decode_unit") -> str:
    """Verilog of :class:`~lnsim_rtl.DecodeUnit` for ``fmt``, with a ``//`` header like :func:`generate_verilog`."""
    _check_name(name)
    unit = DecodeUnit(fmt, lanes=lanes)
    lo, hi = tables.ladder_tables(fmt)
    config = [
        f"bits = {fmt.bits}",
        f"base = {json.dumps(fmt.base.value)}",
        f"eta0 = {json.dumps(fmt.eta0)}",
        f"frac_bits = {json.dumps(fmt.frac_bits)}",
        f"ladder_split = {json.dumps(None if hi is None else tables.ladder_split(fmt))}",
        f"ladder_entries = LO {len(lo[0])}" + ("" if hi is None else f", HI {len(hi[0])}"),
        f"lanes = {unit.lanes}",
        f"latency = {unit.latency} cycles (ladder lookup, scaling); throughput one weight per lane per cycle",
    ]
    ports = [
        "  i__valid     in   1     input stream handshake (i__ready out)",
        *_payload_lines("i__payload", "in", unit.lane_in, unit.lanes),
        "  o__valid     out  1     output stream handshake (o__ready in)",
        *_payload_lines("o__payload", "out", unit.lane_out, unit.lanes),
        f"  sigma_es     in   [{len(unit.sigma_es) - 1}:0]   signed; sigma_star ~= sigma_mus * 2**(sigma_es - 15), "
        f"sampled with each input",
        f"  sigma_mus    in   [{len(unit.sigma_mus) - 1}:0]  in [2**15, 2**16) (lnsim.golden.sigma_star_fixed)",
    ]
    title = f"{name}: LNS weight decoder to bfloat16 (lnsim_rtl.DecodeUnit; docs/datapath.md, docs/rtl.md)"
    return _header(title, config, ports) + convert(unit, name)


def generate_engine_verilog(spec: Spec, depth: int, *, lanes: int = 1, init=None,
                            name: str = "lnsim_update_engine") -> str:
    """Verilog of :class:`~lnsim_rtl.UpdateEngine` (``depth`` rows, ``init`` as there), with a ``//`` header
    like :func:`generate_verilog`: the configuration, the depth and the port layout (docs/rtl.md, "The
    update engine")."""
    _check_name(name)
    engine = UpdateEngine(spec, depth, lanes=lanes, init=init)
    summary = tables.spec_summary(spec)
    config = [f"{key} = {json.dumps(value)}" for key, value in summary.items()]
    config += [f"lanes = {lanes}", f"depth = {depth} rows",
               f"unit latency = {LATENCY} cycles; a step stalls s_axis until its last write-back"]
    e = engine.word.size
    ports = [
        f"  s_axis_tdata in   [{len(engine.s_axis_tdata) - 1}:0]  gradients, lane j at [j*{spec.cfg.grad_format.width}"
        f" +: {spec.cfg.grad_format.width}] (s_axis_tvalid in, s_axis_tready out, s_axis_tlast in, unused)",
        f"  m_axis_tdata out  [{len(engine.m_axis_tdata) - 1}:0]  bfloat16 weights, lane j at [j*16 +: 16] "
        f"(m_axis_tvalid out, m_axis_tready in, m_axis_tlast out: a step's last address)",
        f"  length       in   [{len(engine.length) - 1}:0]  addresses per step (0: depth), sampled at a step's first beat",
        "  log_eta, log_bc in  the step's scalars (as lnsim_update_unit), sampled at a step's first beat",
        "  sigma_es, sigma_mus in  sigma_star (as lnsim_decode_unit)",
        f"  rd_addr in, rd_data out [{len(engine.rd_data) - 1}:0]  read-back, one cycle after rd_addr while the "
        f"engine waits for a step's first beat and s_axis_tvalid is low; lane j at [j*{e} +: {e}], per lane from "
        f"the LSB:",
        f"  {'':<12} {'':<4} {_fields(engine.word)}",
    ]
    title = f"{name}: B-bit Madam update engine (lnsim_rtl.UpdateEngine; docs/rtl.md)"
    return _header(title, config, ports) + convert(engine, name)
