"""Stage 4 of the update datapath: the ratio to a whole rung step (docs/datapath.md, "Stage 4")."""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from lnsim import tables
from lnsim.spec import Spec

from ._util import check_table, clamp, reference
from .interpolator import (InterpolatorAdd, InterpolatorLookup, InterpolatorProduct, InterpolatorSelect,
                           interp_params, lookup_outputs)
from .widths import Widths

__all__ = ["RungStep", "RungStepScalars", "RungStepSum", "RungStepLookup", "RungStepShift", "RungStepRound",
           "rung_step_parts"]


class RungStepScalars(wiring.Component):
    """Stage 4, the step's part: ``log_r = log_eta - log_bc`` (signed F + 7), the same for every element of
    a step, so a pipeline can take it early. Combinational (latency 0)."""

    def __init__(self, spec: Spec):
        self._w = w = Widths(spec)
        super().__init__({"log_eta": In(w.log_eta), "log_bc": In(w.log_bc), "log_r": Out(signed(w.F + 7))})

    def elaborate(self, platform):
        m = Module()
        m.d.comb += self.log_r.eq(self.log_eta - self.log_bc)
        return m


class RungStepSum(wiring.Component):
    """Stage 4, part a: ``Y = X + log_r`` (``log_r = log_eta - log_bc``, :class:`RungStepScalars`).
    Combinational (latency 0)."""

    def __init__(self, spec: Spec):
        self._w = w = Widths(spec)
        super().__init__({"X": In(w.X), "log_r": In(signed(w.F + 7)), "Y": Out(w.Y)})

    def elaborate(self, platform):
        m = Module()
        m.d.comb += self.Y.eq(self.X + self.log_r)
        return m


class RungStepLookup(wiring.Component):
    """Stage 4, part b: the split of ``Y`` and the antilog table reads.

    ``ph = Y & (2**(F+1) - 1)`` goes to an :class:`InterpolatorLookup` over ``tables.antilog_table(spec)``
    (outputs the banks' ``t0_{j}``, ``d_{j}``, ``sel``, ``l``: ``t0 = ALOG[i]``, ``d = ALOG[i+1] - ALOG[i]``
    after :class:`InterpolatorSelect`), and ``shift = 23 - clamp(q, -2, 23)`` with ``q = Y >> (F + 1)``
    (docs/datapath.md, "Stage 4").

    Ports
    -----
    Y : In(signed(F + 9))
        From :class:`RungStepSum`.
    t0_{j}, d_{j}, sel, l : Out
        The interpolation pairs of the ROM banks, the bank and the fraction.
    shift : Out(range(26))
        ``23 - qc``.

    Combinational (latency 0).
    """

    def __init__(self, spec: Spec, *, antilog_table=None):
        self._w = w = Widths(spec)
        default = tables.antilog_table(spec)
        table = check_table("antilog_table", default if antilog_table is None else antilog_table,
                            len(default), w.antilog_entry)
        #: The parameters of the antilog interpolator.
        self.alog = dict(table=table, index_bits=w.a, frac_bits=w.F + 1 - w.a)
        ports = {"Y": In(w.Y), "shift": Out(range(26))}
        ports.update({name: Out(shape) for name, shape in lookup_outputs(**self.alog).items()})
        super().__init__(ports)

    def elaborate(self, platform):
        m = Module()
        F = self._w.F

        # Read the antilog pair of the fraction of Y / 2 (A ~= 2**24 * 2**(ph / 2**(F+1)) after the multiply).
        m.submodules.alog = alog = InterpolatorLookup(**self.alog)
        m.d.comb += alog.f.eq(self.Y[:F + 1])
        m.d.comb += [getattr(self, name).eq(getattr(alog, name)) for name in lookup_outputs(**self.alog)]

        # The shift by the integer part q (clamped to -2..23).
        q = Signal(signed(len(self.Y) - F - 1))
        m.d.comb += q.eq(self.Y >> (F + 1))
        m.d.comb += self.shift.eq(23 - clamp(q, -2, 23))
        return m


class RungStepShift(wiring.Component):
    """Stage 4, part d: ``z2 = A >> shift`` (``floor(2 * z)`` of docs/datapath.md, stage 4).

    Ports: ``A`` (the antilog's interpolation), ``shift`` (from :class:`RungStepLookup`) in; ``z2`` out.
    Combinational (latency 0).
    """

    def __init__(self, spec: Spec, *, a_bits: int):
        super().__init__({"A": In(a_bits), "shift": In(range(26)), "z2": Out(a_bits)})

    def elaborate(self, platform):
        m = Module()
        m.d.comb += self.z2.eq(self.A >> self.shift)
        return m


class RungStepRound(wiring.Component):
    """Stage 4, last part: ``n = min((z2 + 1) >> 1, SSTAR)``, 0 for a zero gradient.

    Ports: ``z2`` (from :class:`RungStepShift`), ``zero`` in; ``n`` out (bit length of SSTAR).

    Combinational (latency 0).
    """

    def __init__(self, spec: Spec, *, a_bits: int):
        self._w = w = Widths(spec)
        super().__init__({"z2": In(a_bits), "zero": In(1), "n": Out(w.n)})

    def elaborate(self, platform):
        m = Module()
        SSTAR = self._w.SSTAR
        # (z2 + 1) >> 1 > SSTAR iff z2 > 2 * SSTAR: only the k low bits need the adder, the rest an OR.
        k = (2 * SSTAR + 1).bit_length()
        low = self.z2[:k]
        sat = Signal()
        m.d.comb += sat.eq((self.z2[k:].any() if len(self.z2) > k else 0) | (low > 2 * SSTAR))
        with m.If(~self.zero):
            m.d.comb += self.n.eq(Mux(sat, SSTAR, (low + 1) >> 1))
        return m


def rung_step_parts(spec: Spec, *, antilog_table=None, scalars: bool = True) -> list:
    """Stage 4 as :func:`~lnsim_rtl._util.pipeline` stages: (``log_r`` |) ``Y`` | table reads | bank select |
    multiply |
    interpolation sum ``A`` | shift | round and clamp. Without ``scalars``, ``log_r`` is an input of the first."""
    lookup = RungStepLookup(spec, antilog_table=antilog_table)
    a_bits = interp_params(**lookup.alog, wrap=False).y_bits
    parts = [
        {"rung_step_sum": RungStepSum(spec)},
        {"rung_step_lookup": lookup},
        {"rung_step_select": InterpolatorSelect(**lookup.alog)},
        {"rung_step_product": InterpolatorProduct(**lookup.alog)},
        {"rung_step_add": InterpolatorAdd(**lookup.alog, out="A")},
        {"rung_step_shift": RungStepShift(spec, a_bits=a_bits)},
        {"rung_step_round": RungStepRound(spec, a_bits=a_bits)},
    ]
    return ([{"rung_step_scalars": RungStepScalars(spec)}] if scalars else []) + parts


class RungStep(wiring.Component):
    """Stage 4: the ratio to a whole rung step (docs/datapath.md, "Stage 4").

    Adds the step's scalars, takes the antilog of half of it (a table ``tables.antilog_table(spec)`` with
    linear interpolation), shifts by the integer part, rounds half up and clamps to ``SSTAR``.

    The combinational reference of the stage: the parts of :func:`rung_step_parts` chained without
    registers (:class:`~lnsim_rtl.UpdateUnit` registers after each, and takes ``log_r`` in its first stage).

    Parameters
    ----------
    spec : Spec
    antilog_table : sequence of int, optional
        Overrides the ROM contents (fault injection only): ``2**a + 1`` integers in ``0 .. 2**26 - 1``.

    Ports
    -----
    X : In(signed(F + 8))
        From :class:`LogRatio`.
    log_eta : In(F + 6), log_bc : In(F + 5)
        The step's scalars (docs/datapath.md, "Per-step scalars").
    zero : In(1)
        Zero gradient: the step is 0.
    Y : Out(signed(F + 9))
        ``X + log_eta - log_bc``.
    n : Out(bit length of SSTAR)
        The rung step, ``0 .. SSTAR``.

    Combinational (latency 0).
    """

    def __init__(self, spec: Spec, *, antilog_table=None):
        self._w = w = Widths(spec)
        default = tables.antilog_table(spec)
        self._table = check_table("antilog_table", default if antilog_table is None else antilog_table,
                                   len(default), w.antilog_entry)
        super().__init__({
            "X": In(w.X), "log_eta": In(w.log_eta), "log_bc": In(w.log_bc), "zero": In(1),
            "Y": Out(w.Y), "n": Out(w.n),
        })

    def elaborate(self, platform):
        return reference(self, rung_step_parts(self._w.spec, antilog_table=self._table))
