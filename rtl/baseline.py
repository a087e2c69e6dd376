"""A B-bit fixed-point linear update lane, the usual additive update, for cost comparison (docs/hardware.md).

Not part of the B-bit Madam datapath: ``lnsim synth`` builds it beside :class:`~lnsim_rtl.UpdateUnit` at the
same bit width, so a report can show what the multiplicative log-domain update costs against
``w <- sat(w - lr * g)``.
"""

from __future__ import annotations

from amaranth.hdl import Module, Signal, signed
from amaranth.lib import data
from amaranth.lib.wiring import In

from lnsim.validation import check_int

from ._util import LaneStreamComponent, clamp, register, stream_pipeline

__all__ = ["LinearUpdateUnit"]

#: Pipeline registers: one after the multiplier, one after the saturating subtraction.
LATENCY = 2


class LinearUpdateUnit(LaneStreamComponent):
    """``lanes`` fixed-point SGD updates ``w <- sat(w - lr * g)`` per clock, B bits throughout.

    ``w`` and ``g`` are signed B-bit two's-complement integers (the same fixed-point scale), ``lr`` is an
    unsigned B-bit fraction (``lr / 2**B``). Per lane: ``p = lr * g`` (a B x B multiplier, 2B-bit product),
    ``d = (p + 2**(B-1)) >> B`` (round half up), ``w' = clamp(w - d, -2**(B-1), 2**(B-1) - 1)``.

    Pipelined: a register after the multiplier and one after the saturating subtraction, so an accepted
    input leaves :attr:`latency` = 2 cycles later; one update per lane per cycle. Same stream handshake
    and stall rule as :class:`~lnsim_rtl.UpdateUnit` (``i.ready = ~o.valid | o.ready``). Reset clears the
    valid bits only.

    Parameters
    ----------
    bits : int
        B, the width of ``w``, ``g`` and ``lr``, 2..24.
    lanes : int
        Elements per beat.

    Ports
    -----
    clk, rst : In(1)
        Clock and synchronous reset (active high), the ``sync`` domain.
    i : In(stream.Signature(ArrayLayout(lane_in, lanes)))
        Per lane from the LSB: ``w`` (signed B), ``g`` (signed B).
    o : Out(stream.Signature(ArrayLayout(lane_out, lanes)))
        Per lane: ``w`` (signed B), the updated weight.
    lr : In(B)
        Learning rate ``lr / 2**B``; sampled with each accepted input.
    """

    def __init__(self, *, bits: int, lanes: int = 1):
        self._bits = B = check_int("bits", bits, 2, 24)
        super().__init__(data.StructLayout({"w": signed(B), "g": signed(B)}), data.StructLayout({"w": signed(B)}),
                         lanes, LATENCY, {"lr": In(B)})

    @property
    def bits(self) -> int:
        """B, the width of ``w``, ``g`` and ``lr``."""
        return self._bits

    def elaborate(self, platform):
        m = Module()
        B = self._bits

        # Advance the whole pipeline unless a valid output is held back.
        advance = stream_pipeline(m, self.i, self.o, LATENCY)

        for j in range(self._lanes):
            x, y = self.i.payload[j], self.o.payload[j]

            # Stage 1: multiply the gradient by the learning rate.
            product = Signal(signed(2 * B + 1), name=f"lane{j}_product")
            m.d.comb += product.eq(x.g * self.lr)
            r1 = register(m, advance, f"lane{j}_s1", w=x.w, p=product)

            # Stage 2: round the step to the weight's scale, subtract, saturate.
            step = Signal(signed(B + 2), name=f"lane{j}_step")
            m.d.comb += step.eq((r1["p"] + (1 << (B - 1))) >> B)
            r2 = register(m, advance, f"lane{j}_s2",
                          w=clamp(r1["w"] - step, -(1 << (B - 1)), (1 << (B - 1)) - 1)[:B].as_signed())

            # Drive the output lane.
            m.d.comb += y.w.eq(r2["w"])
        return m
