"""Weight and gradient codecs, packing."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lnsim import LNSFormat, SpecError, bits_to_grad, decode, encode, grad_to_bits, pack, unpack

FMT = LNSFormat(bits=12, eta0=0.001)
SMALL_FORMATS = [LNSFormat(bits=b, eta0=e) for b, e in [(2, 0.5), (4, 0.25), (8, 0.016), (10, 0.004)]] + [
    LNSFormat(bits=b, base="pow2", frac_bits=m) for b, m in [(3, 0), (6, 2), (9, 4)]
]


@settings(max_examples=300, deadline=None)
@given(st.floats(min_value=-1e3, max_value=1e3, allow_nan=False).filter(lambda x: abs(x) > 1e-30))
def test_encode_picks_the_nearest_rung(w):
    sigma = 0.7
    sign, k = encode(np.array([w]), FMT, sigma)
    assert sign[0] == (w < 0)
    target = -math.log(abs(w) / sigma) / FMT.eta0  # position on the ladder, in rungs
    expect = min(max(round(target), 0), FMT.code_max)
    assert int(k[0]) == expect or abs(abs(target - int(k[0])) - 0.5) < 1e-6  # a tie may go either way
    back = decode(sign, k, FMT, sigma)[0]
    assert math.copysign(1, back) == math.copysign(1, w)
    if 0 <= target <= FMT.code_max:
        assert abs(math.log(abs(back) / abs(w))) <= FMT.eta0 / 2 + 1e-9


def test_encode_is_monotone_and_saturates():
    sigma = 1.0
    mags = np.geomspace(10.0, 1e-40, 20001)
    _, k = encode(mags, FMT, sigma)
    assert np.all(np.diff(k.astype(int)) >= 0)
    assert k[0] == 0 and k[-1] == FMT.code_max
    _, k = encode(np.array([sigma, 5 * sigma, -sigma]), FMT, sigma)
    assert k.tolist() == [0, 0, 0]


@pytest.mark.parametrize("fmt", SMALL_FORMATS, ids=lambda f: f.describe())
def test_every_code_round_trips(fmt):
    k = np.arange(fmt.levels, dtype=fmt.code_dtype)
    for s in (0, 1):
        sign = np.full(k.shape, s, np.uint8)
        w = decode(sign, k, fmt, 0.3)
        sign2, k2 = encode(w, fmt, 0.3)
        assert np.array_equal(k2, k) and np.array_equal(sign2, sign)
        assert k2.dtype == np.dtype(fmt.code_dtype)


@pytest.mark.parametrize(
    "w, message",
    [
        (np.array([1.0, 0.0]), r"w must be finite and non-zero to encode, not 0.0 at index \(1,\) \(1 such weights\)"),
        (np.array([np.nan, 1.0, np.inf]), r"w must be finite and non-zero to encode, not nan at index \(0,\) \(2 such weights\)"),
        (np.array([-np.inf]), r"not -inf at index \(0,\)"),
    ],
)
def test_encode_rejects_zero_and_non_finite(w, message):
    with pytest.raises(SpecError, match=message):
        encode(w, FMT, 1.0)


@pytest.mark.parametrize("sigma", [0.0, -1.0, math.nan, math.inf, 2.0**127, "1"])
def test_sigma_star_is_validated(sigma):
    with pytest.raises(SpecError, match="sigma_star must be a finite number in"):
        encode(np.array([1.0]), FMT, sigma)


@pytest.mark.parametrize(
    "sign, k, message",
    [
        ([0], [4096], r"k must be in 0..4095 for B=12 eta0=0.001, not 4096"),
        ([0], [-1], r"k must be in 0..4095 for B=12 eta0=0.001, not -1"),
        ([2], [5], r"sign must be in 0..1 for B=12 eta0=0.001, not 2"),
        ([0, 1], [5], r"sign must have the shape of k \(1,\), not \(2,\)"),
        ([0], [1.5], r"k must be an integer array, not dtype float64"),
    ],
)
def test_decode_and_pack_reject_bad_codes(sign, k, message):
    with pytest.raises(SpecError, match=message):
        decode(sign, k, FMT, 1.0)
    with pytest.raises(SpecError, match=message):
        pack(sign, k, FMT)


def _bf16_reference(x: np.float32) -> int:
    """Round-to-nearest-even float32 -> bfloat16, written out bit by bit."""
    u = int(np.array([x], np.float32).view(np.uint32)[0])
    if math.isnan(float(x)):
        return (u >> 16) | 0x40
    upper, lower = u >> 16, u & 0xFFFF
    if lower > 0x8000 or (lower == 0x8000 and upper & 1):
        upper += 1
    return upper


def test_bfloat16_rounding_matches_bitwise_reference():
    rng = np.random.default_rng(1)
    u = rng.integers(0, 2**32, 200_000, dtype=np.uint64).astype(np.uint32)
    u[:8] = [0x3F808000, 0x3F818000, 0x7F7FFFFF, 0x00008000, 0x00018000, 0x7F800000, 0xFF800000, 0x7FC00001]
    x = u.view(np.float32)
    got = grad_to_bits(x)
    ref = np.array([_bf16_reference(v) for v in x], np.uint16)
    assert np.array_equal(got, ref)
    assert got[:8].tolist() == [0x3F80, 0x3F82, 0x7F80, 0x0000, 0x0002, 0x7F80, 0xFF80, 0x7FC0]


def test_bfloat16_rounding_every_upper_half():
    """All 2**16 upper halves x the lower halves where rounding decides (ties, just below and above)."""
    upper = np.arange(2**16, dtype=np.uint64)[:, None] << 16
    lower = np.array([0, 1, 0x7FFF, 0x8000, 0x8001, 0xFFFF], np.uint64)[None, :]
    u = (upper | lower).reshape(-1)
    up, low = u >> 16, u & 0xFFFF
    rounded = up + ((low > 0x8000) | ((low == 0x8000) & (up & 1 == 1)))
    nan = (u & 0x7FFFFFFF) > 0x7F800000
    expected = np.where(nan, up | 0x40, rounded).astype(np.uint16)
    np.testing.assert_array_equal(grad_to_bits(u.astype(np.uint32).view(np.float32)), expected)


@pytest.mark.parametrize("fmt", ["bfloat16", "float16", "float32"])
def test_gradient_codec_keeps_special_classes(fmt):
    x = np.array([np.nan, -np.nan, np.inf, -np.inf, 0.0, -0.0, 1.0, -2.5, 1e-40, 3e-6], np.float32)
    back = bits_to_grad(grad_to_bits(x, fmt), fmt)
    assert np.isnan(back[:2]).all()
    assert back[2:4].tolist() == [np.inf, -np.inf]
    assert back[4:8].tolist() == [0.0, -0.0, 1.0, -2.5]
    assert np.signbit(back[5])
    assert 0 < back[9] and abs(back[9] - 3e-6) / 3e-6 < 2**-7  # float16 keeps 3e-6 as a subnormal
    if fmt != "float16":
        assert 0 < back[8] < 1.2e-38  # a float32 subnormal stays a (rounded) subnormal


def test_float16_overflow_becomes_inf():
    assert bits_to_grad(grad_to_bits(np.array([1e6, -1e6], np.float32), "float16"), "float16").tolist() == [np.inf, -np.inf]


@pytest.mark.parametrize("bits, dtype", [(2, np.uint8), (7, np.uint8), (8, np.uint16), (15, np.uint16), (16, np.uint32), (24, np.uint32)])
def test_pack_round_trip_in_narrowest_dtype(bits, dtype):
    fmt = LNSFormat(bits=bits, eta0=min(1.0, 60 / 2**bits))
    rng = np.random.default_rng(bits)
    k = rng.integers(0, fmt.levels, 1000).astype(fmt.code_dtype)
    k[:2] = [0, fmt.code_max]
    sign = rng.integers(0, 2, 1000).astype(np.uint8)
    words = pack(sign, k, fmt)
    assert words.dtype == dtype
    assert int(words.max()) < 2 ** (bits + 1)
    s2, k2 = unpack(words, fmt)
    assert np.array_equal(s2, sign) and np.array_equal(k2, k)


def test_unpack_rejects_too_wide_words():
    with pytest.raises(SpecError, match=r"words must be in 0..8191 \(bits \+ 1 = 13 bits\), not 8192"):
        unpack(np.array([8192], np.uint16), FMT)
