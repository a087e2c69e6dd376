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

    Combinational (latency 0).
    """

    def __init__(self, fmt: LNSFormat):
        self._fmt = fmt = _check_fmt(fmt)
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
        super().__init__({"k": In(B), "el": Out(_signed_range(el_lo, el_hi)), "mul": Out(_MU)})

    def elaborate(self, platform):
        m = Module()
        fmt = self._fmt

        if self._hi is None:
            # pow2 base: the low m bits index the table, the high bits shift the exponent.
            mb = fmt.frac_bits
            e, mu = self._lo.read(m, "lo", self.k[:mb])
            m.d.comb += [self.el.eq(e - (self.k >> mb)), self.mul.eq(mu)]
            return m

        # Natural base: look up both halves of the code.
        h = tables.ladder_split(fmt)
        e_lo, mu_lo = self._lo.read(m, "lo", self.k[:h])
        e_hi, mu_hi = self._hi.read(m, "hi", self.k[h:])

        # Multiply the mantissas and round the product to 16 bits (to nearest, half up).
        p = Signal(32)
        m.d.comb += p.eq(mu_hi * mu_lo)
        hi = p[31]
        mul = Signal(_MU + 1)
        m.d.comb += mul.eq(Mux(hi, (p + 2**15) >> 16, (p + 2**14) >> 15))
        carry = mul[_MU]
        m.d.comb += [
            self.mul.eq(Mux(carry, 2 ** (_MU - 1), mul)),
            self.el.eq(e_hi + e_lo + hi + carry),
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

    Combinational (latency 0).
    """

    def __init__(self, el_shape):
        super().__init__({
            "sw": In(1), "el": In(el_shape), "mul": In(_MU), "es": In(signed(SIGMA_ES_BITS)), "mus": In(_MU),
            "bits": Out(16),
        })

    def elaborate(self, platform):
        m = Module()

        # Multiply by sigma_star's mantissa.
        p = Signal(32)
        m.d.comb += p.eq(self.mus * self.mul)
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
        m.d.comb += ex.eq(self.es + self.el + hi + 127 + carry)
        with m.If(ex >= 1):
            m.d.comb += self.bits.eq(Cat(man[:7], ex[:8], self.sw))
        with m.Else():
            m.d.comb += self.bits.eq(Cat(Const(0, 15), self.sw))
        return m


class DecodeUnit(LaneStreamComponent):
    """The weight decoder (docs/datapath.md, "Weight decoder"), ``lanes`` weights per clock.

    Pipelined: a register after the ladder lookup and one after the scaling, so an accepted input leaves
    :attr:`latency` = 2 cycles later; one weight per lane per cycle. Back-pressure stalls the whole pipeline,
    as in :class:`~lnsim_rtl.UpdateUnit`.

    Parameters
    ----------
    fmt : LNSFormat
    lanes : int

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

    def __init__(self, fmt: LNSFormat, *, lanes: int = 1):
        self._fmt = _check_fmt(fmt)
        super().__init__(*decode_layouts(fmt), lanes, LATENCY,
                         {"sigma_es": In(signed(SIGMA_ES_BITS)), "sigma_mus": In(_MU)})

    @property
    def fmt(self) -> LNSFormat:
        return self._fmt

    def elaborate(self, platform):
        m = Module()

        # Advance the whole pipeline unless a valid output is held back.
        advance = stream_pipeline(m, self.i, self.o, LATENCY)

        # Sample sigma_star with the input.
        sigma = register(m, advance, "s1", es=self.sigma_es, mus=self.sigma_mus)

        for j in range(self._lanes):
            x, y = self.i.payload[j], self.o.payload[j]

            # Stage 1: look up the ladder.
            m.submodules[f"lane{j}_ladder"] = ladder = LadderLookup(self._fmt)
            m.d.comb += ladder.k.eq(x.k)
            r1 = register(m, advance, f"lane{j}_s1", sw=x.sw, el=ladder.el, mul=ladder.mul)

            # Stage 2: scale by sigma_star and round to bfloat16.
            m.submodules[f"lane{j}_scale"] = scale = Scale(ladder.el.shape())
            m.d.comb += [scale.sw.eq(r1["sw"]), scale.el.eq(r1["el"]), scale.mul.eq(r1["mul"]),
                         scale.es.eq(sigma["es"]), scale.mus.eq(sigma["mus"])]
            r2 = register(m, advance, f"lane{j}_s2", bits=scale.bits)
            m.d.comb += y.bits.eq(r2["bits"])
        return m
