"""The pipelined weight decoder: (sign, k) to the bfloat16 bits of +-sigma_star * exp(-k * eta0).

docs/datapath.md, "Weight decoder": a ladder lookup (pow2 base: a shift and a ``2**m``-entry table; natural
base: two tables and a 16 x 16 product), then the product with ``sigma_star`` rounded to bfloat16.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, memory, wiring
from amaranth.lib.wiring import In, Out

from lnsim import tables
from lnsim.spec import Base, LNSFormat

from ._util import LaneStreamComponent, register, stream_pipeline

__all__ = ["LadderLookup", "Scale", "DecodeUnit", "decode_layouts", "SIGMA_ES_BITS"]

#: Width of the signed ``sigma_es`` port: ``sigma_star ~= sigma_mus * 2**(sigma_es - 15)``.
SIGMA_ES_BITS = 10
#: Pipeline registers: one after the ladder lookup, one after the scaling.
LATENCY = 2

_MU = tables.LADDER_MAN_BITS  # 16: ladder mantissas in [2**15, 2**16)


def _signed_range(lo: int, hi: int):
    """The narrowest signed shape holding ``lo .. hi``."""
    return signed(max(lo.bit_length(), hi.bit_length()) + 1)


def _check_fmt(fmt) -> LNSFormat:
    if not isinstance(fmt, LNSFormat):
        raise TypeError(f"fmt must be an lnsim.spec.LNSFormat, not {fmt!r}")
    return fmt


def decode_layouts(fmt: LNSFormat) -> tuple[data.StructLayout, data.StructLayout]:
    """One lane's input and output payload layouts: ``sw`` (1), ``k`` (B) in; ``bits`` (16) out."""
    return data.StructLayout({"sw": 1, "k": fmt.bits}), data.StructLayout({"bits": 16})


class _Ladder:
    """A ladder table as one ROM: each entry ``(e - e_min) << 15 | (mu - 2**15)``, the mantissa without its
    leading one (the packing of :func:`lnsim.tables.table_bits`)."""

    def __init__(self, table, entries: int):
        e, mu = ([int(v) for v in t[:entries]] for t in table)
        self.e, self.mu = e, mu
        self.e_min, self.e_max = min(e), max(e)
        self.e_shape = _signed_range(self.e_min, self.e_max)
        self.e_bits = max(self.e_max - self.e_min, 1).bit_length()

    def read(self, m: Module, name: str, addr):
        """``(e, mu)`` of entry ``addr``, asynchronously read."""
        e, mu = Signal(self.e_shape, name=f"{name}_e"), Signal(_MU, name=f"{name}_mu")
        if len(self.e) == 1:
            m.d.comb += [e.eq(self.e[0]), mu.eq(self.mu[0])]
            return e, mu
        init = [(ei - self.e_min) << (_MU - 1) | (mi - 2 ** (_MU - 1)) for ei, mi in zip(self.e, self.mu)]
        m.submodules[name] = rom = memory.Memory(shape=unsigned(self.e_bits + _MU - 1), depth=len(init), init=init)
        rd = rom.read_port(domain="comb")
        m.d.comb += [
            rd.addr.eq(addr),
            mu.eq(Cat(rd.data[:_MU - 1], Const(1, 1))),
            e.eq(rd.data[_MU - 1:] + self.e_min),
        ]
        return e, mu


def _ladder_latency(fmt: LNSFormat) -> int:
    """Registers of a ``registered`` :class:`LadderLookup`: after the table reads, and after the product of the
    natural base's two tables and after its rounding."""
    return 1 if fmt.base is Base.POW2 else 3


class LadderLookup(wiring.Component):
    """``exp(-k * eta0)`` as ``mul * 2**(el - 15)``, ``mul`` in ``[2**15, 2**16)`` (docs/datapath.md).

    pow2 base: ``el = LO[j].e - (k >> m)``, ``mul = LO[j].mu``, ``j = k & (2**m - 1)`` (only the
    ``min(2**m, 2**B)`` reachable entries are stored). Natural base: ``k = kh * 2**h + kl``; the product
    ``HI[kh].mu * LO[kl].mu`` rounded to 16 bits.

    Ports
    -----
    k : In(B)
        Code.
    el : Out(signed)
        Exponent (width from the tables' range).
    mul : Out(16)
        Mantissa.

    advance : In(1), with ``registered`` only
        Load the registers.

    Combinational (latency 0); ``registered``: a register after the table reads, and after the natural
    base's product and its rounding (latency :attr:`latency`, 1 or 3), each loaded when ``advance``.
    """

    def __init__(self, fmt: LNSFormat, *, registered: bool = False):
        self._fmt = fmt = _check_fmt(fmt)
        self._registered = registered
        lo, hi = tables.ladder_tables(fmt)
        B = fmt.bits
        if fmt.base is Base.POW2:
            self._lo = _Ladder(lo, 2 ** min(fmt.frac_bits, B))
            self._hi = None
            el_lo, el_hi = self._lo.e_min - (fmt.code_max >> fmt.frac_bits), self._lo.e_max
        else:
            h = tables.ladder_split(fmt)
            self._lo, self._hi = _Ladder(lo, 2**h), _Ladder(hi, 2 ** (B - h))
            el_lo, el_hi = self._lo.e_min + self._hi.e_min, self._lo.e_max + self._hi.e_max + 2
        ports = {"k": In(B), "el": Out(_signed_range(el_lo, el_hi)), "mul": Out(_MU)}
        super().__init__({**ports, "advance": In(1)} if registered else ports)

    @property
    def latency(self) -> int:
        """Cycles from ``k`` to ``el``, ``mul``: 0, or with ``registered`` 1 (pow2 base) or 3 (natural)."""
        return _ladder_latency(self._fmt) if self._registered else 0

    def elaborate(self, platform):
        m = Module()
        fmt = self._fmt

        if self._hi is None:
            # pow2 base: the low m bits index the table, the high bits shift the exponent.
            mb = fmt.frac_bits
            e, mu = self._lo.read(m, "lo", self.k[:mb])
            if self._registered:
                r = register(m, self.advance, "r1", el=e - (self.k >> mb), mul=mu)
                m.d.comb += [self.el.eq(r["el"]), self.mul.eq(r["mul"])]
            else:
                m.d.comb += [self.el.eq(e - (self.k >> mb)), self.mul.eq(mu)]
            return m

        # Natural base: look up both halves of the code.
        h = tables.ladder_split(fmt)
        e_lo, mu_lo = self._lo.read(m, "lo", self.k[:h])
        e_hi, mu_hi = self._hi.read(m, "hi", self.k[h:])
        if self._registered:
            r = register(m, self.advance, "r1", e_lo=e_lo, mu_lo=mu_lo, e_hi=e_hi, mu_hi=mu_hi)
            e_lo, mu_lo, e_hi, mu_hi = r["e_lo"], r["mu_lo"], r["e_hi"], r["mu_hi"]

        # Multiply the mantissas and round the product to 16 bits (to nearest, half up).
        p = Signal(32)
        m.d.comb += p.eq(mu_hi * mu_lo)
        if not self._registered:
            hi = p[31]
            mul = Signal(_MU + 1)
            m.d.comb += mul.eq(Mux(hi, (p + 2**15) >> 16, (p + 2**14) >> 15))
            carry = mul[_MU]
            m.d.comb += [
                self.mul.eq(Mux(carry, 2 ** (_MU - 1), mul)),
                self.el.eq(e_hi + e_lo + hi + carry),
            ]
            return m
        # Registered: the same sums, the exponents' with the product and the rounding's in a cycle of its own.
        r = register(m, self.advance, "r2", p=p, e=e_hi + e_lo)
        hi = r["p"][31]
        r = register(m, self.advance, "r3", hi=hi, e=r["e"],
                     mul=Mux(hi, (r["p"] + 2**15) >> 16, (r["p"] + 2**14) >> 15)[:_MU + 1])
        carry = r["mul"][_MU]
        m.d.comb += [
            self.mul.eq(Mux(carry, 2 ** (_MU - 1), r["mul"])),
            self.el.eq(r["e"] + r["hi"] + carry),
        ]
        return m


class Scale(wiring.Component):
    """The ladder value times ``sigma_star``, rounded to nearest even bfloat16 (docs/datapath.md).

    Ports
    -----
    sw : In(1)
        Weight sign.
    el : In(signed), mul : In(16)
        From :class:`LadderLookup`.
    es : In(signed(10)), mus : In(16)
        ``sigma_star ~= mus * 2**(es - 15)``.
    bits : Out(16)
        bfloat16 bit pattern; +-0 below the normal range.
    advance : In(1), with ``registered`` only
        Load the register.

    Combinational (latency 0); ``registered``: a register after the product and one after the rounding
    (latency 2), loaded when ``advance``.
    """

    def __init__(self, el_shape, *, registered: bool = False):
        self._registered = registered
        ports = {"sw": In(1), "el": In(el_shape), "mul": In(_MU), "es": In(signed(SIGMA_ES_BITS)), "mus": In(_MU),
                 "bits": Out(16)}
        super().__init__({**ports, "advance": In(1)} if registered else ports)

    @property
    def latency(self) -> int:
        """Cycles from the inputs to ``bits``: 0, or 2 with ``registered``."""
        return 2 * self._registered

    def elaborate(self, platform):
        m = Module()

        # Multiply by sigma_star's mantissa.
        p = Signal(32)
        m.d.comb += p.eq(self.mus * self.mul)
        sw = self.sw
        if self._registered:
            # The exponent's first terms are added with the product.
            r = register(m, self.advance, "r1", p=p, sw=sw, e=self.es + self.el + 127)
            p, sw = r["p"], r["sw"]
        hi = p[31]

        # Keep 8 significant bits, rounding to nearest even.
        man = Signal(9)
        guard = Mux(hi, p[23], p[22])
        sticky = Mux(hi, p[:23] != 0, p[:22] != 0)
        head = Mux(hi, p[24:32], p[23:31])
        m.d.comb += man.eq(head + (guard & (sticky | head[0])))
        carry = man[8]

        # Pack; flush to +-0 below the normal range.
        ex = Signal(signed(max(len(self.el), SIGMA_ES_BITS) + 3))
        if self._registered:
            # The rounding in a cycle of its own; the same exponent sum.
            r = register(m, self.advance, "r2", man=man, sw=sw, e=r["e"] + hi)
            man, sw, carry = r["man"], r["sw"], r["man"][8]
            m.d.comb += ex.eq(r["e"] + carry)
        else:
            m.d.comb += ex.eq(self.es + self.el + hi + 127 + carry)
        with m.If(ex >= 1):
            m.d.comb += self.bits.eq(Cat(man[:7], ex[:8], sw))
        with m.Else():
            m.d.comb += self.bits.eq(Cat(Const(0, 15), sw))
        return m


class DecodeUnit(LaneStreamComponent):
    """The weight decoder (docs/datapath.md, "Weight decoder"), ``lanes`` weights per clock.

    Pipelined: a register after the ladder lookup and one after the scaling, so an accepted input leaves
    :attr:`latency` = 2 cycles later; one weight per lane per cycle. Back-pressure stalls the whole pipeline,
    as in :class:`~lnsim_rtl.UpdateUnit`.

    With ``product_registers`` a register also follows the ladder's table reads, its product and rounding
    (natural base), and the scaling's product and rounding, so every multiplier's product is registered (an
    FPGA's DSP block holds that register): latency 7 (natural base) or 5 (pow2), for the update engine's Fmax.

    Parameters
    ----------
    fmt : LNSFormat
    lanes : int
    product_registers : bool
    Ports
    -----
    clk, rst : In(1)
        Clock and synchronous reset (active high).
    i : In(stream.Signature(ArrayLayout(StructLayout({"sw": 1, "k": B}), lanes)))
        Sign and code per lane (lane ``j`` at bits ``[j*(B+1), (j+1)*(B+1))``, ``sw`` at the LSB).
    o : Out(stream.Signature(ArrayLayout(StructLayout({"bits": 16}), lanes)))
        bfloat16 bits per lane.
    sigma_es : In(signed(10)), sigma_mus : In(16)
        ``sigma_star`` as :func:`lnsim.golden.sigma_star_fixed` gives it (``es <= 127``; any ``es`` below
        -256 gives +-0 everywhere, so a host may clamp smaller ones to -512); sampled with each accepted input.
    """

    def __init__(self, fmt: LNSFormat, *, lanes: int = 1, product_registers: bool = False):
        self._fmt = _check_fmt(fmt)
        self._deep = product_registers
        extra = _ladder_latency(fmt) + 2 if product_registers else 0
        super().__init__(*decode_layouts(fmt), lanes, LATENCY + extra,
                         {"sigma_es": In(signed(SIGMA_ES_BITS)), "sigma_mus": In(_MU)})

    @property
    def fmt(self) -> LNSFormat:
        return self._fmt

    def elaborate(self, platform):
        m = Module()

        # Advance the whole pipeline unless a valid output is held back.
        advance = stream_pipeline(m, self.i, self.o, self.latency)

        # Sample sigma_star with the input (delayed as the ladder delays the code).
        delay = _ladder_latency(self._fmt) if self._deep else 0
        sigma = {"es": self.sigma_es, "mus": self.sigma_mus}
        for n in range(delay):
            sigma = register(m, advance, f"s0_{n}", **sigma)
        sigma = register(m, advance, "s1", **sigma)

        for j in range(self._lanes):
            x, y = self.i.payload[j], self.o.payload[j]

            # Stage 1: look up the ladder.
            m.submodules[f"lane{j}_ladder"] = ladder = LadderLookup(self._fmt, registered=self._deep)
            m.d.comb += ladder.k.eq(x.k)
            sw = x.sw
            for n in range(ladder.latency):
                sw = register(m, advance, f"lane{j}_s0_{n}", sw=sw)["sw"]
            if self._deep:
                m.d.comb += ladder.advance.eq(advance)
            r1 = register(m, advance, f"lane{j}_s1", sw=sw, el=ladder.el, mul=ladder.mul)

            # Stage 2: scale by sigma_star and round to bfloat16.
            m.submodules[f"lane{j}_scale"] = scale = Scale(ladder.el.shape(), registered=self._deep)
            if self._deep:
                m.d.comb += scale.advance.eq(advance)
            m.d.comb += [scale.sw.eq(r1["sw"]), scale.el.eq(r1["el"]), scale.mul.eq(r1["mul"]),
                         scale.es.eq(sigma["es"]), scale.mus.eq(sigma["mus"])]
            r2 = register(m, advance, f"lane{j}_s2", bits=scale.bits)
            m.d.comb += y.bits.eq(r2["bits"])
        return m
