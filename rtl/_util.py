"""Helpers shared by the RTL modules: argument checks, clamps and pipeline registers."""

from __future__ import annotations

import numbers

from amaranth.hdl import Module, Mux, Signal, Value

__all__ = ["check_lanes", "check_table", "clamp", "register", "stream_pipeline"]


def check_lanes(lanes) -> int:
    """``lanes`` as an int, or ValueError unless it is a positive integer."""
    if isinstance(lanes, bool) or not isinstance(lanes, numbers.Integral) or lanes < 1:
        raise ValueError(f"lanes must be a positive integer, not {lanes!r}")
    return int(lanes)


def check_table(name: str, table, entries: int, width: int) -> list:
    """A table (or override) as a list of ints: ``entries`` integers in ``0 .. 2**width - 1``."""
    values = list(table)
    if len(values) != entries:
        raise ValueError(f"{name} must have {entries} entries (2**table_index_bits + 1), not {len(values)}")
    out = []
    for i, v in enumerate(values):
        if isinstance(v, bool) or not isinstance(v, numbers.Integral) or not 0 <= v < 2**width:
            raise ValueError(f"{name}[{i}] must be an integer in 0..{2**width - 1}, not {v!r}")
        out.append(int(v))
    return out


def clamp(value, lo: int, hi: int):
    """``min(max(value, lo), hi)`` as two comparators and two multiplexers."""
    return Mux(value < lo, lo, Mux(value > hi, hi, value))


def register(m: Module, enable, prefix: str, **values) -> dict:
    """Pipeline registers (no reset) named ``{prefix}_{name}``, loaded from ``values`` when ``enable``.

    Returns the registers by name.
    """
    regs = {name: Signal(Value.cast(value).shape(), name=f"{prefix}_{name}", reset_less=True)
            for name, value in values.items()}
    with m.If(enable):
        m.d.sync += [regs[name].eq(value) for name, value in values.items()]
    return regs


def stream_pipeline(m: Module, i, o, latency: int):
    """The handshake of a fixed-latency pipeline between streams ``i`` and ``o``; returns ``advance``.

    Every pipeline register loads only when ``advance = ~o.valid | o.ready`` (also ``i.ready``), so a held
    output freezes the whole pipeline and no element is lost or duplicated. The valid bits ``s1_valid`` ..
    ``s{latency}_valid`` (the only registers with a reset) follow the data down to ``o.valid``.
    """
    advance = Signal()
    m.d.comb += [advance.eq(~o.valid | o.ready), i.ready.eq(advance)]
    valid = [Signal(name=f"s{n}_valid") for n in range(1, latency + 1)]
    with m.If(advance):
        m.d.sync += valid[0].eq(i.valid)
        m.d.sync += [valid[n].eq(valid[n - 1]) for n in range(1, latency)]
    m.d.comb += o.valid.eq(valid[-1])
    return advance
