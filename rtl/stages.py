"""The combinational stages of the B-bit Madam update datapath (docs/datapath.md, stages 1-5).

Each stage is a small :class:`wiring.Component` whose port names are the variable names of
docs/datapath.md and of :func:`lnsim.golden.update_trace`, so each can be checked alone against the golden
model's intermediate values. :class:`~lnsim_rtl.UpdateUnit` chains them with pipeline registers.

Widths follow the "Bit widths" table of docs/datapath.md; a value that can be negative is signed. One is
wider than that table, so that no port value can overflow: ``Y`` is signed F + 9 (the table's F + 8 holds
every ``log_eta`` and ``log_bc`` a host computes, F + 9 every value their ports can carry).

Every stage is exact for every input word, including state words that break the normalisation invariant
of docs/datapath.md stage 2 (see :class:`Interpolator`): the RTL then still agrees with the golden model.
"""

from __future__ import annotations

from types import SimpleNamespace

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

from lnsim import tables
from lnsim.spec import Spec

from ._util import check_table, clamp

__all__ = ["Interpolator", "Unpack", "Ema", "LogRatio", "RungStep", "RungStepLookup", "RungStepRound",
           "InterpolatorLookup", "InterpolatorMul", "EmaSquare", "EmaAlign", "EmaAdd", "LogRatioLookup",
           "LogRatioSum",
           "SaturatingAdd", "Widths", "chain", "outputs_for"]


class Widths:
    """Every constant and port width of the update datapath, derived from one :class:`~lnsim.spec.Spec`.

    Attribute names are those of docs/datapath.md ("Parameters and derived constants", "Bit widths").
    """

    def __init__(self, spec: Spec):
        if not isinstance(spec, Spec):
            raise TypeError(f"spec must be an lnsim.spec.Spec, not {spec!r}")
        g, c = spec.cfg.grad_format, spec.cfg
        self.spec = spec
        #: Gradient format: width, exponent bits, mantissa bits, exponent field of Inf/NaN.
        self.W, self.EB, self.MB, self.EMAXF = g.width, g.exp_bits, g.man_bits, g.exp_field_max
        #: Second-moment state: exponent bits, mantissa bits, word width, largest exponent.
        self.WE, self.WM = c.state_exp_bits, c.state_man_bits
        self.state_bits = c.state_bits
        self.EMAX = spec.state_exp_max
        self.s, self.F, self.a = c.beta_shift, c.log_frac_bits, c.table_index_bits
        #: Code width, largest code, largest rung step.
        self.B, self.KMAX, self.SSTAR = spec.fmt.bits, spec.fmt.code_max, spec.eta_star_rungs
        # Port shapes of the stages.
        self.en = signed(self.EB + 1)
        self.n = unsigned(self.SSTAR.bit_length())
        self.X = signed(self.F + 8)
        self.Y = signed(self.F + 9)
        self.log_eta = unsigned(self.F + 6)
        self.log_bc = unsigned(self.F + 5)
        #: Entry widths of the log and antilog tables (the widest entry of the generated tables).
        self.log_entry = self.F + 1
        self.antilog_entry = tables.ANTILOG_FRAC_BITS + 2


def _interp_params(table, *, index_bits: int, frac_bits: int, wrap: bool):
    """The checked table and the port shapes of an interpolator (:class:`InterpolatorLookup`)."""
    T = check_table("table", table, 2**index_bits + 1, max(int(v) for v in table).bit_length())
    if wrap and frac_bits == 0:
        raise ValueError("frac_bits must be at least 1 with wrap, not 0")
    diffs = [T[j + 1] - T[j] for j in range(len(T) - 1)]
    lo, hi = min(diffs), max(diffs)
    dw = max(lo.bit_length(), hi.bit_length())
    return SimpleNamespace(
        table=T, diffs=diffs, y_bits=max(max(T), 1).bit_length(),
        d_shape=signed(dw + 1) if lo < 0 else unsigned(max(dw, 1)),
        f_shape=signed(index_bits + frac_bits + 1) if wrap else unsigned(index_bits + frac_bits))


class Interpolator(wiring.Component):
    """A table with linear interpolation: ``T[i] + (((T[i+1] - T[i]) * l) >> sh)``.

    ``i = f >> sh`` and ``l = f & (2**sh - 1)``, with ``sh = frac_bits``: the log unit ``LOGU`` (``sh = 16 - a``)
    and the antilog of stage 4 (``sh = F + 1 - a``) of docs/datapath.md. The table is a ROM
    pair (:class:`InterpolatorLookup`: ``T[i]`` and ``T[i+1] - T[i]``, asynchronous reads); the multiplier
    is as wide as the largest difference of neighbouring entries.

    With ``wrap``, ``f`` is signed and a negative index ``i`` (in ``-2**a .. -1``) reads the table modulo its
    length, ``T[i + 2**a + 1]`` and ``T[i + 1 (mod 2**a + 1)]``, as the golden model's NumPy-style indexing
    does. Only ``Lv`` of a state word breaking the normalisation invariant gets there; the wrapped pair
    ``(T[2**a], T[0])`` is a constant-coefficient product, so the multiplier stays narrow.

    Parameters
    ----------
    table : list of int
        ``2**index_bits + 1`` non-negative entries.
    index_bits, frac_bits : int
        ``a`` and ``sh``.
    wrap : bool
        Signed input with the wraparound above.

    Ports
    -----
    f : In(unsigned(a + sh)), or In(signed(a + sh + 1)) with ``wrap``
        Table index and interpolation fraction.
    y : Out(unsigned(bit length of the largest entry))
        The interpolated value (always between two entries, so it needs no more bits than they do).

    Combinational (latency 0).

    The combinational reference: :class:`InterpolatorLookup` (the ROM reads) and :class:`InterpolatorMul`
    (the multiply) chained without a register; a pipeline may register between the two.
    """

    def __init__(self, table, *, index_bits: int, frac_bits: int, wrap: bool = False):
        self._lookup = dict(table=table, index_bits=index_bits, frac_bits=frac_bits, wrap=wrap)
        p = _interp_params(**self._lookup)
        super().__init__({"f": In(p.f_shape), "y": Out(p.y_bits)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.lookup = lookup = InterpolatorLookup(**self._lookup)
        m.submodules.mul = mul = InterpolatorMul(**self._lookup)
        m.d.comb += [lookup.f.eq(self.f), self.y.eq(mul.y)]
        for name in lookup.ports_out:
            m.d.comb += getattr(mul, name).eq(getattr(lookup, name))
        return m


class InterpolatorLookup(wiring.Component):
    """The table reads of :class:`Interpolator`: ``t0 = T[i]``, ``d = T[i+1] - T[i]``, ``l``, ``m1``.

    ``T[i]`` and the difference come from two ROMs of ``2**a`` entries (:class:`amaranth.lib.memory.Memory`,
    asynchronous read ports; the second holds the neighbours' differences, so no subtractor follows the
    reads). With ``wrap``, a negative index reads ``T[i + 2**a + 1]`` and ``m1`` flags ``i = -1`` (the wrapped
    pair ``(T[2**a], T[0])``, which :class:`InterpolatorMul` handles with a constant coefficient).

    Parameters and input ``f`` as :class:`Interpolator`. Outputs: ``t0``, ``d`` (unsigned for a monotone
    table, signed otherwise), ``l`` (``max(sh, 1)`` bits; 0 when ``sh == 0``), ``m1`` (1).

    Combinational (latency 0).
    """

    #: The outputs, in the order :class:`InterpolatorMul` takes them.
    ports_out = ("t0", "d", "l", "m1")

    def __init__(self, table, *, index_bits: int, frac_bits: int, wrap: bool = False):
        p = _interp_params(table, index_bits=index_bits, frac_bits=frac_bits, wrap=wrap)
        self._a, self._sh, self._wrap, self._table = index_bits, frac_bits, wrap, p.table
        self.y_bits, self.diffs, self.d_shape = p.y_bits, p.diffs, p.d_shape
        #: The wrapped pair's constants (with ``wrap``): ``T[2**a]`` and ``T[0] - T[2**a]``.
        self.last, self.step = p.table[-1], p.table[0] - p.table[-1]
        self.frac_bits, self.wrap = frac_bits, wrap
        super().__init__({"f": In(p.f_shape), "t0": Out(p.y_bits), "d": Out(p.d_shape),
                          "l": Out(max(frac_bits, 1)), "m1": Out(1)})

    def elaborate(self, platform):
        m = Module()
        T, a, sh = self._table, self._a, self._sh

        # Split the input into the table index and the fraction between two entries.
        i = Signal(signed(a + 1) if self._wrap else unsigned(a))
        m.d.comb += i.eq(self.f >> sh)
        if sh:
            m.d.comb += self.l.eq(self.f[:sh])

        # Read T[i] and T[i+1] - T[i]; a negative index (wrap) reads T[i + 2**a + 1] (i = -1: flagged).
        j0 = Signal(a)
        m.d.comb += j0.eq(Mux(i < 0, i + 2**a + 1, i) if self._wrap else i)
        # In logic, not block RAM: a pipeline register after the reads would otherwise become the block RAM's
        # read register, whose slow clock-to-output (about 5.6 ns on ECP5) then precedes the multiplier.
        attrs = {"ram_style": "logic", "rom_style": "logic"}
        m.submodules.rom = rom = memory.Memory(shape=unsigned(self.y_bits), depth=2**a, init=T[:2**a], attrs=attrs)
        m.submodules.drom = drom = memory.Memory(shape=self.d_shape, depth=2**a, init=self.diffs, attrs=attrs)
        rd_t, rd_d = rom.read_port(domain="comb"), drom.read_port(domain="comb")
        m.d.comb += [rd_t.addr.eq(j0), rd_d.addr.eq(j0), self.t0.eq(rd_t.data), self.d.eq(rd_d.data)]
        if self._wrap:
            m.d.comb += self.m1.eq(i == -1)
        return m


class InterpolatorMul(wiring.Component):
    """The multiply of :class:`Interpolator`: ``y = t0 + ((d * l) >> sh)`` (with ``m1``:
    ``T[2**a] + (((T[0] - T[2**a]) * l) >> sh)``, a constant-coefficient product).

    Same parameters as the :class:`InterpolatorLookup` whose outputs it takes.

    Combinational (latency 0).
    """

    def __init__(self, table, *, index_bits: int, frac_bits: int, wrap: bool = False):
        p = _interp_params(table, index_bits=index_bits, frac_bits=frac_bits, wrap=wrap)
        self._sh, self._wrap, self._last, self._step = frac_bits, wrap, p.table[-1], p.table[0] - p.table[-1]
        super().__init__({"t0": In(p.y_bits), "d": In(p.d_shape), "l": In(max(frac_bits, 1)),
                          "m1": In(1), "y": Out(p.y_bits)})

    def elaborate(self, platform):
        m = Module()
        sh = self._sh
        if sh == 0:  # a = F + 1: no fraction bits, the table alone
            m.d.comb += self.y.eq(self.t0)
            return m
        # Interpolate: the difference is unsigned for a monotone table, so the multiplier is as narrow as it.
        m.d.comb += self.y.eq(self.t0 + ((self.d * self.l) >> sh))
        # Wrap: the pair (T[2**a], T[0]) at i = -1, with a constant difference.
        if self._wrap:
            with m.If(self.m1):
                m.d.comb += self.y.eq(self._last + ((Const(self._step) * self.l) >> sh))
        return m


class Unpack(wiring.Component):
    """Stage 1: classify and normalise the gradient (docs/datapath.md, "Stage 1").

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
        S = Signal(MB + 1)
        m.d.comb += S.eq(Mux(self.zero, 1, Cat(man, e.any())))
        x = Mux(e > 1, e, 1)

        # Find the leading one (a priority encoder: the highest set bit wins).
        p = Signal(range(MB + 1))
        for bit in range(MB + 1):
            with m.If(S[bit]):
                m.d.comb += p.eq(bit)

        # Normalise: shift the leading one to bit MB and scale to 16 bits.
        shift = Signal(range(MB + 1))
        Sn = Signal(MB + 1)
        m.d.comb += [shift.eq(MB - p), Sn.eq(S << shift)]
        m.d.comb += self.en.eq(x - shift)
        m.d.comb += self.S16.eq(Sn << (15 - MB) if MB <= 15 else Sn >> (MB - 15))
        return m


def outputs_for(src: wiring.Component, dst: wiring.Component) -> dict:
    """``{name: src.name}`` for every input port of ``dst`` that ``src`` has as an output port.

    How the stage parts are chained: combinationally (:func:`chain`) in the reference components, through
    pipeline registers in :class:`~lnsim_rtl.UpdateUnit`.
    """
    src_out = {n for n, mem in src.signature.members.items() if mem.flow == wiring.Out}
    return {n: getattr(src, n) for n, mem in dst.signature.members.items()
            if mem.flow == wiring.In and n in src_out}


def chain(m: Module, src: wiring.Component, dst: wiring.Component):
    """Drive every input port of ``dst`` from ``src``'s output port of the same name (combinationally)."""
    m.d.comb += [getattr(dst, n).eq(v) for n, v in outputs_for(src, dst).items()]


#: The smallest 16-bit significand whose square has bit 31 set: ``S16 * S16 >= 2**31`` iff ``S16 >= HI_SQ``.
HI_SQ = 46341


class EmaSquare(wiring.Component):
    """Stage 2, first part: decay the old state, square and round the new term, the alignment distances.

    Inputs as :class:`Ema`; outputs ``M1`` (WM, the decayed mantissa), ``Mt`` (WM + 1, the new term's),
    ``Em0`` (the larger exponent), ``diff`` (signed, ``Et - E``, the exponent difference). Bit 31 of the square
    (``hi``) is taken from a comparison with :data:`HI_SQ` (exact for every 16-bit ``S16``), so the
    exponents do not wait for the multiplier. Combinational (latency 0).
    """

    def __init__(self, spec: Spec):
        self._w = w = Widths(spec)
        self._et_bits = (2 * w.EMAXF + 2 * w.MB).bit_length()  # en = EMAXF for a NaN: still no overflow
        super().__init__({
            "st": In(w.state_bits), "S16": In(16), "en": In(w.en), "zero": In(1),
            "M1": Out(w.WM), "Mt": Out(w.WM + 1), "Em0": Out(max(w.WE, self._et_bits)),
            "diff": Out(signed(max(w.WE, self._et_bits) + 2)),
        })

    def elaborate(self, platform):
        m = Module()
        w = self._w
        WM, s, MB = w.WM, w.s, w.MB

        # Decay the old state: M1 = M - round(M / 2**s).
        E, M = self.st[WM:], self.st[:WM]
        m.d.comb += self.M1.eq(M - ((M + 2 ** (s - 1)) >> s))

        # Square the significand and round it to the new term's mantissa.
        sq = Signal(32)
        m.d.comb += sq.eq(self.S16 * self.S16)
        hi = Signal()
        m.d.comb += hi.eq(self.S16 >= HI_SQ)  # == sq[31]
        sqn = Signal(32)
        m.d.comb += sqn.eq(Mux(hi, sq, sq << 1))
        Et = Signal(self._et_bits)
        with m.If(~self.zero):
            m.d.comb += [
                self.Mt.eq((sqn + 2 ** (31 - WM)) >> (32 - WM)),
                Et.eq(2 * self.en + hi + (2 * MB - 1)),
            ]

        # The larger exponent Em0 = max(E, Et) and the exponent difference (EmaAlign turns it into the shifts).
        m.d.comb += self.diff.eq(Et - E)
        m.d.comb += self.Em0.eq(Mux(self.diff < 0, E, Et))
        return m


class EmaAlign(wiring.Component):
    """Stage 2, second part: align both mantissas to the larger exponent.

    Inputs ``M1``, ``Mt``, ``diff`` (from :class:`EmaSquare`); outputs ``Av`` (WM), ``At`` (WM + 1). The
    shifts are ``dv = clamp(Em0 - E, 0, 31) = clamp(diff, 0, 31)`` and ``dt = clamp(Em0 - Et, 0, 31) =
    clamp(-diff, 0, 31)``. Combinational (latency 0).
    """

    def __init__(self, spec: Spec):
        self._w = w = Widths(spec)
        et_bits = (2 * w.EMAXF + 2 * w.MB).bit_length()
        super().__init__({
            "M1": In(w.WM), "Mt": In(w.WM + 1), "diff": In(signed(max(w.WE, et_bits) + 2)),
            "Av": Out(w.WM), "At": Out(w.WM + 1),
        })

    def elaborate(self, platform):
        m = Module()
        dv, dt = Signal(5), Signal(5)
        m.d.comb += [dv.eq(clamp(self.diff, 0, 31)), dt.eq(clamp(-self.diff, 0, 31))]
        # Round half up: ((x << 1 >> d) + 1) >> 1 == (x + 2**(d-1)) >> d.
        m.d.comb += [
            self.Av.eq((((self.M1 << 1) >> dv) + 1) >> 1),
            self.At.eq((((self.Mt << 1) >> dt) + 1) >> 1),
        ]
        return m


class EmaAdd(wiring.Component):
    """Stage 2, second part: add the aligned mantissas, renormalise, saturate.

    Inputs ``Av``, ``At`` (from :class:`EmaAlign`), ``Em0`` (from :class:`EmaSquare`); outputs as
    :class:`Ema`. Combinational (latency 0).
    """

    def __init__(self, spec: Spec):
        self._w = w = Widths(spec)
        em0_bits = max(w.WE, (2 * w.EMAXF + 2 * w.MB).bit_length())
        super().__init__({
            "Av": In(w.WM), "At": In(w.WM + 1), "Em0": In(em0_bits),
            "Em": Out(w.WE), "Sm": Out(w.WM), "st_new": Out(w.state_bits),
        })

    def elaborate(self, platform):
        m = Module()
        w = self._w
        WM, Em0 = w.WM, self.Em0

        # Add and renormalise by one place either way.
        Sm0 = Signal(WM + 1)
        m.d.comb += Sm0.eq(self.Av + self.At)
        over = Sm0[WM]
        under = ~Sm0[WM] & ~Sm0[WM - 1] & (Em0 != 0)
        Sm1 = Signal(WM)
        Em1 = Signal(len(Em0) + 1)
        m.d.comb += [
            Sm1.eq(Mux(over, Sm0 >> 1, Mux(under, Sm0 << 1, Sm0))),
            Em1.eq(Em0 + over - under),
        ]

        # Saturate (unreachable for a valid state: WE is sized for it).
        sat = Em1 > w.EMAX
        m.d.comb += [
            self.Em.eq(Mux(sat, w.EMAX, Em1)),
            self.Sm.eq(Mux(sat, 2**WM - 1, Sm1)),
            self.st_new.eq(Cat(self.Sm, self.Em)),
        ]
        return m


class Ema(wiring.Component):
    """Stage 2: the second-moment EMA in a linear pseudo-float (docs/datapath.md, "Stage 2").

    The combinational reference of the stage: :class:`EmaSquare`, :class:`EmaAlign` and :class:`EmaAdd`
    chained without registers (:class:`~lnsim_rtl.UpdateUnit` registers after each, stages 2a, 2b, 2c).

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
        m = Module()
        m.submodules.square = square = EmaSquare(self._w.spec)
        m.submodules.align = align = EmaAlign(self._w.spec)
        m.submodules.add = add = EmaAdd(self._w.spec)
        m.d.comb += [square.st.eq(self.st), square.S16.eq(self.S16), square.en.eq(self.en),
                     square.zero.eq(self.zero)]
        chain(m, square, align)
        chain(m, align, add)
        m.d.comb += add.Em0.eq(square.Em0)
        m.d.comb += [self.Em.eq(add.Em), self.Sm.eq(add.Sm), self.st_new.eq(add.st_new)]
        return m


class LogRatioLookup(wiring.Component):
    """Stage 3, first part: the exponent difference ``I`` and the two log tables' reads.

    Inputs as :class:`LogRatio`; outputs ``I`` (signed 8, clamped to -64..64) and the
    :class:`InterpolatorLookup` outputs of the gradient's log unit (``g_t0``, ``g_d``, ``g_l``) and of the
    state's (``v_t0``, ``v_d``, ``v_l``, ``v_m1``). Combinational (latency 0).
    """

    def __init__(self, spec: Spec, *, log_table=None):
        self._w = w = Widths(spec)
        default = tables.log_table(spec)
        table = check_table("log_table", default if log_table is None else log_table, len(default), w.log_entry)
        sh = tables.LOG_INPUT_BITS - w.a
        self._g = dict(table=table, index_bits=w.a, frac_bits=sh)
        self._v = dict(table=table, index_bits=w.a, frac_bits=sh, wrap=True)
        pg, pv = _interp_params(**self._g, wrap=False), _interp_params(**self._v)
        super().__init__({
            "S16": In(16), "en": In(w.en), "Em": In(w.WE), "Sm": In(w.WM), "zero": In(1),
            "I": Out(signed(8)),
            "g_t0": Out(pg.y_bits), "g_d": Out(pg.d_shape), "g_l": Out(max(sh, 1)),
            "v_t0": Out(pv.y_bits), "v_d": Out(pv.d_shape), "v_l": Out(max(sh, 1)), "v_m1": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        w = self._w
        WM = w.WM

        # Read the log of the gradient's significand: f = (S16 - 2**15) << 1.
        m.submodules.log_g = log_g = InterpolatorLookup(**self._g)
        m.d.comb += log_g.f.eq(Cat(Const(0, 1), self.S16[:15]))

        # Read the log of the state's significand: fv = Sm - 2**(WM-1), as 16 fraction bits (negative only
        # for a state word breaking the invariant; zero for a zero gradient).
        fv = Signal(signed(WM + 1))
        with m.If(~self.zero):
            m.d.comb += fv.eq(self.Sm - 2 ** (WM - 1))
        m.submodules.log_v = log_v = InterpolatorLookup(**self._v)
        m.d.comb += log_v.f.eq(fv >> (WM - 17) if WM >= 17 else fv << (17 - WM))
        for name in InterpolatorLookup.ports_out:
            m.d.comb += getattr(self, f"v_{name}").eq(getattr(log_v, name))
            if name != "m1":
                m.d.comb += getattr(self, f"g_{name}").eq(getattr(log_g, name))

        # The exponent difference, clamped to -64..64, as the integer part.
        m.d.comb += self.I.eq(clamp(2 * self.en - self.Em + (2 * w.MB - 1 + w.s), -64, 64))
        return m

    def sum(self) -> "LogRatioSum":
        """Stage 3, second part, for this lookup's outputs."""
        return LogRatioSum(self._w.spec, self._g, self._v)


class LogRatioSum(wiring.Component):
    """Stage 3, second part: the two interpolation multiplies and ``X = (I << F) + 2 * Lg - Lv``.

    Inputs: the outputs of :class:`LogRatioLookup` (make one with :meth:`LogRatioLookup.sum`); output ``X``.
    Combinational (latency 0).
    """

    def __init__(self, spec: Spec, g: dict, v: dict):
        self._w = w = Widths(spec)
        self._g, self._v = g, v
        pg, pv = _interp_params(**g, wrap=False), _interp_params(**v)
        l_bits = max(g["frac_bits"], 1)
        super().__init__({
            "I": In(signed(8)),
            "g_t0": In(pg.y_bits), "g_d": In(pg.d_shape), "g_l": In(l_bits),
            "v_t0": In(pv.y_bits), "v_d": In(pv.d_shape), "v_l": In(l_bits), "v_m1": In(1),
            "X": Out(w.X),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.mul_g = mul_g = InterpolatorMul(**self._g)
        m.submodules.mul_v = mul_v = InterpolatorMul(**self._v)
        for name in InterpolatorLookup.ports_out:
            m.d.comb += getattr(mul_v, name).eq(getattr(self, f"v_{name}"))
            if name != "m1":
                m.d.comb += getattr(mul_g, name).eq(getattr(self, f"g_{name}"))
        m.d.comb += self.X.eq((self.I << self._w.F) + 2 * mul_g.y - mul_v.y)
        return m


class LogRatio(wiring.Component):
    """Stage 3: the fixed-point logarithm of ``g**2 / v`` (docs/datapath.md, "Stage 3").

    Two log units (:class:`Interpolator` over ``tables.log_table(spec)``), one for the gradient's significand
    and one for the state's mantissa, and the exponent difference clamped to -64..64. The combinational
    reference of the stage: :class:`LogRatioLookup` (the table reads) and :class:`LogRatioSum` (the
    multiplies and the sum) chained without a register (:class:`~lnsim_rtl.UpdateUnit` registers between
    them, stages 3a and 3b).

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
        m = Module()
        m.submodules.lookup = lookup = LogRatioLookup(self._w.spec, log_table=self._table)
        m.submodules.sum = total = lookup.sum()
        m.d.comb += [lookup.S16.eq(self.S16), lookup.en.eq(self.en), lookup.Em.eq(self.Em),
                     lookup.Sm.eq(self.Sm), lookup.zero.eq(self.zero)]
        chain(m, lookup, total)
        m.d.comb += self.X.eq(total.X)
        return m


class RungStepLookup(wiring.Component):
    """Stage 4, first part: the step's scalars, the split of ``Y`` and the antilog table reads.

    ``Y = X + log_eta - log_bc``; ``ph = Y & (2**(F+1) - 1)`` goes to an :class:`InterpolatorLookup` over
    ``tables.antilog_table(spec)`` (outputs ``t0 = ALOG[i]``, ``d = ALOG[i+1] - ALOG[i]``, ``l``), and
    ``shift = 23 - clamp(q, -2, 23)`` with ``q = Y >> (F + 1)`` (docs/datapath.md, "Stage 4").

    Ports
    -----
    X, log_eta, log_bc : In
        As :class:`RungStep`.
    Y : Out(signed(F + 9))
        ``X + log_eta - log_bc``.
    t0, d, l : Out
        The interpolation pair and fraction, for :meth:`interp`.
    shift : Out(range(26))
        ``23 - qc``.

    Combinational (latency 0).
    """

    def __init__(self, spec: Spec, *, antilog_table=None):
        self._w = w = Widths(spec)
        default = tables.antilog_table(spec)
        self._table = check_table("antilog_table", default if antilog_table is None else antilog_table,
                                  len(default), w.antilog_entry)
        self._alog = dict(table=self._table, index_bits=w.a, frac_bits=w.F + 1 - w.a)
        p = _interp_params(**self._alog, wrap=False)
        super().__init__({
            "X": In(w.X), "log_eta": In(w.log_eta), "log_bc": In(w.log_bc),
            "Y": Out(w.Y), "t0": Out(p.y_bits), "d": Out(p.d_shape), "l": Out(max(w.F + 1 - w.a, 1)),
            "shift": Out(range(26)),
        })

    def elaborate(self, platform):
        m = Module()
        F = self._w.F

        # Add the step's scalars.
        m.d.comb += self.Y.eq(self.X + self.log_eta - self.log_bc)

        # Read the antilog pair of the fraction of Y / 2 (A ~= 2**24 * 2**(ph / 2**(F+1)) after the multiply).
        m.submodules.alog = alog = InterpolatorLookup(**self._alog)
        m.d.comb += [alog.f.eq(self.Y[:F + 1]), self.t0.eq(alog.t0), self.d.eq(alog.d), self.l.eq(alog.l)]

        # The shift by the integer part q (clamped to -2..23).
        q = Signal(signed(len(self.Y) - F - 1))
        m.d.comb += q.eq(self.Y >> (F + 1))
        m.d.comb += self.shift.eq(23 - clamp(q, -2, 23))
        return m

    def interp(self) -> InterpolatorMul:
        """Stage 4, second part: the :class:`InterpolatorMul` for this lookup's outputs (``t0``, ``d``, ``l``
        in, ``m1`` unused, ``y`` out: ``A = t0 + ((d * l) >> (F + 1 - a))``, one multiplier)."""
        return InterpolatorMul(**self._alog)


class RungStepRound(wiring.Component):
    """Stage 4, third part: ``n = min(((A >> shift) + 1) >> 1, SSTAR)``, 0 for a zero gradient.

    Ports: ``A`` (from :meth:`RungStepLookup.interp`), ``shift`` (from :class:`RungStepLookup`), ``zero`` in;
    ``n`` out (bit length of SSTAR).

    Combinational (latency 0).
    """

    def __init__(self, spec: Spec, *, a_bits: int):
        self._w = w = Widths(spec)
        super().__init__({"A": In(a_bits), "shift": In(range(26)), "zero": In(1), "n": Out(w.n)})

    def elaborate(self, platform):
        m = Module()
        n0 = Signal(len(self.A))
        m.d.comb += n0.eq(((self.A >> self.shift) + 1) >> 1)
        with m.If(~self.zero):
            m.d.comb += self.n.eq(Mux(n0 > self._w.SSTAR, self._w.SSTAR, n0))
        return m


class RungStep(wiring.Component):
    """Stage 4: the ratio to a whole rung step (docs/datapath.md, "Stage 4").

    Adds the step's scalars, takes the antilog of half of it (a table ``tables.antilog_table(spec)`` with
    linear interpolation), shifts by the integer part, rounds half up and clamps to ``SSTAR``.

    The combinational reference of the stage: :class:`RungStepLookup`, its :meth:`~RungStepLookup.interp`
    (the multiply) and :class:`RungStepRound` chained without registers. :class:`~lnsim_rtl.UpdateUnit`
    uses the same three parts with a pipeline register after each (stages 4a, 4b, 4c).

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
        m = Module()
        m.submodules.lookup = lookup = RungStepLookup(self._w.spec, antilog_table=self._table)
        m.submodules.interp = interp = lookup.interp()
        m.submodules.round = rnd = RungStepRound(self._w.spec, a_bits=len(interp.y))
        m.d.comb += [
            lookup.X.eq(self.X), lookup.log_eta.eq(self.log_eta), lookup.log_bc.eq(self.log_bc),
            self.Y.eq(lookup.Y),
            interp.t0.eq(lookup.t0), interp.d.eq(lookup.d), interp.l.eq(lookup.l),
            rnd.A.eq(interp.y), rnd.shift.eq(lookup.shift), rnd.zero.eq(self.zero),
            self.n.eq(rnd.n),
        ]
        return m


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
