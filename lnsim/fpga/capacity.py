"""The update engine's system numbers on a target: its memory word, the block RAMs a tensor needs, the largest
tensor the device's block RAMs hold, and the update rate and step time at a clock (docs/hardware.md, "System
numbers"). Computed from the target's :class:`~lnsim.fpga.targets.BlockRam`, not measured.

A memory of ``rows`` words of ``bits`` is counted as Yosys maps a simple dual-port memory: every block in one of
its shapes ``(r, b)``, ``ceil(bits / b)`` blocks side by side and ``ceil(rows / r)`` such columns deep, the shape
that needs fewest blocks. (A mix of shapes can hold a little more; Yosys does not build one.)
"""

from __future__ import annotations

from lnsim.fpga.targets import TARGETS, BlockRam

__all__ = ["word_bits", "bram_blocks", "max_rows", "step_cycles", "system_numbers"]


def word_bits(spec, lanes: int = 1) -> int:
    """Bits of one engine memory row: ``lanes`` words of ``1 + B + state_bits``
    (:func:`lnsim_rtl.update_engine.engine_word_layout`)."""
    from lnsim_rtl.update_engine import engine_word_layout

    return lanes * engine_word_layout(spec).size


def _ceil(a: int, b: int) -> int:
    return -(-a // b)


def bram_blocks(bram: BlockRam, rows: int, bits: int) -> int:
    """Fewest of ``bram``'s blocks holding ``rows`` words of ``bits`` (one shape for all blocks)."""
    return min(_ceil(rows, r) * _ceil(bits, b) for r, b in bram.shapes)


def max_rows(bram: BlockRam, bits: int) -> int:
    """Most words of ``bits`` the device's ``bram.count`` blocks hold (a multiple of a shape's rows)."""
    return max(bram.count // _ceil(bits, b) * r for r, b in bram.shapes)


def step_cycles(rows: int) -> int:
    """Clock cycles of one optimiser step over ``rows >= 2`` addresses with both streams never pausing: one beat
    a cycle, then the unit's latency until the cycle after the last write-back, in which the next step's first
    beat is accepted (docs/rtl.md, "The update engine"; a one-address step takes one cycle more)."""
    from lnsim_rtl.update_unit import LATENCY

    return rows + LATENCY


def system_numbers(spec, target: str, *, lanes: int = 1, fmax_mhz: float) -> dict:
    """The engine's system numbers for ``spec`` with ``lanes`` lanes on ``target`` at ``fmax_mhz``.

    Returns ``{"target", "bits", "lanes", "word_bits", "bram_cell", "bram_count", "max_rows", "max_weights",
    "brams_per_million", "updates_per_s", "step_s"}``: the row width (bits), the device's block RAMs, the
    largest depth they hold and its weights (``max_rows * lanes``), the blocks 10**6 weights need, the updates
    per second (``lanes * fmax``) and the seconds of one step over ``max_rows`` (:func:`step_cycles`).
    """
    bram = TARGETS[target].bram
    bits = word_bits(spec, lanes)
    rows = max_rows(bram, bits)
    hz = fmax_mhz * 1e6
    return {"target": target, "bits": spec.fmt.bits, "lanes": lanes, "word_bits": bits, "bram_cell": bram.cell,
            "bram_count": bram.count, "max_rows": rows, "max_weights": rows * lanes,
            "brams_per_million": bram_blocks(bram, _ceil(10**6, lanes), bits), "updates_per_s": lanes * hz,
            "step_s": step_cycles(rows) / hz}
