"""Stage 2 of the update datapath: the second-moment EMA in a linear pseudo-float (docs/datapath.md,
"Stage 2")."""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from lnsim.spec import Spec

from ._util import clamp, reference
from .widths import Widths

__all__ = ["HI_SQ", "Ema", "EmaSquare", "EmaRound", "EmaAlign", "EmaHalve", "EmaSum", "EmaNorm", "ema_parts"]


#: The smallest 16-bit significand whose square has bit 31 set: ``S16 * S16 >= 2**31`` iff ``S16 >= HI_SQ``.
HI_SQ = 46341


def _et_bits(w: Widths) -> int:
    """Bits of the new term's exponent ``Et`` (``en = EMAXF`` for a NaN: still no overflow)."""
    return (2 * w.EMAXF + 2 * w.MB).bit_length()


class EmaSquare(wiring.Component):
    """Stage 2, part a: decay the old mantissa, square the significand, the new term's exponent.

    Inputs as :class:`Ema`; outputs ``M1`` (WM, ``M - round(M / 2**s)``), ``sq`` (32, ``S16 * S16``, the only
    logic after the multiplier is the register), ``hi`` (the square's bit 31, taken as ``S16 >= HI_SQ``,
    exact for every 16-bit ``S16``, so the exponent does not wait for the multiplier) and ``Et`` (the new
    term's exponent, 0 for a zero gradient). Combinational (latency 0).
    """

    def __init__(self, spec: Spec):
        self._w = w = Widths(spec)
        super().__init__({
            "st": In(w.state_bits), "S16": In(16), "en": In(w.en), "zero": In(1),
            "M1": Out(w.WM), "sq": Out(32), "hi": Out(1), "Et": Out(_et_bits(w)),
        })

    def elaborate(self, platform):
        m = Module()
        w = self._w
        M = self.st[:w.WM]
        m.d.comb += [
            self.M1.eq(M - ((M + 2 ** (w.s - 1)) >> w.s)),
            self.sq.eq(self.S16 * self.S16),
            self.hi.eq(self.S16 >= HI_SQ),
        ]
        # Both sums beside the comparison, then a select: the adder does not wait for hi.
        et = 2 * self.en + (2 * w.MB - 1)
        with m.If(~self.zero):
            m.d.comb += self.Et.eq(Mux(self.hi, et + 1, et))
        return m


class EmaRound(wiring.Component):
    """Stage 2, part b: round the square to the new term's mantissa; the larger exponent and both shifts.

    Inputs ``st`` (for ``E``), ``sq``, ``hi``, ``Et``, ``zero``; outputs ``Mt`` (WM + 1, 0 for a zero
    gradient), ``Em0 = max(E, Et)``, ``dv = clamp(Et - E, 0, 31)`` and ``dt = clamp(E - Et, 0, 31)``.
    Combinational (latency 0).
    """

    def __init__(self, spec: Spec):
        self._w = w = Widths(spec)
        em0 = max(w.WE, _et_bits(w))
        super().__init__({
            "st": In(w.state_bits), "sq": In(32), "hi": In(1), "Et": In(_et_bits(w)), "zero": In(1),
            "Mt": Out(w.WM + 1), "Em0": Out(em0), "dv": Out(5), "dt": Out(5),
        })

    def elaborate(self, platform):
        m = Module()
        w = self._w
        WM, E = w.WM, self.st[w.WM:]
        sqn = Signal(32)
        m.d.comb += sqn.eq(Mux(self.hi, self.sq, self.sq << 1))
        with m.If(~self.zero):
            m.d.comb += self.Mt.eq((sqn + 2 ** (31 - WM)) >> (32 - WM))
        # Both differences side by side: a negation after the subtraction would lengthen the path to dt.
        diff, ndiff = Signal(signed(len(self.Em0) + 2)), Signal(signed(len(self.Em0) + 2))
        m.d.comb += [
            diff.eq(self.Et - E),
            ndiff.eq(E - self.Et),
            self.Em0.eq(Mux(diff < 0, E, self.Et)),
            self.dv.eq(clamp(diff, 0, 31)),
            self.dt.eq(clamp(ndiff, 0, 31)),
        ]
        return m


class EmaAlign(wiring.Component):
    """Stage 2, part c: align both mantissas to the larger exponent, one fraction bit kept for the rounding.

    Inputs ``M1``, ``Mt``, ``dv``, ``dt``; outputs ``Av2 = (M1 << 1) >> dv`` (WM + 1), ``At2 = (Mt << 1) >> dt``
    (WM + 2). Combinational (latency 0).
    """

    def __init__(self, spec: Spec):
        self._w = w = Widths(spec)
        super().__init__({"M1": In(w.WM), "Mt": In(w.WM + 1), "dv": In(5), "dt": In(5),
                          "Av2": Out(w.WM + 1), "At2": Out(w.WM + 2)})

    def elaborate(self, platform):
        m = Module()
        m.d.comb += [self.Av2.eq((self.M1 << 1) >> self.dv), self.At2.eq((self.Mt << 1) >> self.dt)]
        return m


class EmaHalve(wiring.Component):
    """Stage 2, part d: round the aligned mantissas half up, ``Av = (Av2 + 1) >> 1`` (WM),
    ``At = (At2 + 1) >> 1`` (WM + 1): ``(x + 2**(d-1)) >> d`` of docs/datapath.md. Combinational (latency 0).
    """

    def __init__(self, spec: Spec):
        self._w = w = Widths(spec)
        super().__init__({"Av2": In(w.WM + 1), "At2": In(w.WM + 2), "Av": Out(w.WM), "At": Out(w.WM + 1)})

    def elaborate(self, platform):
        m = Module()
        m.d.comb += [self.Av.eq((self.Av2 + 1) >> 1), self.At.eq((self.At2 + 1) >> 1)]
        return m


class EmaSum(wiring.Component):
    """Stage 2, part e: ``Sm0 = Av + At`` (WM + 1), and the renormalisation's three exponents beside it:
    ``Em0 + 1``, ``Em0`` and ``Em0 - 1`` (``Em_up``, ``Em0``, ``Em_dn``), each with its saturation flag
    (``> EMAX``: ``sat_up``, ``sat_0``, ``sat_dn``), and ``nz = Em0 != 0``. Combinational (latency 0)."""

    def __init__(self, spec: Spec):
        self._w = w = Widths(spec)
        em = max(w.WE, _et_bits(w)) + 1
        super().__init__({"Av": In(w.WM), "At": In(w.WM + 1), "Em0": In(em - 1),
                          "Sm0": Out(w.WM + 1), "Em_up": Out(em), "Em_dn": Out(em), "nz": Out(1),
                          "sat_up": Out(1), "sat_0": Out(1), "sat_dn": Out(1)})

    def elaborate(self, platform):
        m = Module()
        EMAX, Em0 = self._w.EMAX, self.Em0
        m.d.comb += [
            self.Sm0.eq(self.Av + self.At),
            self.Em_up.eq(Em0 + 1), self.Em_dn.eq(Em0 - 1), self.nz.eq(Em0 != 0),
            self.sat_up.eq(Em0 + 1 > EMAX),
        ]
        # Compared only where Em0's width can exceed EMAX (a constant comparison is a lint warning);
        # Em_dn is used only when Em0 != 0, so it does not wrap.
        top = 2 ** len(Em0) - 1
        if top > EMAX:
            m.d.comb += self.sat_0.eq(Em0 > EMAX)
        if top - 1 > EMAX:
            m.d.comb += self.sat_dn.eq(Em0 - 1 > EMAX)
        return m


class EmaNorm(wiring.Component):
    """Stage 2, part f: renormalise ``Sm0`` by one place either way and saturate (``EMAX``, all-ones
    mantissa; unreachable for a valid state: WE is sized for it), choosing among :class:`EmaSum`'s exponents.

    Inputs ``Sm0``, ``Em0`` and the exponents and flags of :class:`EmaSum`; outputs as :class:`Ema`.
    Combinational (latency 0).
    """

    def __init__(self, spec: Spec):
        self._w = w = Widths(spec)
        em = max(w.WE, _et_bits(w)) + 1
        super().__init__({
            "Sm0": In(w.WM + 1), "Em0": In(em - 1), "Em_up": In(em), "Em_dn": In(em), "nz": In(1),
            "sat_up": In(1), "sat_0": In(1), "sat_dn": In(1),
            "Em": Out(w.WE), "Sm": Out(w.WM), "st_new": Out(w.state_bits),
        })

    def elaborate(self, platform):
        m = Module()
        w = self._w
        WM, Sm0 = w.WM, self.Sm0

        over = Sm0[WM]
        under = ~Sm0[WM] & ~Sm0[WM - 1] & self.nz
        Sm1 = Signal(WM)
        Em1 = Signal(len(self.Em_up))
        sat = Signal()
        m.d.comb += [
            Sm1.eq(Mux(over, Sm0 >> 1, Mux(under, Sm0 << 1, Sm0))),
            Em1.eq(Mux(over, self.Em_up, Mux(under, self.Em_dn, self.Em0))),
            sat.eq(Mux(over, self.sat_up, Mux(under, self.sat_dn, self.sat_0))),
        ]
        m.d.comb += [
            self.Em.eq(Mux(sat, w.EMAX, Em1)),
            self.Sm.eq(Mux(sat, 2**WM - 1, Sm1)),
            self.st_new.eq(Cat(self.Sm, self.Em)),
        ]
        return m


def ema_parts(spec: Spec) -> list:
    """Stage 2 as :func:`~lnsim_rtl._util.pipeline` stages: square | round | align | halve | sum |
    renormalise."""
    return [{"ema_square": EmaSquare(spec)}, {"ema_round": EmaRound(spec)}, {"ema_align": EmaAlign(spec)},
            {"ema_halve": EmaHalve(spec)}, {"ema_sum": EmaSum(spec)}, {"ema_norm": EmaNorm(spec)}]


class Ema(wiring.Component):
    """Stage 2: the second-moment EMA in a linear pseudo-float (docs/datapath.md, "Stage 2").

    The combinational reference of the stage: the parts of :func:`ema_parts` chained without registers
    (:class:`~lnsim_rtl.UpdateUnit` registers after each).

    Ports
    -----
    st : In(state_bits)
        State word ``E << WM | M`` (0 for a fresh element).
    S16, en, zero : In
        From :class:`Unpack`.
    Em : Out(WE)
        Exponent of the new state (after renormalisation and saturation).
    Sm : Out(WM)
        Mantissa of the new state.
    st_new : Out(state_bits)
        ``Em << WM | Sm`` (the NaN select is done by the caller).

    Combinational (latency 0).
    """

    def __init__(self, spec: Spec):
        self._w = w = Widths(spec)
        super().__init__({
            "st": In(w.state_bits), "S16": In(16), "en": In(w.en), "zero": In(1),
            "Em": Out(w.WE), "Sm": Out(w.WM), "st_new": Out(w.state_bits),
        })

    def elaborate(self, platform):
        return reference(self, ema_parts(self._w.spec))
