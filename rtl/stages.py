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

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

from lnsim import tables
from lnsim.spec import Spec

from ._util import check_table, clamp

__all__ = ["Interpolator", "Unpack", "Ema", "LogRatio", "RungStep", "SaturatingAdd", "Widths"]


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


class Interpolator(wiring.Component):
    """A table with linear interpolation: ``T[i] + (((T[i+1] - T[i]) * l) >> sh)``.

    ``i = f >> sh`` and ``l = f & (2**sh - 1)``, with ``sh = frac_bits``: the log unit ``LOGU`` (``sh = 16 - a``)
    and the antilog of stage 4 (``sh = F + 1 - a``) of docs/datapath.md. The table is a ROM
    (:class:`amaranth.lib.memory.Memory`, two asynchronous read ports); the multiplier is as wide as the
    largest difference of neighbouring entries.

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
    """

    def __init__(self, table, *, index_bits: int, frac_bits: int, wrap: bool = False):
        self._a, self._sh, self._wrap = index_bits, frac_bits, wrap
        self._table = check_table("table", table, 2**index_bits + 1, max(int(v) for v in table).bit_length())
        if wrap and frac_bits == 0:
            raise ValueError("frac_bits must be at least 1 with wrap, not 0")
        width = max(max(self._table), 1).bit_length()
        f_shape = signed(index_bits + frac_bits + 1) if wrap else unsigned(index_bits + frac_bits)
        super().__init__({"f": In(f_shape), "y": Out(width)})

    def elaborate(self, platform):
        m = Module()
        T, a, sh = self._table, self._a, self._sh

        # Split the input into the table index and the fraction between two entries.
        i = Signal(signed(a + 1) if self._wrap else unsigned(a))
        m.d.comb += i.eq(self.f >> sh)

        # Read both neighbours; a negative index (wrap) reads T[i + 2**a + 1] (i = -1 is handled below).
        j0 = Signal(a)
        m.d.comb += j0.eq(Mux(i < 0, i + 2**a + 1, i) if self._wrap else i)
        m.submodules.rom = rom = memory.Memory(shape=unsigned(len(self.y)), depth=len(T), init=T)
        rd0 = rom.read_port(domain="comb")
        m.d.comb += rd0.addr.eq(j0)
        t0 = rd0.data
        if sh == 0:  # a = F + 1: no fraction bits, the table alone
            m.d.comb += self.y.eq(t0)
            return m
        rd1 = rom.read_port(domain="comb")
        m.d.comb += rd1.addr.eq(j0 + 1)
        t1 = rd1.data
        l = Signal(sh)
        m.d.comb += l.eq(self.f[:sh])

        # Interpolate: the difference is unsigned for a monotone table, so the multiplier is as narrow as it.
        diffs = [T[j + 1] - T[j] for j in range(len(T) - 1)]
        lo, hi = min(diffs), max(diffs)
        dw = max(lo.bit_length(), hi.bit_length())
        d = Signal(signed(dw + 1) if lo < 0 else unsigned(max(dw, 1)))
        m.d.comb += d.eq(t1 - t0)
        m.d.comb += self.y.eq(t0 + ((d * l) >> sh))

        # Wrap: the pair (T[2**a], T[0]) at i = -1, with a constant difference.
        if self._wrap:
            last, step = T[-1], T[0] - T[-1]
            with m.If(i == -1):
                m.d.comb += self.y.eq(last + ((Const(step) * l) >> sh))
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


class Ema(wiring.Component):
    """Stage 2: the second-moment EMA in a linear pseudo-float (docs/datapath.md, "Stage 2").

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
        w = self._w
        WM, s, MB = w.WM, w.s, w.MB

        # Decay the old state: M1 = M - round(M / 2**s).
        E, M = self.st[WM:], self.st[:WM]
        M1 = Signal(WM)
        m.d.comb += M1.eq(M - ((M + 2 ** (s - 1)) >> s))

        # Square the significand and round it to the new term's mantissa.
        sq = Signal(32)
        m.d.comb += sq.eq(self.S16 * self.S16)
        hi = sq[31]
        sqn = Signal(32)
        m.d.comb += sqn.eq(Mux(hi, sq, sq << 1))
        Mt = Signal(WM + 1)
        Et = Signal((2 * w.EMAXF + 2 * MB).bit_length())  # en = EMAXF for a NaN: still no overflow
        with m.If(~self.zero):
            m.d.comb += [
                Mt.eq((sqn + 2 ** (31 - WM)) >> (32 - WM)),
                Et.eq(2 * self.en + hi + (2 * MB - 1)),
            ]

        # Align both to the larger exponent, rounding half up: ((x << 1 >> d) + 1) >> 1 == (x + 2**(d-1)) >> d.
        Em0 = Signal(max(w.WE, len(Et)))
        m.d.comb += Em0.eq(Mux(E > Et, E, Et))
        dv, dt = Signal(5), Signal(5)
        m.d.comb += [dv.eq(clamp(Em0 - E, 0, 31)), dt.eq(clamp(Em0 - Et, 0, 31))]
        Av, At = Signal(WM), Signal(WM + 1)
        m.d.comb += [
            Av.eq((((M1 << 1) >> dv) + 1) >> 1),
            At.eq((((Mt << 1) >> dt) + 1) >> 1),
        ]

        # Add and renormalise by one place either way.
        Sm0 = Signal(WM + 1)
        m.d.comb += Sm0.eq(Av + At)
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


class LogRatio(wiring.Component):
    """Stage 3: the fixed-point logarithm of ``g**2 / v`` (docs/datapath.md, "Stage 3").

    Two log units (:class:`Interpolator` over ``tables.log_table(spec)``), one for the gradient's significand
    and one for the state's mantissa, and the exponent difference clamped to -64..64.

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
        w = self._w
        WM, sh = w.WM, tables.LOG_INPUT_BITS - w.a

        # Take the log of the gradient's significand: f = (S16 - 2**15) << 1.
        m.submodules.log_g = log_g = Interpolator(self._table, index_bits=w.a, frac_bits=sh)
        m.d.comb += log_g.f.eq(Cat(Const(0, 1), self.S16[:15]))

        # Take the log of the state's significand: fv = Sm - 2**(WM-1), as 16 fraction bits (negative only
        # for a state word breaking the invariant; zero for a zero gradient).
        fv = Signal(signed(WM + 1))
        with m.If(~self.zero):
            m.d.comb += fv.eq(self.Sm - 2 ** (WM - 1))
        m.submodules.log_v = log_v = Interpolator(self._table, index_bits=w.a, frac_bits=sh, wrap=True)
        m.d.comb += log_v.f.eq(fv >> (WM - 17) if WM >= 17 else fv << (17 - WM))

        # Add the exponent difference, clamped to -64..64, as the integer part.
        I = Signal(signed(8))
        m.d.comb += I.eq(clamp(2 * self.en - self.Em + (2 * w.MB - 1 + w.s), -64, 64))
        m.d.comb += self.X.eq((I << w.F) + 2 * log_g.y - log_v.y)
        return m


class RungStep(wiring.Component):
    """Stage 4: the ratio to a whole rung step (docs/datapath.md, "Stage 4").

    Adds the step's scalars, takes the antilog of half of it (:class:`Interpolator` over
    ``tables.antilog_table(spec)``), shifts by the integer part, rounds half up and clamps to ``SSTAR``.

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
        w = self._w
        F = w.F

        # Add the step's scalars.
        m.d.comb += self.Y.eq(self.X + self.log_eta - self.log_bc)

        # Take the antilog of the fraction of Y / 2: A ~= 2**24 * 2**(ph / 2**(F+1)).
        m.submodules.alog = alog = Interpolator(self._table, index_bits=w.a, frac_bits=F + 1 - w.a)
        m.d.comb += alog.f.eq(self.Y[:F + 1])

        # Shift by the integer part q (clamped to -2..23), round half up, clamp to SSTAR.
        q = Signal(signed(len(self.Y) - F - 1))
        m.d.comb += q.eq(self.Y >> (F + 1))
        shift = Signal(range(26))
        m.d.comb += shift.eq(23 - clamp(q, -2, 23))
        n0 = Signal(len(alog.y))
        m.d.comb += n0.eq(((alog.y >> shift) + 1) >> 1)
        with m.If(~self.zero):
            m.d.comb += self.n.eq(Mux(n0 > w.SSTAR, w.SSTAR, n0))
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
