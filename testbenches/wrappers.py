"""Verilog of test wrappers around single RTL stages (host side; needs amaranth).

A combinational stage alone costs one simulator round trip per input; a wrapper with many copies side by
side evaluates a few hundred inputs per round trip. Lanes are padded to 32 bits in and 16 bits out so
the bench packs and unpacks them with NumPy byte views instead of per-lane Python arithmetic.
"""

from __future__ import annotations

from amaranth.back import verilog
from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from lnsim.spec import Spec
from lnsim.validation import SpecError
from lnsim_testbenches.common import SAT_IN_BITS, SAT_N_OFFSET, SAT_OUT_BITS

__all__ = ["SaturatingAddArray", "saturating_add_verilog"]


class SaturatingAddArray(wiring.Component):
    """``copies[i]`` instances of :class:`lnsim_rtl.stages.SaturatingAdd` for ``specs[i]``, side by side.

    Ports ``x{i}`` (``copies[i] * 32`` bits) and ``y{i}`` (``copies[i] * 16`` bits) for ``specs[i]``; lane ``c`` of
    ``x{i}`` at ``[32c, 32c + 32)`` holds ``sw`` at bit 0, ``sg`` at bit 1, ``k`` from bit 2 and ``n`` from
    bit 16; lane ``c`` of ``y{i}`` at ``[16c, 16c + 16)`` holds ``k_new`` from bit 0. Combinational.

    Raises
    ------
    lnsim.validation.SpecError
        If ``copies`` does not give one count per spec or the ports would reach Amaranth's 65536-bit limit, or
        a spec has more than 14 bits or a rung step wider than 16 bits.
    """

    def __init__(self, specs, *, copies):
        self._specs = list(specs)
        self._copies = [int(c) for c in copies]
        if len(self._copies) != len(self._specs) or sum(self._copies) * SAT_IN_BITS >= 2**16:
            raise SpecError(f"copies must give one count per spec, {sum(self._copies) * SAT_IN_BITS} input bits "
                            f"in all below 65536 (Amaranth's limit), not {copies!r}")
        for spec in self._specs:
            if spec.fmt.bits > 14 or spec.eta_star_rungs.bit_length() > SAT_IN_BITS - SAT_N_OFFSET:
                raise SpecError(f"specs must have bits <= 14 and rung steps of at most 16 bits, "
                                f"not {spec.fmt.describe()}")
        ports = {}
        for i, n in enumerate(self._copies):
            ports[f"x{i}"] = In(n * SAT_IN_BITS)
            ports[f"y{i}"] = Out(n * SAT_OUT_BITS)
        super().__init__(ports)

    def elaborate(self, platform):
        """The stages side by side, each wired to its lane of ``x{i}`` and ``y{i}``."""
        from lnsim_rtl.stages import SaturatingAdd

        m = Module()
        for i, spec in enumerate(self._specs):
            B, nw = spec.fmt.bits, spec.eta_star_rungs.bit_length()
            x, y = getattr(self, f"x{i}"), getattr(self, f"y{i}")
            for c in range(self._copies[i]):
                m.submodules[f"add{i}_{c}"] = add = SaturatingAdd(spec)
                lane = x[c * SAT_IN_BITS:(c + 1) * SAT_IN_BITS]
                m.d.comb += [
                    add.sw.eq(lane[0]),
                    add.sg.eq(lane[1]),
                    add.k.eq(lane[2:2 + B]),
                    add.n.eq(lane[SAT_N_OFFSET:SAT_N_OFFSET + nw]),
                    y[c * SAT_OUT_BITS:c * SAT_OUT_BITS + B].eq(add.k_new),
                ]
        return m


def saturating_add_verilog(specs: list[Spec], *, copies, name: str = "saturating_add_array") -> str:
    """Verilog of :class:`SaturatingAddArray` (``amaranth.back.verilog.convert``)."""
    return verilog.convert(SaturatingAddArray(specs, copies=copies), name=name, emit_src=False)
