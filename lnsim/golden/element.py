"""The element form of the golden update: every stage value of docs/datapath.md, in int64.

:func:`update_element` implements docs/datapath.md stages 1-5 line by line and returns every intermediate
value (for traces and RTL co-verification; :data:`STAGE_NAMES` names them). ``update_kernel_reference`` /
``update_kernel_reference_serial`` loop over it: the straightforward loop that the vectorised loops of
:mod:`lnsim.golden.loops` are tested against bit for bit (tests/test_kernel_equivalence.py), and their
fallback for step scalars outside the lean form's int32 range.

Kernels take arrays, integers and tables only: no validation, no allocation, no floating point, no
``fastmath``. The plain-Python original stays importable as :func:`update_element_py`.
"""

from __future__ import annotations

import types as pytypes

import numba
import numpy as np

__all__ = [
    "STAGE_NAMES",
    "antilog_segment",
    "log_segment",
    "trace_kernel",
    "update_element",
    "update_element_py",
    "update_kernel_reference",
    "update_kernel_reference_serial",
]

#: Names of the values :func:`update_element` returns, in datapath order (it returns k_new and st_new first).
STAGE_NAMES = ("nan", "inf", "zero", "sg", "en", "S16", "Em", "Sm", "X", "Y", "n", "fg", "fv16", "ph", "k_new",
               "st_new")

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


def log_segment(f, a):
    """The log table segment (index ``i`` of LOG[i]..LOG[i+1]) the log unit interpolates in for input ``f``."""
    return f >> (16 - a)


def antilog_segment(ph, a, F):
    """The antilog table segment (index ``i`` of ALOG[i]..ALOG[i+1]) the antilog unit uses for fraction ``ph``."""
    return ph >> (F + 1 - a)


def _log_unit(f, LOG, a):
    """LOGU(f) ~= 2**F * log2(1 + f / 2**16) for a 16-bit fraction f (table plus linear interpolation)."""
    sh = 16 - a
    i = log_segment(f, a)
    lo = f & ((1 << sh) - 1)
    t0 = np.int64(LOG[i])
    return t0 + (((np.int64(LOG[i + 1]) - t0) * lo) >> sh)


def _antilog_unit(ph, ALOG, a, F):
    """A ~= 2**24 * 2**(ph / 2**(F+1)) for an (F+1)-bit fraction ph."""
    sh = F + 1 - a
    i = antilog_segment(ph, a, F)
    lo = ph & ((1 << sh) - 1)
    t0 = np.int64(ALOG[i])
    return t0 + (((np.int64(ALOG[i + 1]) - t0) * lo) >> sh)


def _update_element(sw, k, gbits, st, log_eta, log_bc, W, MB, WM, EMAX, s, F, a, SSTAR, KMAX, LOG, ALOG):
    """One B-bit Madam update (docs/datapath.md stages 1-5), all int64.

    Returns ``(k_new, st_new, nan, inf, zero, sg, en, S16, Em, Sm, X, Y, n, fg, fv16, ph)``: ``fg`` and ``fv16``
    are the two log units' inputs (for ``Lg`` and ``Lv``), ``ph`` the antilog unit's.
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
    fg = (S16 - (1 << 15)) << 1
    Lg = _log_unit(fg, LOG, a)
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
    return k_new, st_new, nan, inf, zero, sg, en, S16, Em, Sm, X, Y, n, fg, f16, ph


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


def _trace_loop(sign, k, grad, state, log_eta, log_bc, out, W, MB, WM, EMAX, s, F, a, SSTAR, KMAX, LOG, ALOG):
    """Every stage value of each element into ``out`` (one row per name of STAGE_NAMES, n columns); per-element
    step scalars ``log_eta``, ``log_bc``."""
    for i in range(k.shape[0]):
        r = update_element(
            np.int64(sign[i]), np.int64(k[i]), np.int64(grad[i]), np.int64(state[i]),
            np.int64(log_eta[i]), np.int64(log_bc[i]), W, MB, WM, EMAX, s, F, a, SSTAR, KMAX, LOG, ALOG,
        )
        # The kernel returns k_new, st_new first; STAGE_NAMES lists them last (a tuple of mixed types: unrolled).
        (out[0, i], out[1, i], out[2, i], out[3, i], out[4, i], out[5, i], out[6, i], out[7, i], out[8, i], out[9, i],
         out[10, i], out[11, i], out[12, i], out[13, i]) = r[2:]
        out[14, i], out[15, i] = r[0], r[1]


update_element_py = _update_element
_log_unit_py = _log_unit
update_element = _jit(_update_element)
_bit_length = _jit(_bit_length)
log_segment = _jit(log_segment)
antilog_segment = _jit(antilog_segment)
_log_unit = _jit(_log_unit)
_antilog_unit = _jit(_antilog_unit)


def _renamed(fn, suffix):
    """A copy of ``fn`` with ``suffix`` on its name: Numba's on-disk cache is keyed by the function's name and
    code but not by the ``parallel`` flag, so one function jitted both ways would share (and swap) entries."""
    g = pytypes.FunctionType(fn.__code__, fn.__globals__, fn.__name__ + suffix, fn.__defaults__, fn.__closure__)
    g.__qualname__ = fn.__qualname__ + suffix
    g.__doc__ = fn.__doc__
    return g


#: The element-by-element loop over :func:`update_element` (the straightforward form, not vectorised); the
#: reference the generated loops are tested against, and the fallback for out-of-range step scalars.
update_kernel_reference = numba.njit(cache=True, nogil=True, parallel=True)(_renamed(_update_loop, "_parallel"))
update_kernel_reference_serial = numba.njit(cache=True, nogil=True)(_renamed(_update_loop, "_serial"))
#: Every stage value of each element of flat arrays (:func:`lnsim.golden.update_trace_arrays`).
trace_kernel = numba.njit(cache=True, nogil=True)(_trace_loop)
