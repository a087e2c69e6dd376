"""Helpers shared by the RTL modules: table checks, clamps, pipeline registers and chains of parts."""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, Value
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from lnsim.validation import check_int

__all__ = ["LaneStreamComponent", "Step", "check_table", "clamp", "pipeline", "reference", "register",
           "stream_pipeline"]


class LaneStreamComponent(wiring.Component):
    """A pipelined unit: ``lanes`` elements of ``lane_in`` per beat on the input stream ``i``, the same number
    of ``lane_out`` on the output stream ``o``, ``latency`` cycles later; ``ports`` are its other ports."""

    def __init__(self, lane_in, lane_out, lanes, latency: int, ports: dict):
        self._lanes = check_int("lanes", lanes, 1)
        self._latency = latency
        self.lane_in, self.lane_out = lane_in, lane_out
        super().__init__({
            "i": In(stream.Signature(data.ArrayLayout(lane_in, self._lanes))),
            "o": Out(stream.Signature(data.ArrayLayout(lane_out, self._lanes))),
            **ports,
        })

    @property
    def lanes(self) -> int:
        """Elements per beat."""
        return self._lanes

    @property
    def latency(self) -> int:
        """Cycles from an accepted input to its output (with ``o.ready`` held high)."""
        return self._latency


def check_table(name: str, table, entries: int, width: int) -> list:
    """A table (or override) as a list of ints: ``entries`` integers in ``0 .. 2**width - 1``.

    Raises
    ------
    ValueError
        If the length or an entry is wrong (:class:`~lnsim.validation.SpecError` for an entry).
    """
    values = list(table)
    if len(values) != entries:
        raise ValueError(f"{name} must have {entries} entries (2**table_index_bits + 1), not {len(values)}")
    return [check_int(f"{name}[{i}]", v, 0, 2**width - 1) for i, v in enumerate(values)]


def clamp(value, lo: int, hi: int):
    """``min(max(value, lo), hi)`` as two comparators and two multiplexers.

    For ``lo = 0`` and ``hi = 2**k - 1`` the comparators are the sign bit and an OR of the bits above ``k``
    (no carry chain), the same values.
    """
    v = Value.cast(value)
    k = (hi + 1).bit_length() - 1
    if lo == 0 and hi + 1 == 1 << k and 0 < k < len(v):
        signed = v.shape().signed
        top = v[k:len(v) - 1] if signed else v[k:]
        over = top.any() if len(top) else 0
        return Mux(v[-1] if signed else 0, 0, Mux(over, hi, v[:k]))
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


def stream_pipeline(m: Module, i, o, latency: int, *, valid_bits: list | None = None):
    """The handshake of a fixed-latency pipeline between streams ``i`` and ``o``; returns ``advance``.

    Every pipeline register loads only when ``advance = ~o.valid | o.ready`` (also ``i.ready``), so a held
    output freezes the whole pipeline and no element is lost or duplicated. The valid bits ``s1_valid`` ..
    ``s{latency}_valid`` (the only registers with a reset) follow the data down to ``o.valid``; with a list
    ``valid_bits`` they are appended to it, in that order (for formal checks).
    """
    advance = Signal()
    m.d.comb += [advance.eq(~o.valid | o.ready), i.ready.eq(advance)]
    valid = [Signal(name=f"s{n}_valid") for n in range(1, latency + 1)]
    if valid_bits is not None:
        valid_bits.extend(valid)
    with m.If(advance):
        m.d.sync += valid[0].eq(i.valid)
        m.d.sync += [valid[n].eq(valid[n - 1]) for n in range(1, latency)]
    m.d.comb += o.valid.eq(valid[-1])
    return advance


class Step:
    """A combinational part of a :func:`pipeline` that is not a component: ``fn(*values of inputs)`` returns
    ``{name: value}`` for the names ``outputs``."""

    def __init__(self, inputs: tuple, outputs: tuple, fn):
        self.inputs, self.outputs, self.fn = tuple(inputs), tuple(outputs), fn


def _reads(part) -> tuple:
    if isinstance(part, Step):
        return part.inputs
    return tuple(n for n, mem in part.signature.members.items() if mem.flow == wiring.In)


def _writes(part) -> set:
    if isinstance(part, Step):
        return set(part.outputs)
    return {n for n, mem in part.signature.members.items() if mem.flow == wiring.Out}


def pipeline(m: Module, stages: list, values: dict, outputs, *, advance=None, prefix: str = "",
             taps: list | None = None) -> dict:
    """Chain ``stages`` (each a dict ``{name: part}`` of components or :class:`Step` run in order) by port name.

    Every input port of a part is driven by the latest value of that name: from ``values`` or from an earlier
    part's output port. With ``advance``, a pipeline register (:func:`register`, ``{prefix}s{k}_{name}``,
    ``k`` from 1) follows stage ``k`` for each value a later stage or ``outputs`` reads, so the chain has
    ``len(stages)`` cycles of latency; without, it is combinational (the reference components). Returns the
    values named in ``outputs``. With a list ``taps``, appends for each stage ``k`` the values its boundary
    carries (``{name: value}``: the registers with ``advance``, the combinational values without), so a formal
    check can compare a pipeline's registers with a combinational chain's values stage by stage.
    """
    # Which names each stage boundary must carry: read later, or an output.
    live = [set(outputs)]
    for stage in reversed(stages[1:]):
        need = set(live[0])
        for part in reversed(list(stage.values())):
            need = (need - _writes(part)) | set(_reads(part))
        live.insert(0, need)
    values = dict(values)
    for k, stage in enumerate(stages, start=1):
        for name, part in stage.items():
            if isinstance(part, Step):
                values.update(part.fn(*(values[n] for n in part.inputs)))
                continue
            m.submodules[f"{prefix}{name}"] = part
            m.d.comb += [getattr(part, n).eq(values[n]) for n in _reads(part)]
            values.update({n: getattr(part, n) for n in _writes(part)})
        if advance is not None:
            values = register(m, advance, f"{prefix}s{k}", **{n: values[n] for n in sorted(live[k - 1])})
        if taps is not None:
            taps.append({n: values[n] for n in sorted(live[k - 1])})
    return {n: values[n] for n in outputs}


def reference(comp: wiring.Component, parts: list) -> Module:
    """A stage's combinational reference: ``parts`` (:func:`pipeline` stages) chained without registers
    between ``comp``'s input and output ports, which have the parts' port names."""
    m = Module()
    members = comp.signature.members.items()
    ins = {n: getattr(comp, n) for n, mem in members if mem.flow == wiring.In}
    outs = [n for n, mem in members if mem.flow == wiring.Out]
    got = pipeline(m, parts, ins, outs)
    m.d.comb += [getattr(comp, n).eq(got[n]) for n in outs]
    return m
