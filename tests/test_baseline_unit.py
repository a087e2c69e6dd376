# amaranth: UnusedElaboratable=no
"""The fixed-point baseline lnsim_rtl.LinearUpdateUnit against an integer model of its docstring.

``w' = clamp(w - ((lr * g + 2**(B-1)) >> B), -2**(B-1), 2**(B-1) - 1)`` with ``w``, ``g`` signed B-bit and
``lr`` unsigned B-bit (Python's ``>>`` on ints is the floor shift the RTL's arithmetic shift is). The RTL runs
in Amaranth's simulator under random valid/ready stalls (``run_stream``); random vectors plus the corners:
saturation at both ends, zero gradient and rate, the largest rate, the extreme gradients and weights, and
rounding ties.
"""

import numpy as np
import pytest
from amaranth.hdl import Value

from lnsim_rtl import LinearUpdateUnit
from rtl_helpers import pack_lane, run_stream, unpack_lane


def linear_update(w: int, g: int, lr: int, bits: int) -> int:
    """The baseline's update on plain ints: the docstring's formula, independently of the RTL."""
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    assert lo <= w <= hi and lo <= g <= hi and 0 <= lr < 1 << bits
    step = (lr * g + (1 << (bits - 1))) >> bits
    return min(max(w - step, lo), hi)


def corner_vectors(bits: int) -> list:
    """(w, g, lr) triples at the edges: saturation both ways, zeros, the largest rate, rounding ties."""
    lo, hi, lr_max = -(1 << (bits - 1)), (1 << (bits - 1)) - 1, (1 << bits) - 1
    edges = sorted({lo, lo + 1, -1, 0, 1, hi - 1, hi})
    rates = sorted({0, 1, 1 << (bits - 1), lr_max - 1, lr_max})
    vecs = [(w, g, lr) for w in edges for g in edges for lr in rates]
    # Rounding ties: lr * g = (2k + 1) * 2**(B-1) rounds half up, for both signs of g.
    vecs += [(0, g, 1 << (bits - 1)) for g in (-3, -1, 1, 3) if lo <= g <= hi]
    return vecs


def random_vectors(bits: int, n: int, seed: int) -> list:
    rng = np.random.default_rng(seed)
    lo, hi = -(1 << (bits - 1)), 1 << (bits - 1)
    w, g = rng.integers(lo, hi, n), rng.integers(lo, hi, n)
    lr = rng.integers(0, 1 << bits, n)
    return [(int(a), int(b), int(c)) for a, b, c in zip(w, g, lr)]


def run_linear_unit(bits: int, lanes: int, vecs: list, *, seed: int) -> list:
    """Push ``vecs`` through a LinearUpdateUnit (one ``lr`` per beat: the first lane's); returns the new
    weights per vector, in order."""
    vecs = vecs + [vecs[-1]] * (-len(vecs) % lanes)
    beats = [vecs[b:b + lanes] for b in range(0, len(vecs), lanes)]
    dut = LinearUpdateUnit(bits=bits, lanes=lanes)

    def set_inputs(ctx, beat):
        word = sum(pack_lane(dut.lane_in, w=w, g=g) << (dut.lane_in.size * j) for j, (w, g, _) in enumerate(beat))
        ctx.set(Value.cast(dut.i.payload), word)
        ctx.set(dut.lr, beat[0][2])

    words = run_stream(dut, beats, seed=seed, set_inputs=set_inputs)
    assert len(words) == len(beats)
    return [unpack_lane(dut.lane_out, word, j)["w"] for word in words for j in range(lanes)]


def test_model_by_hand():
    # B = 4: lr = 15/16, g = -8 -> step round(-7.5) = -7, w = 7 - (-7) saturates at 7.
    assert linear_update(7, -8, 15, 4) == 7
    assert linear_update(-8, 7, 15, 4) == -8  # step round(6.5625) = 7, -15 saturates at -8
    assert linear_update(3, 1, 8, 4) == 2  # step 0.5 rounds up to 1
    assert linear_update(3, -1, 8, 4) == 3  # step -0.5 rounds up to 0
    assert linear_update(-5, 6, 0, 4) == -5  # zero rate


@pytest.mark.parametrize("bits, lanes", [(2, 1), (4, 1), (8, 2), (12, 1), (16, 3)])
def test_linear_unit_matches_the_model(bits, lanes):
    vecs = corner_vectors(bits) + random_vectors(bits, 300, seed=bits)
    # Each beat's lanes share the first lane's rate: give every vector of a beat that rate.
    vecs = [(w, g, vecs[i - i % lanes][2]) for i, (w, g, _) in enumerate(vecs)]
    rtl = run_linear_unit(bits, lanes, vecs, seed=bits + lanes)
    gold = [linear_update(w, g, lr, bits) for w, g, lr in vecs] + [None] * (len(rtl) - len(vecs))
    bad = [(v, r, e) for v, r, e in zip(vecs, rtl, gold) if r != e]
    assert not bad, f"{len(bad)} of {len(vecs)} updates differ; first (w, g, lr) -> rtl, model: {bad[:5]}"


def test_corners_reach_both_saturations():
    # The corner set is not vacuous: it drives the clamp at both ends and leaves some weights unchanged.
    bits = 8
    results = [(linear_update(w, g, lr, bits), w - ((lr * g + 128) >> 8)) for w, g, lr in corner_vectors(bits)]
    assert any(raw > 127 and new == 127 for new, raw in results)
    assert any(raw < -128 and new == -128 for new, raw in results)


@pytest.mark.parametrize("kwargs, match", [
    (dict(bits=25), "bits must be an integer in 2..24, not 25"),
    (dict(bits=True), "bits must be an integer in 2..24, not True"),
    (dict(bits=8, lanes=0), "lanes must be an integer >= 1, not 0"),
])
def test_linear_unit_validation(kwargs, match):
    with pytest.raises(ValueError, match=match):
        LinearUpdateUnit(**kwargs)
