"""The combinational stages of the B-bit Madam update datapath (docs/datapath.md, stages 1-5).

Each stage is a small :class:`wiring.Component` whose port names are the variable names of
docs/datapath.md and of :func:`lnsim.golden.update_trace`, so each can be checked alone against the golden
model's intermediate values. Stages 1-4 are each a chain of smaller parts (:func:`unpack_parts`,
:func:`ema_parts`, :func:`log_ratio_parts`, :func:`rung_step_parts`): the stage component chains them
combinationally (the reference), :class:`~lnsim_rtl.UpdateUnit` with a pipeline register after each.

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

from ._util import check_table, clamp, pipeline

__all__ = ["Interpolator", "InterpolatorLookup", "InterpolatorSelect", "InterpolatorProduct", "InterpolatorAdd", "Unpack",
           "UnpackClassify", "UnpackNormalise", "unpack_parts",
           "Ema", "EmaSquare", "EmaRound", "EmaAlign", "EmaHalve", "EmaSum", "EmaNorm", "ema_parts",
           "LogRatio", "LogRatioExp", "LogRatioIndex", "LogRatioLookup", "LogRatioClamp", "LogRatioSum",
           "log_ratio_parts",
           "RungStep", "RungStepScalars", "RungStepSum", "RungStepLookup", "RungStepShift", "RungStepRound", "rung_step_parts",
           "SaturatingAdd", "Widths"]


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



#: Address bits of one ROM bank: a table read is ``2**(index bits - ROM_BANK_BITS)`` banks read side by side
#: (:class:`InterpolatorLookup`), then a select among them (:class:`InterpolatorSelect`), so that neither
#: holds more than a few LUT levels.
ROM_BANK_BITS = 6


def _interp_params(table, *, index_bits: int, frac_bits: int, wrap: bool):
    """The checked table and the port shapes of an interpolator (:class:`InterpolatorLookup`)."""
    T = check_table("table", table, 2**index_bits + 1, max(int(v) for v in table).bit_length())
    if wrap and frac_bits == 0:
        raise ValueError("frac_bits must be at least 1 with wrap, not 0")
    n = len(T)
    # ROM contents by index bits: i in 0 .. 2**a - 1, and with wrap the negative i (the two's complement
    # patterns 2**a .. 2**(a+1) - 1) read the pair (T[i + n], T[i + n + 1 (mod n)]), as NumPy indexing does.
    pairs = [(T[j], T[j + 1]) for j in range(n - 1)]
    if wrap:
        pairs += [(T[i + n], T[(i + n + 1) % n]) for i in range(-(n - 1), 0)]
    t0s, diffs = [t for t, _ in pairs], [t1 - t for t, t1 in pairs]
    lo, hi = min(diffs), max(diffs)
    dw = max(lo.bit_length(), hi.bit_length())
    d_shape = signed(dw + 1) if lo < 0 else unsigned(max(dw, 1))
    l_bits = max(frac_bits, 1)
    bank_bits = max(index_bits + wrap - ROM_BANK_BITS, 0)
    return SimpleNamespace(
        table=T, t0s=t0s, diffs=diffs, y_bits=max(max(T), 1).bit_length(), d_shape=d_shape, l_bits=l_bits,
        bank_bits=bank_bits, banks=1 << bank_bits,
        p_shape=(Signal(d_shape) * Signal(l_bits)).shape(),
        f_shape=signed(index_bits + frac_bits + 1) if wrap else unsigned(index_bits + frac_bits))


class Interpolator(wiring.Component):
    """A table with linear interpolation: ``T[i] + (((T[i+1] - T[i]) * l) >> sh)``.

    ``i = f >> sh`` and ``l = f & (2**sh - 1)``, with ``sh = frac_bits``: the log unit ``LOGU`` (``sh = 16 - a``)
    and the antilog of stage 4 (``sh = F + 1 - a``) of docs/datapath.md. The combinational reference of its
    four parts, which a pipeline registers between: :class:`InterpolatorLookup` (the ROM banks' reads of
    ``T[i]`` and ``T[i+1] - T[i]``), :class:`InterpolatorSelect` (the bank), :class:`InterpolatorProduct`
    (``p = d * l``, as wide as the largest difference of neighbouring entries) and :class:`InterpolatorAdd`
    (``y = t0 + (p >> sh)``).

    With ``wrap``, ``f`` is signed and a negative index ``i`` (in ``-2**a .. -1``) reads the table modulo its
    length, ``T[i + 2**a + 1]`` and ``T[i + 1 (mod 2**a + 1)]``, as the golden model's NumPy-style indexing
    does. Only ``Lv`` of a state word breaking the normalisation invariant gets there.

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
        self._params = dict(table=table, index_bits=index_bits, frac_bits=frac_bits, wrap=wrap)
        p = _interp_params(**self._params)
        super().__init__({"f": In(p.f_shape), "y": Out(p.y_bits)})

    def elaborate(self, platform):
        return _reference(self, [{"lookup": InterpolatorLookup(**self._params)},
                                 {"select": InterpolatorSelect(**self._params)},
                                 {"product": InterpolatorProduct(**self._params)},
                                 {"add": InterpolatorAdd(**self._params)}])


def _lookup_outputs(**params) -> dict:
    """The output ports of an :class:`InterpolatorLookup` with ``params``, by name: their shapes."""
    p = _interp_params(**{"wrap": False, **params})
    ports = {"sel": unsigned(max(p.bank_bits, 1)), "l": unsigned(p.l_bits)}
    for j in range(p.banks):
        ports.update({f"t0_{j}": unsigned(p.y_bits), f"d_{j}": p.d_shape})
    return ports


class InterpolatorLookup(wiring.Component):
    """The table reads of :class:`Interpolator`: ``T[i]`` and ``T[i+1] - T[i]`` from every ROM bank, the bank
    number and ``l``.

    The table is split into banks of ``2**ROM_BANK_BITS`` entries addressed by the low index bits
    (:class:`amaranth.lib.memory.Memory`, asynchronous read ports, two per bank: the entries and the
    neighbours' differences, so no subtractor follows the reads); :class:`InterpolatorSelect` picks the
    bank ``sel`` (the high index bits). With ``wrap``, the signed index's bits address ``2**(a+1)`` entries,
    the upper half holding the wrapped pairs ``T[i + 2**a + 1]``, ``T[i + 2**a + 2 (mod 2**a + 1)]`` of the
    negative ``i`` (so ``d`` is signed: ``i = -1`` reads ``T[2**a]`` and ``T[0] - T[2**a]``); no adder sits
    between the index and the reads.

    Parameters and input ``f`` as :class:`Interpolator`. Outputs: ``t0_{j}``, ``d_{j}`` per bank ``j``
    (``d`` unsigned for a monotone table without wrap, signed otherwise), ``sel`` and ``l`` (``max(sh, 1)``
    bits; 0 when ``sh == 0``).

    Combinational (latency 0).
    """

    def __init__(self, table, *, index_bits: int, frac_bits: int, wrap: bool = False):
        p = _interp_params(table, index_bits=index_bits, frac_bits=frac_bits, wrap=wrap)
        self._a, self._sh, self._wrap, self._p = index_bits, frac_bits, wrap, p
        outs = _lookup_outputs(table=table, index_bits=index_bits, frac_bits=frac_bits, wrap=wrap)
        super().__init__({"f": In(p.f_shape), **{name: Out(shape) for name, shape in outs.items()}})

    def elaborate(self, platform):
        m = Module()
        a, sh, p = self._a, self._sh, self._p
        rows = a + self._wrap
        low = rows - p.bank_bits

        # Split the input into the table index (its bits address the ROMs) and the fraction.
        i = Signal(rows)
        m.d.comb += i.eq(self.f >> sh)
        if sh:
            m.d.comb += self.l.eq(self.f[:sh])
        if p.bank_bits:
            m.d.comb += self.sel.eq(i[low:])

        # In logic, not block RAM: a pipeline register after the reads would otherwise become the block RAM's
        # read register, whose slow clock-to-output (about 5.6 ns on ECP5) then precedes the multiplier.
        attrs = {"ram_style": "logic", "rom_style": "logic"}
        for j in range(p.banks):
            bank = slice(j << low, (j + 1) << low)
            rom = memory.Memory(shape=unsigned(p.y_bits), depth=2**low, init=p.t0s[bank], attrs=attrs)
            drom = memory.Memory(shape=p.d_shape, depth=2**low, init=p.diffs[bank], attrs=attrs)
            m.submodules[f"rom{j}"], m.submodules[f"drom{j}"] = rom, drom
            rd_t, rd_d = rom.read_port(domain="comb"), drom.read_port(domain="comb")
            m.d.comb += [rd_t.addr.eq(i[:low]), rd_d.addr.eq(i[:low]),
                         getattr(self, f"t0_{j}").eq(rd_t.data), getattr(self, f"d_{j}").eq(rd_d.data)]
        return m


class InterpolatorSelect(wiring.Component):
    """The bank select of :class:`Interpolator`: ``t0 = t0_{sel}``, ``d = d_{sel}``.

    Same parameters as the :class:`InterpolatorLookup` whose outputs it takes; ``prefix`` is put before every
    port name. Combinational (latency 0).
    """

    def __init__(self, table, *, index_bits: int, frac_bits: int, wrap: bool = False, prefix: str = ""):
        p = _interp_params(table, index_bits=index_bits, frac_bits=frac_bits, wrap=wrap)
        self._prefix, self._banks = prefix, p.banks
        ports = {f"{prefix}sel": In(max(p.bank_bits, 1)), f"{prefix}t0": Out(p.y_bits), f"{prefix}d": Out(p.d_shape)}
        for j in range(p.banks):
            ports.update({f"{prefix}t0_{j}": In(p.y_bits), f"{prefix}d_{j}": In(p.d_shape)})
        super().__init__(ports)

    def elaborate(self, platform):
        m = Module()
        x = self._prefix
        port = lambda name: getattr(self, f"{x}{name}")  # noqa: E731
        # The last bank as the default: every sel value is covered (a lint rule), with one bank no case at all.
        with m.Switch(port("sel")):
            for j in range(self._banks):
                with m.Case(j) if j < self._banks - 1 else m.Default():
                    m.d.comb += [port("t0").eq(port(f"t0_{j}")), port("d").eq(port(f"d_{j}"))]
        return m


class InterpolatorProduct(wiring.Component):
    """The multiply of :class:`Interpolator`: ``p = d * l`` (one multiplier, nothing else, so a pipeline can
    register both its operands and its product).

    Same parameters as the :class:`InterpolatorLookup` whose outputs it takes; ``prefix`` is put before every
    port name (``{prefix}d``, ``{prefix}l`` in, ``{prefix}p`` out), for a stage with two interpolators.

    Combinational (latency 0).
    """

    def __init__(self, table, *, index_bits: int, frac_bits: int, wrap: bool = False, prefix: str = ""):
        p = _interp_params(table, index_bits=index_bits, frac_bits=frac_bits, wrap=wrap)
        self._prefix = prefix
        super().__init__({f"{prefix}d": In(p.d_shape), f"{prefix}l": In(p.l_bits), f"{prefix}p": Out(p.p_shape)})

    def elaborate(self, platform):
        m = Module()
        x = self._prefix
        m.d.comb += getattr(self, f"{x}p").eq(getattr(self, f"{x}d") * getattr(self, f"{x}l"))
        return m


class InterpolatorAdd(wiring.Component):
    """The sum of :class:`Interpolator`: ``y = t0 + (p >> sh)`` (``t0`` when ``sh == 0``).

    Same parameters as :class:`InterpolatorProduct`; ports ``{prefix}t0``, ``{prefix}p`` in and ``out``
    (default ``y``) out.

    Combinational (latency 0).
    """

    def __init__(self, table, *, index_bits: int, frac_bits: int, wrap: bool = False, prefix: str = "",
                 out: str = "y"):
        p = _interp_params(table, index_bits=index_bits, frac_bits=frac_bits, wrap=wrap)
        self._prefix, self._out, self._sh = prefix, out, frac_bits
        super().__init__({f"{prefix}t0": In(p.y_bits), f"{prefix}p": In(p.p_shape), out: Out(p.y_bits)})

    def elaborate(self, platform):
        m = Module()
        t0, p = getattr(self, f"{self._prefix}t0"), getattr(self, f"{self._prefix}p")
        m.d.comb += getattr(self, self._out).eq(t0 + (p >> self._sh) if self._sh else t0)
        return m


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
        return _reference(self, unpack_parts(self._w.spec))


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
        return _reference(self, ema_parts(self._w.spec))


def _reference(comp: wiring.Component, parts: list) -> Module:
    """A stage's combinational reference: ``parts`` chained without registers between ``comp``'s ports."""
    m = Module()
    members = comp.signature.members.items()
    ins = {n: getattr(comp, n) for n, mem in members if mem.flow == wiring.In}
    outs = [n for n, mem in members if mem.flow == wiring.Out]
    got = pipeline(m, parts, ins, outs)
    m.d.comb += [getattr(comp, n).eq(got[n]) for n in outs]
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
            ports.update({x + name: Out(shape) for name, shape in _lookup_outputs(**params).items()})
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
            m.d.comb += [getattr(self, x + name).eq(getattr(lookup, name)) for name in _lookup_outputs(**params)]

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
        return _reference(self, log_ratio_parts(self._w.spec, log_table=self._table))


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
        ports.update({name: Out(shape) for name, shape in _lookup_outputs(**self.alog).items()})
        super().__init__(ports)

    def elaborate(self, platform):
        m = Module()
        F = self._w.F

        # Read the antilog pair of the fraction of Y / 2 (A ~= 2**24 * 2**(ph / 2**(F+1)) after the multiply).
        m.submodules.alog = alog = InterpolatorLookup(**self.alog)
        m.d.comb += alog.f.eq(self.Y[:F + 1])
        m.d.comb += [getattr(self, name).eq(getattr(alog, name)) for name in _lookup_outputs(**self.alog)]

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
    a_bits = _interp_params(**lookup.alog, wrap=False).y_bits
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
        return _reference(self, rung_step_parts(self._w.spec, antilog_table=self._table))


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
