"""Codecs between floats and the integer formats: weights <-> (sign, k), float32 -> gradient bits, packing.

Formats: a weight code is a sign bit (0 = positive, uint8) and a code ``k`` in ``0 .. 2**bits - 1``
(the format's ``code_dtype``). Gradient bit patterns are uint16 (bfloat16, float16) or uint32 (float32).
"""

from __future__ import annotations

import math

import numba
import numpy as np

from lnsim.spec import GradFormat, LNSFormat, Spec
from lnsim.validation import SpecError, check_enum

__all__ = ["INIT_DEPTH", "init_depth_rungs", "encode", "decode", "grad_to_bits", "float32_to_bfloat16_bits", "bits_to_grad", "pack", "unpack", "check_codes", "check_sigma_star"]


#: Depth in nepers over which initial codes spread (:func:`init_depth_rungs`): the paper's 12-bit ladder,
#: (2**12 - 1) * 0.001, a dynamic range of exp(4.095) = 60.
INIT_DEPTH = 4.095


def init_depth_rungs(spec: Spec) -> int:
    """Largest initial code of a fresh tensor (the trainers' and LNSMadam's ``uniform-rungs``, the cap of
    ``quantized``): ``min(2**B - 1, floor(INIT_DEPTH / eta0))``."""
    return int(min(spec.fmt.code_max, math.floor(INIT_DEPTH / spec.fmt.eta0 + 1e-9)))


def check_sigma_star(sigma_star) -> float:
    """Validate a per-tensor scale: a finite number in (0, 2**127)."""
    ok = isinstance(sigma_star, (int, float, np.floating, np.integer)) and not isinstance(sigma_star, bool)
    if not ok or not math.isfinite(sigma_star) or not 0 < sigma_star < 2.0**127:
        raise SpecError(f"sigma_star must be a finite number in (0, 2**127), not {sigma_star!r}")
    return float(sigma_star)


def check_codes(sign, k, fmt: LNSFormat):
    """Validate sign and code arrays against ``fmt``; return them as (uint8, code_dtype) arrays of one shape."""
    sign = np.asarray(sign)
    k = np.asarray(k)
    if sign.shape != k.shape:
        raise SpecError(f"sign must have the shape of k {k.shape}, not {sign.shape}")
    for name, arr, hi in (("sign", sign, 1), ("k", k, fmt.code_max)):
        if arr.dtype.kind not in "iu":
            raise SpecError(f"{name} must be an integer array, not dtype {arr.dtype}")
        if arr.size and (arr.min() < 0 or arr.max() > hi):
            bad = arr[(arr < 0) | (arr > hi)].flat[0]
            raise SpecError(f"{name} must be in 0..{hi} for {fmt.describe()}, not {int(bad)}")
    return sign.astype(np.uint8), k.astype(fmt.code_dtype)


def encode(w, fmt: LNSFormat, sigma_star: float):
    """Nearest rung in the log domain: ``k = clip(round(-ln(|w| / sigma_star) / eta0), 0, 2**bits - 1)``.

    Weights with ``|w| >= sigma_star`` saturate at k = 0; tiny weights at k = 2**bits - 1.

    Returns
    -------
    sign : uint8 array (1 for negative weights)
    k : array of ``fmt.code_dtype``

    Raises
    ------
    SpecError
        For zero or non-finite weights (a log-domain weight cannot be zero: Madam never moves it), or an
        invalid ``sigma_star``.
    """
    sigma_star = check_sigma_star(sigma_star)
    w = np.asarray(w, dtype=np.float64)
    bad = ~np.isfinite(w) | (w == 0)
    if bad.any():
        idx = np.argwhere(bad)[0]
        raise SpecError(
            f"w must be finite and non-zero to encode, not {float(w[tuple(idx)])!r} at index {tuple(int(i) for i in idx)} "
            f"({int(bad.sum())} such weights)"
        )
    rungs = -np.log(np.abs(w) / sigma_star) / fmt.eta0
    k = np.clip(np.rint(rungs), 0, fmt.code_max).astype(fmt.code_dtype)
    return (w < 0).astype(np.uint8), k


def decode(sign, k, fmt: LNSFormat, sigma_star: float) -> np.ndarray:
    """The float64 weights ``(-1)**sign * sigma_star * exp(-k * eta0)`` (the exact ladder values)."""
    sigma_star = check_sigma_star(sigma_star)
    sign, k = check_codes(sign, k, fmt)
    mag = sigma_star * np.exp(-k.astype(np.float64) * fmt.eta0)
    return np.where(sign == 1, -mag, mag)


def grad_to_bits(g, grad_format: GradFormat | str = GradFormat.BFLOAT16) -> np.ndarray:
    """Gradients (converted to float32 first) as bit patterns of ``grad_format``, rounded to nearest even.

    NaN stays NaN (quiet, sign kept), +-Inf stays +-Inf, values past the format's range overflow to Inf, and
    subnormals are kept (rounded to the format's subnormal grid). Returns uint16 or uint32.
    """
    fmt = check_enum("grad_format", grad_format, GradFormat)
    g32 = np.asarray(g, dtype=np.float32)
    shape = g32.shape
    g32 = np.ascontiguousarray(g32).reshape(-1)
    if fmt is GradFormat.FLOAT32:
        out = g32.view(np.uint32).copy()
    elif fmt is GradFormat.FLOAT16:
        with np.errstate(over="ignore"):
            out = g32.astype(np.float16).view(np.uint16)
    else:
        out = np.empty(g32.shape, np.uint16)
        float32_to_bfloat16_bits(g32.view(np.uint32), out)
    return out.reshape(shape)


@numba.njit(cache=True, nogil=True)
def float32_to_bfloat16_bits(u, out):
    """bfloat16 bit patterns (uint16 ``out``) of float32 bit patterns ``u`` (uint32), rounded to nearest even.

    Integer-only: the upper half plus a rounding increment of 0x7FFF (+1 when the kept half is odd), in 64-bit
    arithmetic (Numba widens uint32 sums); the largest finite values, 0x7F7FFFFF and 0xFF7FFFFF, round to +-Inf.
    A NaN keeps its upper half with the quiet bit set (its rounded sum, which may carry past 16 bits, is
    discarded).
    """
    for j in range(u.shape[0]):
        i = np.uint64(j)  # unsigned: no negative-index wraparound, so LLVM vectorises the loop
        x = u[i]
        upper = x >> np.uint32(16)
        rounded = np.uint16((x + np.uint32(0x7FFF) + (upper & np.uint32(1))) >> np.uint32(16))
        quiet_nan = np.uint16(upper | np.uint32(0x0040))
        out[i] = quiet_nan if (x & np.uint32(0x7FFFFFFF)) > np.uint32(0x7F800000) else rounded


def bits_to_grad(bits, grad_format: GradFormat | str = GradFormat.BFLOAT16) -> np.ndarray:
    """The float32 values of gradient bit patterns (exact for every format)."""
    fmt = check_enum("grad_format", grad_format, GradFormat)
    b = np.asarray(bits)
    if fmt is GradFormat.FLOAT32:
        return b.astype(np.uint32).view(np.float32)
    if fmt is GradFormat.FLOAT16:
        return b.astype(np.uint16).view(np.float16).astype(np.float32)
    return (b.astype(np.uint32) << 16).view(np.float32)


def pack(sign, k, fmt: LNSFormat) -> np.ndarray:
    """Pack sign and code as ``sign << bits | k`` into the narrowest unsigned dtype (``fmt.packed_dtype``)."""
    sign, k = check_codes(sign, k, fmt)
    dt = np.dtype(fmt.packed_dtype)
    return (sign.astype(dt) << dt.type(fmt.bits)) | k.astype(dt)


def unpack(words, fmt: LNSFormat):
    """Inverse of :func:`pack`: ``(sign uint8, k code_dtype)``; rejects words wider than bits + 1."""
    words = np.asarray(words)
    if words.dtype.kind not in "iu":
        raise SpecError(f"words must be an unsigned integer array, not dtype {words.dtype}")
    limit = 2 ** (fmt.bits + 1) - 1
    if words.size and (words.min() < 0 or int(words.max()) > limit):
        bad = words[(words < 0) | (words > limit)].flat[0]
        raise SpecError(f"words must be in 0..{limit} (bits + 1 = {fmt.bits + 1} bits), not {int(bad)}")
    w = words.astype(np.uint32)
    return (w >> fmt.bits).astype(np.uint8), (w & fmt.code_max).astype(fmt.code_dtype)
