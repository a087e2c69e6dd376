"""The ECP5 multiplier packing: the flip-flops that register a ``MULT18X18D``'s product moved into its own output
register, in Yosys's JSON netlist, which ``synth_ecp5`` does not do."""

from __future__ import annotations

__all__ = ["pack_mult_output_registers", "PLAIN_FF"]

#: The parameters of a plain ECP5 flip-flop (``TRELLIS_FF``): clock enable, no set or reset (``LSR`` tied 0).
PLAIN_FF = {"CEMUX": "CE", "CLKMUX": "CLK", "GSR": "DISABLED", "LSRMUX": "LSR", "REGSET": "RESET"}
#: A plain flip-flop without a clock enable (always loaded) has ``CEMUX`` "1" (Yosys writes it "1 ").
_ALWAYS = {**PLAIN_FF, "CEMUX": "1"}


def _params(cell: dict) -> dict:
    return {k: str(v).strip() for k, v in cell["parameters"].items()}


def _plain_ff(cell: dict) -> bool:
    return (cell["type"] == "TRELLIS_FF" and _params(cell) in (PLAIN_FF, _ALWAYS)
            and cell["connections"]["LSR"] == ["0"])


def _enable(cell: dict):
    """A plain flip-flop's clock enable: its ``CE`` net, or the constant "1" when it has none."""
    return "1" if _params(cell)["CEMUX"] == "1" else cell["connections"]["CE"][0]


def pack_mult_output_registers(netlist: dict, module: str) -> dict:
    """Move the flip-flops that register a ``MULT18X18D``'s product into its output register, in place.

    ``netlist`` is Yosys's JSON after ``synth_ecp5``. ``synth_ecp5`` maps every multiply to a combinational
    ``MULT18X18D`` (no internal register) and leaves the pipeline register after it in the fabric, so the
    multiplier's delay and the routing to and from it fall in one cycle. A combinational multiplier of
    ``module`` that is a pipeline part of its own is packed: every operand bit is a constant or a
    flip-flop's output, every product bit that is read at all is read by exactly one flip-flop's data input,
    and those flip-flops are plain (no set or reset, see :data:`PLAIN_FF`; with a clock enable or always
    loaded) and share one clock and one clock enable. The product bits then drive the flip-flops' outputs, the flip-flops go, and the multiplier's
    output register (``REG_OUTPUT_CLK``) takes that clock (``CLK0``) and enable (``CE0``), reset tied off:
    the same circuit, one register moved into the DSP block, as vendor synthesis does it. Other multipliers
    are left as they are (a multiplier fed by logic or by the module's ports has that path before it; its
    product register's later, farther output could only lengthen the path after it).

    Returns ``{"mults": packed multipliers, "ffs": flip-flops removed}``.
    """
    mod = netlist["modules"][module]
    cells = mod["cells"]
    readers, driver = {}, {}
    for name, cell in cells.items():
        for port, bits in cell["connections"].items():
            for b in bits:
                if cell["port_directions"][port] == "output":
                    driver[b] = cell
                else:
                    readers.setdefault(b, []).append((name, port))
    port_bits = {b for p in mod["ports"].values() for b in p["bits"]}
    packed = removed = 0
    for name, cell in list(cells.items()):
        params = cell["parameters"]
        registered = any(v != "NONE" for k, v in params.items() if k.startswith("REG_") and k.endswith("_CLK"))
        if cell["type"] != "MULT18X18D" or registered:
            continue
        conn = cell["connections"]
        operands = [conn[f"{x}{i}"][0] for x in "AB" for i in range(18)]
        if not all(isinstance(b, str) or driver.get(b, {}).get("type") == "TRELLIS_FF" for b in operands):
            continue
        products = [(pin, conn[pin][0]) for pin in conn if pin[0] == "P" and pin[1:].isdigit()]
        regs, ok = {}, True
        for pin, bit in products:
            read = readers.get(bit, [])
            if not read:
                continue
            ok = bit not in port_bits and len(read) == 1 and read[0][1] == "DI" and _plain_ff(cells[read[0][0]])
            if not ok:
                break
            regs[pin] = read[0][0]
        controls = {(cells[ff]["connections"]["CLK"][0], _enable(cells[ff])) for ff in regs.values()}
        if not ok or len(controls) != 1:
            continue
        (clk, ce), = controls
        for pin, ff in regs.items():
            conn[pin] = cells.pop(ff)["connections"]["Q"]
        for pin, net in (("CLK0", clk), ("CE0", ce), ("RST0", "0")):
            conn[pin] = [net]
            cell["port_directions"][pin] = "input"
        params.update(REG_OUTPUT_CLK="CLK0", REG_OUTPUT_CE="CE0", REG_OUTPUT_RST="RST0", GSR="DISABLED")
        packed, removed = packed + 1, removed + len(regs)
    return {"mults": packed, "ffs": removed}
