"""Stage 3 of the update datapath: the fixed-point logarithm of ``g**2 / v`` (docs/datapath.md, "Stage 3")."""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from lnsim import tables
from lnsim.spec import Spec

from ._util import check_table, reference
from .interpolator import InterpolatorAdd, InterpolatorLookup, InterpolatorProduct, InterpolatorSelect, lookup_outputs
from .widths import Widths

__all__ = ["LogRatio", "LogRatioExp", "LogRatioIndex", "LogRatioLookup", "LogRatioClamp", "LogRatioSum",
           "log_ratio_parts"]


def _eg_shape(w: Widths):
    return signed(max(w.en.width + 1, (2 * w.MB - 1 + w.s).bit_length() + 1) + 1)


class LogRatioExp(wiring.Component):
    """Stage 3, the gradient's part: ``eg = 2 * en + 2 * MB - 1 + s`` and the clamp's bounds ``eg_lo = eg + 64``,
    ``eg_hi = eg - 64``, so that the exponent difference ``I = clamp(eg - Em, -64, 64)`` is one subtraction
    and two comparisons side by side once ``Em`` is known. Combinational (latency 0)."""

    def __init__(self, spec: Spec):
        self._w = w = Widths(spec)
        shape = _eg_shape(w)
        super().__init__({"en": In(w.en), "eg": Out(shape), "eg_lo": Out(signed(shape.width + 1)),
                          "eg_hi": Out(signed(shape.width + 1))})

    def elaborate(self, platform):
        m = Module()
        w = self._w
        m.d.comb += [self.eg.eq(2 * self.en + (2 * w.MB - 1 + w.s)), self.eg_lo.eq(self.eg + 64),
                     self.eg_hi.eq(self.eg - 64)]
        return m


class LogRatioIndex(wiring.Component):
    """Stage 3, the state's part: ``fv = Sm - 2**(WM-1)`` (signed WM + 1), the log unit's input (negative only
    for a state word breaking the invariant; 0 for a zero gradient, whose state log the golden model takes
    as 0). Its own part so that a pipeline can register it before the table reads. Combinational
    (latency 0)."""

    def __init__(self, spec: Spec):
        self._w = w = Widths(spec)
        super().__init__({"Sm": In(w.WM), "zero": In(1), "fv": Out(signed(w.WM + 1))})

    def elaborate(self, platform):
        m = Module()
        WM = self._w.WM
        with m.If(~self.zero):
            # Sm - 2**(WM-1) is Sm with its top bit inverted, read as a WM-bit signed number: no adder.
            m.d.comb += self.fv.eq(Cat(self.Sm[:WM - 1], ~self.Sm[WM - 1]).as_signed())
        return m


class LogRatioLookup(wiring.Component):
    """Stage 3, part a: the exponent difference and its clamp's comparisons, and the two log tables' reads.

    Inputs as :class:`LogRatio`, with ``eg``, ``eg_lo``, ``eg_hi`` (:class:`LogRatioExp`) for ``en`` and ``fv``
    (:class:`LogRatioIndex`) for ``Sm`` and ``zero``; outputs ``I_diff`` (``eg - Em``, its low 8 bits: exact
    where the clamp passes it), ``I_min`` (``eg - Em < -64``), ``I_max`` (``eg - Em > 64``), which
    :class:`LogRatioClamp` turns into ``I``, and the :class:`InterpolatorLookup` outputs of the gradient's log unit (prefixed ``g_``: ``g_t0_0``, ``g_d_0``, ...,
    ``g_sel``, ``g_l``) and of the state's (prefixed ``v_``). Combinational (latency 0).
    """

    def __init__(self, spec: Spec, *, log_table=None):
        self._w = w = Widths(spec)
        default = tables.log_table(spec)
        table = check_table("log_table", default if log_table is None else log_table, len(default), w.log_entry)
        sh = tables.LOG_INPUT_BITS - w.a
        #: The parameters of the gradient's and the state's interpolators.
        self.g = dict(table=table, index_bits=w.a, frac_bits=sh)
        self.v = dict(table=table, index_bits=w.a, frac_bits=sh, wrap=True)
        ports = {
            "S16": In(16), "eg": In(_eg_shape(w)), "eg_lo": In(signed(_eg_shape(w).width + 1)),
            "eg_hi": In(signed(_eg_shape(w).width + 1)), "Em": In(w.WE), "fv": In(signed(w.WM + 1)),
            "I_diff": Out(signed(8)), "I_min": Out(1), "I_max": Out(1),
        }
        for x, params in (("g_", self.g), ("v_", self.v)):
            ports.update({x + name: Out(shape) for name, shape in lookup_outputs(**params).items()})
        super().__init__(ports)

    def elaborate(self, platform):
        m = Module()
        w = self._w
        WM = w.WM

        # Read the log of the gradient's significand: f = (S16 - 2**15) << 1.
        m.submodules.log_g = log_g = InterpolatorLookup(**self.g)
        m.d.comb += log_g.f.eq(Cat(Const(0, 1), self.S16[:15]))

        # Read the log of the state's significand, fv (LogRatioIndex) as 16 fraction bits.
        fv = self.fv
        m.submodules.log_v = log_v = InterpolatorLookup(**self.v)
        m.d.comb += log_v.f.eq(fv >> (WM - 17) if WM >= 17 else fv << (17 - WM))
        for x, lookup, params in (("g_", log_g, self.g), ("v_", log_v, self.v)):
            m.d.comb += [getattr(self, x + name).eq(getattr(lookup, name)) for name in lookup_outputs(**params)]

        # The exponent difference and the clamp's two comparisons side by side (LogRatioClamp selects).
        m.d.comb += [self.I_diff.eq(self.eg - self.Em), self.I_min.eq(self.eg_lo < self.Em),
                     self.I_max.eq(self.eg_hi > self.Em)]
        return m


class LogRatioClamp(wiring.Component):
    """Stage 3: the integer part ``I = clamp(eg - Em, -64, 64)`` (signed 8) from :class:`LogRatioLookup`'s
    ``I_diff``, ``I_min``, ``I_max``; a part of its own so that the comparisons' carry chains end in a
    register. Combinational (latency 0)."""

    def __init__(self, spec: Spec):
        super().__init__({"I_diff": In(signed(8)), "I_min": In(1), "I_max": In(1), "I": Out(signed(8))})

    def elaborate(self, platform):
        m = Module()
        m.d.comb += self.I.eq(Mux(self.I_min, -64, Mux(self.I_max, 64, self.I_diff)))
        return m


class LogRatioSum(wiring.Component):
    """Stage 3, last part: ``X = (I << F) + 2 * Lg - Lv``. Combinational (latency 0)."""

    def __init__(self, spec: Spec):
        self._w = w = Widths(spec)
        y_bits = w.log_entry
        super().__init__({"I": In(signed(8)), "Lg": In(y_bits), "Lv": In(y_bits), "X": Out(w.X)})

    def elaborate(self, platform):
        m = Module()
        m.d.comb += self.X.eq((self.I << self._w.F) + 2 * self.Lg - self.Lv)
        return m


def log_ratio_parts(spec: Spec, *, log_table=None) -> list:
    """Stage 3 as :func:`~lnsim_rtl._util.pipeline` stages: ``eg`` (needs only ``en``, so a pipeline may
    take it earlier) | ``fv`` | exponent difference and table reads | ``I`` and both bank selects | both
    multiplies | both interpolation sums (``Lg``, ``Lv``) | ``X``."""
    lookup = LogRatioLookup(spec, log_table=log_table)
    g, v = lookup.g, lookup.v
    return [
        {"log_ratio_exp": LogRatioExp(spec)},
        {"log_ratio_index": LogRatioIndex(spec)},
        {"log_ratio_lookup": lookup},
        {"log_ratio_clamp": LogRatioClamp(spec), "log_g_select": InterpolatorSelect(**g, prefix="g_"),
         "log_v_select": InterpolatorSelect(**v, prefix="v_")},
        {"log_g_product": InterpolatorProduct(**g, prefix="g_"), "log_v_product": InterpolatorProduct(**v, prefix="v_")},
        {"log_g_add": InterpolatorAdd(**g, prefix="g_", out="Lg"), "log_v_add": InterpolatorAdd(**v, prefix="v_", out="Lv")},
        {"log_ratio_sum": LogRatioSum(spec)},
    ]


class LogRatio(wiring.Component):
    """Stage 3: the fixed-point logarithm of ``g**2 / v`` (docs/datapath.md, "Stage 3").

    Two log units (:class:`Interpolator` over ``tables.log_table(spec)``), one for the gradient's significand
    and one for the state's mantissa, and the exponent difference clamped to -64..64. The combinational
    reference of the stage: the parts of :func:`log_ratio_parts` chained without registers
    (:class:`~lnsim_rtl.UpdateUnit` registers after each).

    Parameters
    ----------
    spec : Spec
    log_table : sequence of int, optional
        Overrides the ROM contents (fault injection only): ``2**a + 1`` integers in ``0 .. 2**(F+1) - 1``.

    Ports
    -----
    S16, en : In
        From :class:`Unpack`.
    Em, Sm : In
        From :class:`Ema`.
    zero : In(1)
        Zero gradient: the state's log is taken as 0, as the golden model does (X is then unused).
    X : Out(signed(F + 8))
        ``~= 2**F * log2(g**2 / v)``.

    Combinational (latency 0).
    """

    def __init__(self, spec: Spec, *, log_table=None):
        self._w = w = Widths(spec)
        default = tables.log_table(spec)
        self._table = check_table("log_table", default if log_table is None else log_table,
                                   len(default), w.log_entry)
        super().__init__({
            "S16": In(16), "en": In(w.en), "Em": In(w.WE), "Sm": In(w.WM), "zero": In(1),
            "X": Out(w.X),
        })

    def elaborate(self, platform):
        return reference(self, log_ratio_parts(self._w.spec, log_table=self._table))
