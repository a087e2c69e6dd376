"""Integer kernels of the golden model, written as plain Python and compiled with Numba afterwards.

Each function implements one part of docs/datapath.md line by line. Kernels take arrays, integers and
tables only: no validation, no allocation, no floating point, no ``fastmath``. The API layer
(:mod:`lnsim.golden.madam`, :mod:`lnsim.golden.decoder`) validates, allocates and dispatches.

The plain-Python originals stay importable as ``*_py`` for debugging and coverage.
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["update_element", "update_kernel", "update_kernel_serial", "decode_kernel", "STAGE_NAMES"]

#: Names of the intermediate values returned by :func:`update_element` with ``trace``, in order.
STAGE_NAMES = ("nan", "inf", "zero", "sg", "en", "S16", "Em", "Sm", "X", "Y", "n", "k_new", "st_new")

_jit = numba.njit(cache=True, nogil=True, inline="always")


def _bit_length(x):
    """Position of the leading one plus one, for 1 <= x < 2**32 (a priority encoder, branch-free)."""
    n = 1
    t = x >> 16
    c = t != 0
    n += 16 if c else 0
    x = t if c else x
    t = x >> 8
    c = t != 0
    n += 8 if c else 0
    x = t if c else x
    t = x >> 4
    c = t != 0
    n += 4 if c else 0
    x = t if c else x
    t = x >> 2
    c = t != 0
    n += 2 if c else 0
    x = t if c else x
    n += 1 if (x >> 1) != 0 else 0
    return n


def _log_unit(f, LOG, a):
    """LOGU(f) ~= 2**F * log2(1 + f / 2**16) for a 16-bit fraction f (table plus linear interpolation)."""
    sh = 16 - a
    i = f >> sh
    lo = f & ((1 << sh) - 1)
    t0 = np.int64(LOG[i])
    return t0 + (((np.int64(LOG[i + 1]) - t0) * lo) >> sh)


def _antilog_unit(ph, ALOG, a, F):
    """A ~= 2**24 * 2**(ph / 2**(F+1)) for an (F+1)-bit fraction ph."""
    sh = F + 1 - a
    i = ph >> sh
    lo = ph & ((1 << sh) - 1)
    t0 = np.int64(ALOG[i])
    return t0 + (((np.int64(ALOG[i + 1]) - t0) * lo) >> sh)


def _update_element(sw, k, gbits, st, log_eta, log_bc, W, MB, WM, EMAX, s, F, a, SSTAR, KMAX, LOG, ALOG):
    """One B-bit Madam update (docs/datapath.md stages 1-5), all int64.

    Returns ``(k_new, st_new, nan, inf, zero, sg, en, S16, Em, Sm, X, Y, n)``.
    """
    EMAXF = (1 << (W - 1 - MB)) - 1
    # Stage 1: unpack the gradient.
    sg = gbits >> (W - 1)
    e = (gbits >> MB) & EMAXF
    m = gbits & ((1 << MB) - 1)
    nan = (e == EMAXF) and (m != 0)
    inf = (e == EMAXF) and (m == 0)
    e = EMAXF - 1 if inf else e
    m = (1 << MB) - 1 if inf else m
    zero = (e == 0) and (m == 0)
    S = m + ((1 << MB) if e > 0 else 0)
    x = e if e > 1 else 1
    S = 1 if zero else S
    p = _bit_length(S) - 1
    Sn = S << (MB - p)
    en = x - (MB - p)
    S16 = (Sn << (15 - MB)) if MB <= 15 else (Sn >> (MB - 15))

    # Stage 2: second-moment EMA in a linear pseudo-float.
    E = st >> WM
    M = st & ((1 << WM) - 1)
    M1 = M - ((M + (1 << (s - 1))) >> s)
    sq = S16 * S16
    hi = sq >> 31
    sqn = sq << (1 - hi)
    Mt = (sqn + (1 << (31 - WM))) >> (32 - WM)
    Et = 2 * en + hi + 2 * MB - 1
    Mt = 0 if zero else Mt
    Et = 0 if zero else Et
    Em = E if E > Et else Et
    dv = Em - E
    dv = 31 if dv > 31 else dv
    dt = Em - Et
    dt = 31 if dt > 31 else dt
    Av = (M1 + ((1 << dv) >> 1)) >> dv
    At = (Mt + ((1 << dt) >> 1)) >> dt
    Sm = Av + At
    over = Sm >= (1 << WM)
    under = (not over) and Sm < (1 << (WM - 1)) and Em > 0
    Sm = (Sm >> 1) if over else ((Sm << 1) if under else Sm)
    Em = Em + (1 if over else 0) - (1 if under else 0)
    sat = Em > EMAX
    Sm = (1 << WM) - 1 if sat else Sm
    Em = EMAX if sat else Em
    st_new = (Em << WM) | Sm

    # Stage 3: logarithms and the ratio.
    Lg = _log_unit((S16 - (1 << 15)) << 1, LOG, a)
    fv = Sm - (1 << (WM - 1))
    fv = 0 if zero else fv  # zero gradient: Sm may be unnormalised; the ratio is unused
    f16 = (fv >> (WM - 17)) if WM >= 17 else (fv << (17 - WM))
    Lv = _log_unit(f16, LOG, a)
    I = 2 * en - Em + 2 * MB - 1 + s
    I = -64 if I < -64 else (64 if I > 64 else I)
    X = (I << F) + 2 * Lg - Lv

    # Stage 4: ratio to rung step.
    Y = X + log_eta - log_bc
    q = Y >> (F + 1)
    ph = Y & ((1 << (F + 1)) - 1)
    A = _antilog_unit(ph, ALOG, a, F)
    qc = -2 if q < -2 else (23 if q > 23 else q)
    n = ((A >> (23 - qc)) + 1) >> 1
    n = SSTAR if n > SSTAR else n
    n = 0 if zero else n

    # Stage 5: saturating add; NaN leaves the element untouched.
    d = n if sw == sg else -n
    k_new = k + d
    k_new = 0 if k_new < 0 else (KMAX if k_new > KMAX else k_new)
    k_new = k if nan else k_new
    st_new = st if nan else st_new
    return k_new, st_new, nan, inf, zero, sg, en, S16, Em, Sm, X, Y, n


def _update_loop(sign, k, grad, state, log_eta, log_bc, W, MB, WM, EMAX, s, F, a, SSTAR, KMAX, LOG, ALOG):
    """Update flat arrays in place; returns (number of NaN gradients, number of Inf gradients)."""
    n_nan = 0
    n_inf = 0
    for i in numba.prange(k.shape[0]):
        r = update_element(
            np.int64(sign[i]), np.int64(k[i]), np.int64(grad[i]), np.int64(state[i]),
            log_eta, log_bc, W, MB, WM, EMAX, s, F, a, SSTAR, KMAX, LOG, ALOG,
        )
        k[i] = r[0]
        state[i] = r[1]
        n_nan += 1 if r[2] else 0
        n_inf += 1 if r[3] else 0
    return n_nan, n_inf


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


update_element_py = _update_element
decode_element_py = _decode_element
update_element = _jit(_update_element)
decode_element = _jit(_decode_element)
_bit_length = _jit(_bit_length)
_log_unit = _jit(_log_unit)
_antilog_unit = _jit(_antilog_unit)
update_kernel = numba.njit(cache=True, nogil=True, parallel=True)(_update_loop)
update_kernel_serial = numba.njit(cache=True, nogil=True)(_update_loop)
decode_kernel = numba.njit(cache=True, nogil=True, parallel=True)(_decode_loop)
