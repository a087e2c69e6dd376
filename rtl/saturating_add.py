"""Stage 5 of the update datapath: the rung step added to the code, saturating (docs/datapath.md, "Stage 5")."""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from lnsim.spec import Spec

from ._util import clamp
from .widths import Widths

__all__ = ["SaturatingAdd"]


class SaturatingAdd(wiring.Component):
    """Stage 5: the signed rung step added to the code, saturating at 0 and KMAX (docs/datapath.md, "Stage 5").

    Ports
    -----
    sw, sg : In(1)
        Weight sign and gradient sign: equal signs move ``k`` up (``|w|`` shrinks).
    k : In(B)
        Code.
    n : In(bit length of SSTAR)
        Rung step from :class:`RungStep`.
    k_new : Out(B)
        ``clamp(k + (n if sw == sg else -n), 0, KMAX)`` (the NaN select is done by the caller).

    Combinational (latency 0).
    """

    def __init__(self, spec: Spec):
        self._w = w = Widths(spec)
        super().__init__({"sw": In(1), "sg": In(1), "k": In(w.B), "n": In(w.n), "k_new": Out(w.B)})

    def elaborate(self, platform):
        m = Module()
        w = self._w

        # Add or subtract the step, then clamp to the code range.
        total = Signal(signed(w.B + 2))
        m.d.comb += total.eq(Mux(self.sw == self.sg, self.k + self.n, self.k - self.n))
        m.d.comb += self.k_new.eq(clamp(total, 0, w.KMAX))
        return m
