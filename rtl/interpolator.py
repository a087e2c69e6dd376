"""Table lookup with linear interpolation, in four parts a pipeline can register between: the log unit
``LOGU`` of stage 3 and the antilog of stage 4 (docs/datapath.md)."""

from __future__ import annotations

from types import SimpleNamespace

from amaranth.hdl import Module, Signal, signed, unsigned
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

from ._util import check_table, reference

__all__ = ["ROM_BANK_BITS", "Interpolator", "InterpolatorLookup", "InterpolatorSelect", "InterpolatorProduct",
           "InterpolatorAdd", "interp_params", "lookup_outputs"]


#: Address bits of one ROM bank: a table read is ``2**(index bits - ROM_BANK_BITS)`` banks read side by side
#: (:class:`InterpolatorLookup`), then a select among them (:class:`InterpolatorSelect`), so that neither
#: holds more than a few LUT levels.
ROM_BANK_BITS = 6


def interp_params(table, *, index_bits: int, frac_bits: int, wrap: bool):
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
        p = interp_params(**self._params)
        super().__init__({"f": In(p.f_shape), "y": Out(p.y_bits)})

    def elaborate(self, platform):
        return reference(self, [{"lookup": InterpolatorLookup(**self._params)},
                                 {"select": InterpolatorSelect(**self._params)},
                                 {"product": InterpolatorProduct(**self._params)},
                                 {"add": InterpolatorAdd(**self._params)}])


def lookup_outputs(**params) -> dict:
    """The output ports of an :class:`InterpolatorLookup` with ``params``, by name: their shapes."""
    p = interp_params(**{"wrap": False, **params})
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
        p = interp_params(table, index_bits=index_bits, frac_bits=frac_bits, wrap=wrap)
        self._a, self._sh, self._wrap, self._p = index_bits, frac_bits, wrap, p
        outs = lookup_outputs(table=table, index_bits=index_bits, frac_bits=frac_bits, wrap=wrap)
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
        p = interp_params(table, index_bits=index_bits, frac_bits=frac_bits, wrap=wrap)
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
        p = interp_params(table, index_bits=index_bits, frac_bits=frac_bits, wrap=wrap)
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
        p = interp_params(table, index_bits=index_bits, frac_bits=frac_bits, wrap=wrap)
        self._prefix, self._out, self._sh = prefix, out, frac_bits
        super().__init__({f"{prefix}t0": In(p.y_bits), f"{prefix}p": In(p.p_shape), out: Out(p.y_bits)})

    def elaborate(self, platform):
        m = Module()
        t0, p = getattr(self, f"{self._prefix}t0"), getattr(self, f"{self._prefix}p")
        m.d.comb += getattr(self, self._out).eq(t0 + (p >> self._sh) if self._sh else t0)
        return m
