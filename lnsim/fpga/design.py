"""What the tools are given: the unit as RTLIL, and the five-pin Verilog harness around it.

Nothing here imports amaranth or :mod:`lnsim_rtl` until a netlist is built.
"""

from __future__ import annotations

import re

__all__ = ["TOP", "module_name", "build_unit", "harness_verilog", "rtlil_netlist"]

#: The harness's module name, the design's top.
TOP = "lnsim_synth_top"


_MODULES = {"madam": "lnsim_update_unit", "linear": "lnsim_linear_update", "engine": "lnsim_update_engine"}


def module_name(unit: str) -> str:
    """The Verilog module name of ``unit`` ("madam", "linear" or "engine") in the netlist."""
    return _MODULES[unit]


def build_unit(unit: str, spec, lanes: int, depth: int | None = None):
    """The Amaranth component of ``unit``: :class:`lnsim_rtl.UpdateUnit` for "madam",
    :class:`lnsim_rtl.UpdateEngine` of ``depth`` rows (all zero) for "engine", else
    :class:`lnsim_rtl.LinearUpdateUnit` of ``spec.fmt.bits`` bits; ``lanes`` lanes."""
    import lnsim_rtl

    if unit == "madam":
        return lnsim_rtl.UpdateUnit(spec, lanes=lanes)
    if unit == "engine":
        return lnsim_rtl.UpdateEngine(spec, depth, lanes=lanes)
    return lnsim_rtl.LinearUpdateUnit(bits=spec.fmt.bits, lanes=lanes)


def harness_verilog(ports: list, name: str) -> str:
    """Verilog of the five-pin top around module ``name``: ``din`` shifts into every input, ``load`` captures
    every output into the register ``dout`` shifts out.

    ``ports`` are ``(name, bits, "in"|"out")`` as :func:`rtlil_netlist` returns them; ``clk`` and ``rst`` are
    wired straight through.
    """
    ins = [(n, w) for n, w, d in ports if d == "in" and n not in ("clk", "rst")]
    outs = [(n, w) for n, w, d in ports if d == "out"]
    n_in, n_out = max(2, sum(w for _, w in ins)), max(2, sum(w for _, w in outs))
    conns, lo = [".clk(clk)", ".rst(rst)"], 0
    for n, w in ins:
        conns.append(f".{n}(sin[{lo + w - 1}:{lo}])")
        lo += w
    lo = 0
    for n, w in outs:
        conns.append(f".{n}(uo[{lo + w - 1}:{lo}])")
        lo += w
    return (f"module {TOP}(input clk, input rst, input din, input load, output dout);\n"
            f"  reg [{n_in - 1}:0] sin;\n  reg [{n_out - 1}:0] sout;\n  wire [{n_out - 1}:0] uo;\n"
            f"  always @(posedge clk) sin <= {{sin[{n_in - 2}:0], din}};\n"
            f"  always @(posedge clk) sout <= load ? uo : {{sout[{n_out - 2}:0], 1'b0}};\n"
            f"  assign dout = sout[{n_out - 1}];\n"
            f"  {name} unit ({', '.join(conns)});\nendmodule\n")


def rtlil_netlist(unit_obj, name: str) -> tuple[str, list]:
    """The component ``unit_obj`` as RTLIL text of module ``name``, and its ports as ``(name, bits, "in"|"out")``.

    The submodules are named as in the Verilog (:func:`lnsim_rtl.verilog.plain_module_names`); synthesis
    flattens them into ``name``, whose cells keep their instance paths (``lane0_ema_align.*``).

    Wire names with an index, such as a lane's payload view ``\\o__payload[3]``, are renamed
    (``\\o__payload_3_``): Yosys took such a name for a bit of the port ``o__payload`` and joined the two
    nets (a multiply driven net in nextpnr), or failed an assertion in ABC's reintegration.
    """
    from amaranth.back import rtlil
    from amaranth.hdl import Value
    from lnsim_rtl.verilog import plain_module_names

    ports = [("clk", 1, "in"), ("rst", 1, "in")]
    for path, member, value in unit_obj.signature.flatten(unit_obj):
        flow = member.flow.name.lower()
        # Bits, not len() of the value: that of an array-layout payload view is its number of lanes.
        ports.append(("__".join(str(p) for p in path), len(Value.cast(value)), "in" if flow == "in" else "out"))
    text = plain_module_names(rtlil.convert(unit_obj, name=name, emit_src=False), name)
    # In RTLIL a slice is written after a space (``\\x [3]``); a bracket right after a name is part of it.
    return re.sub(r"(\\[^\s\[]+)\[(\d+)\]", r"\1_\2_", text), ports
