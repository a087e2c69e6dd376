"""The weight decoder of the golden model (docs/datapath.md "Weight decoder"): sign and code to bfloat16 bits.

:func:`decode_element` computes the bfloat16 bit pattern of ``+-sigma_star * exp(-k * eta0)`` in integers
only; :data:`decode_kernel` maps it over flat arrays (the API is :func:`lnsim.golden.decode_bf16`), and
:data:`decode_lut_loop` (or :data:`decode_lut_range`, over a range of elements) reads a table of its results
instead (the fused step's decoder, :class:`lnsim.golden.FusedMadam`). The plain-Python original stays importable
as :func:`decode_element_py`.
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["decode_element", "decode_element_py", "decode_kernel", "decode_lut_loop", "decode_lut_range"]


def _decode_element(sw, k, es, mus, pow2, m, h, LO_E, LO_MU, HI_E, HI_MU):
    """Weight decoder (docs/datapath.md): sign and code to bfloat16 bits of +-sigma_star * exp(-k * eta0)."""
    if pow2:
        j = k & ((1 << m) - 1)
        el = np.int64(LO_E[j]) - (k >> m)
        mul = np.int64(LO_MU[j])
    else:
        kh = k >> h
        kl = k & ((1 << h) - 1)
        p = np.int64(HI_MU[kh]) * np.int64(LO_MU[kl])
        hi = p >> 31
        mul = (p + (1 << (14 + hi))) >> (15 + hi)
        el = np.int64(HI_E[kh]) + np.int64(LO_E[kl]) + hi
        carry = mul == (1 << 16)
        mul = (1 << 15) if carry else mul
        el = el + 1 if carry else el
    p = mus * mul
    hi = p >> 31
    sh = 23 + hi
    man = p >> sh
    rem = p & ((1 << sh) - 1)
    half = 1 << (sh - 1)
    man = man + (1 if (rem > half or (rem == half and (man & 1) == 1)) else 0)
    carry = man == (1 << 8)
    ex = es + el + hi + 127 + (1 if carry else 0)
    man = (1 << 7) if carry else man
    return (sw << 15) | (ex << 7) | (man - (1 << 7)) if ex >= 1 else (sw << 15)


def _decode_loop(sign, k, out, es, mus, pow2, m, h, LO_E, LO_MU, HI_E, HI_MU):
    """Decode flat arrays of signs and codes into bfloat16 bit patterns (uint16 ``out``)."""
    for i in numba.prange(k.shape[0]):
        out[i] = decode_element(np.int64(sign[i]), np.int64(k[i]), es, mus, pow2, m, h, LO_E, LO_MU, HI_E, HI_MU)


def _decode_lut_range(sign, k, out, seg_ends, lut_offsets, LUT, lo, hi):
    """``out[i] = LUT[lut_offsets[s] + k[i]] | sign[i] << 31`` for ``lo <= i < hi``, element i in segment s (the
    segments end at ``seg_ends``, increasing).

    ``LUT`` holds, per segment, the decoder's bfloat16 bits of +sigma_star * exp(-k * eta0) for every code,
    shifted into the upper half of a float32 word (see :class:`lnsim.golden.FusedMadam`).
    """
    s = np.searchsorted(seg_ends, lo, side="right")  # the segment holding element lo
    start = lo
    while start < hi:
        end = min(seg_ends[s], hi)
        base = np.uint64(lut_offsets[s])
        for j in range(start, end):
            i = np.uint64(j)
            out[i] = LUT[base + np.uint64(k[i])] | (np.uint32(sign[i]) << np.uint32(31))
        start = end
        s += 1


def _decode_lut_loop(sign, k, out, seg_ends, lut_offsets, LUT):
    """:func:`decode_lut_range` over every element."""
    decode_lut_range(sign, k, out, seg_ends, lut_offsets, LUT, 0, k.shape[0])


decode_element_py = _decode_element
decode_element = numba.njit(cache=True, nogil=True, inline="always")(_decode_element)
# Parallel only: Numba's parfor lowering vectorises this loop, the plain loop not (2.5x slower on one thread).
decode_kernel = numba.njit(cache=True, nogil=True, parallel=True)(_decode_loop)
decode_lut_range = numba.njit(cache=True, nogil=True)(_decode_lut_range)
decode_lut_loop = numba.njit(cache=True, nogil=True)(_decode_lut_loop)
