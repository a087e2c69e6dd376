"""Stage 1 of the update datapath: classify and normalise the gradient (docs/datapath.md, "Stage 1")."""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from lnsim.spec import Spec

from ._util import reference
from .widths import Widths

__all__ = ["Unpack", "UnpackClassify", "UnpackNormalise", "unpack_parts"]


class UnpackClassify(wiring.Component):
    """Stage 1, part a: split the gradient's fields and classify it; the significand ``S`` and ``x = max(e, 1)``
    (an Inf replaced by the largest finite magnitude, a zero given ``S = 1``).

    Input ``gbits``; outputs ``sg``, ``nan``, ``inf``, ``zero`` (as :class:`Unpack`), ``S`` (MB + 1 bits) and ``x``
    (EB bits). Combinational (latency 0).
    """

    def __init__(self, spec: Spec):
        self._w = w = Widths(spec)
        super().__init__({
            "gbits": In(w.W),
            "sg": Out(1), "nan": Out(1), "inf": Out(1), "zero": Out(1), "S": Out(w.MB + 1), "x": Out(w.EB),
        })

    def elaborate(self, platform):
        m = Module()
        w = self._w
        MB, EMAXF = w.MB, w.EMAXF

        # Split the fields and classify.
        e0, m0 = self.gbits[MB:MB + w.EB], self.gbits[:MB]
        top = e0 == EMAXF
        m.d.comb += [
            self.sg.eq(self.gbits[w.W - 1]),
            self.nan.eq(top & m0.any()),
            self.inf.eq(top & ~m0.any()),
        ]

        # Replace an Inf by the largest finite magnitude; a zero gets S = 1 (a defined, unused en and S16).
        e = Signal(w.EB)
        man = Signal(MB)
        m.d.comb += [e.eq(Mux(self.inf, EMAXF - 1, e0)), man.eq(Mux(self.inf, 2**MB - 1, m0))]
        m.d.comb += self.zero.eq(~e.any() & ~man.any())
        # e > 1 as an OR of the bits above bit 0: no carry chain.
        m.d.comb += [self.S.eq(Mux(self.zero, 1, Cat(man, e.any()))), self.x.eq(Mux(e[1:].any(), e, 1))]
        return m


class UnpackNormalise(wiring.Component):
    """Stage 1, part b: normalise the significand, ``en`` and ``S16`` (as :class:`Unpack`) from ``S`` and ``x``
    (:class:`UnpackClassify`). Combinational (latency 0)."""

    def __init__(self, spec: Spec):
        self._w = w = Widths(spec)
        super().__init__({"S": In(w.MB + 1), "x": In(w.EB), "en": Out(w.en), "S16": Out(16)})

    def elaborate(self, platform):
        m = Module()
        MB, S = self._w.MB, self.S

        # Find the leading one (a priority encoder: the highest set bit wins).
        p = Signal(range(MB + 1))
        for bit in range(MB + 1):
            with m.If(S[bit]):
                m.d.comb += p.eq(bit)

        # Normalise: shift the leading one to bit MB and scale to 16 bits.
        shift = Signal(range(MB + 1))
        Sn = Signal(MB + 1)
        m.d.comb += [shift.eq(MB - p), Sn.eq(S << shift)]
        m.d.comb += self.en.eq(self.x - shift)
        m.d.comb += self.S16.eq(Sn << (15 - MB) if MB <= 15 else Sn >> (MB - 15))
        return m


def unpack_parts(spec: Spec) -> list:
    """Stage 1 as :func:`~lnsim_rtl._util.pipeline` stages: classify | normalise."""
    return [{"unpack_classify": UnpackClassify(spec)}, {"unpack_normalise": UnpackNormalise(spec)}]


class Unpack(wiring.Component):
    """Stage 1: classify and normalise the gradient (docs/datapath.md, "Stage 1").

    The combinational reference of the stage: the parts of :func:`unpack_parts` chained without registers
    (:class:`~lnsim_rtl.UpdateUnit` registers after each).

    Ports
    -----
    gbits : In(W)
        Gradient bit pattern (bfloat16: 16 bits).
    sg : Out(1)
        Gradient sign.
    nan, inf : Out(1)
        NaN (any payload) and +-Inf flags; an Inf is replaced by the largest finite magnitude.
    zero : Out(1)
        +0 or -0.
    en : Out(signed(EB + 1))
        Normalised exponent, ``|g| = Sn * 2**(en - BIAS - MB)``; ``1 - MB`` for a zero gradient.
    S16 : Out(16)
        Normalised significand in ``[2**15, 2**16)`` (``2**15`` for a zero gradient).

    Combinational (latency 0).
    """

    def __init__(self, spec: Spec):
        self._w = w = Widths(spec)
        super().__init__({
            "gbits": In(w.W),
            "sg": Out(1), "nan": Out(1), "inf": Out(1), "zero": Out(1),
            "en": Out(w.en), "S16": Out(16),
        })

    def elaborate(self, platform):
        return reference(self, unpack_parts(self._w.spec))
