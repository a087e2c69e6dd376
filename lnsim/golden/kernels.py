"""Integer kernels of the golden model, written as plain Python and compiled with Numba afterwards.

Each function implements one part of docs/datapath.md line by line. Kernels take arrays, integers and
tables only: no validation, no floating point, no ``fastmath``, and no allocation except the fast loop's
8 KB scratch buffer per chunk. The API layer (:mod:`lnsim.golden.datapath`, :mod:`lnsim.golden.madam`,
:mod:`lnsim.golden.fused`) validates, allocates and dispatches.

The plain-Python originals stay importable as ``*_py`` for debugging and coverage.

The update has two forms: :func:`update_element` (every stage value, for traces and RTL co-verification)
and the lean form (k, state and flags only, written so that LLVM vectorises it), split in two passes:
:func:`lean_ratio` (stages 1-3, up to the log ratio ``X``) and :func:`lean_step` (stages 4-5).
``update_kernel`` / ``update_kernel_serial`` run the lean form in a loop generated and compiled per spec
(see :func:`_make_update_loop`); ``update_kernel_reference*`` loop over :func:`update_element` and are what
tests/test_kernel_equivalence.py checks the fast loops against, bit for bit.
"""

from __future__ import annotations

import threading
import types as pytypes

import numba
import numpy as np
from llvmlite import ir as llvm_ir
from numba.core import types
from numba.extending import intrinsic, overload

from lnsim.codecs import float32_to_bfloat16_bits
from lnsim.golden.lut import Lut

__all__ = [
    "update_element",
    "lean_ratio",
    "lean_step",
    "update_kernel",
    "update_kernel_serial",
    "update_kernel_reference",
    "decode_kernel",
    "STAGE_NAMES",
]

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


# ---------------------------------------------------------------------------------------------------------
# The hot loop: a lean form of _update_element that LLVM vectorises (16 lanes of int32 on AVX-512).
#
# Numba types every integer operation as int64 and LLVM narrows only some of it back, and any int64 value
# left in the loop halves the vector width or stops vectorisation. So the lean element keeps every value
# in int32 explicitly:
#   * ``_w(x)`` (a plain int in Python, an int32 cast when compiled) wraps every intermediate. Each value
#     provably fits in int32 for every input (ranges noted below), so the cast never changes a value --
#     except the two 32-bit words (gradient, state), which only go through shifts and masks that give the
#     same bits whether the word is read as int32 or uint32.
#   * ``_shl`` / ``_sar`` (plain shifts in Python) compile to 32-bit shifts, for variable shift amounts
#     (LLVM cannot narrow those); every amount is in 0..31. ``_bit_length_lean`` compiles to ctlz.
#   * ``_ix`` masks table indices to 13 bits (they are in 0..2**12), so Numba drops its negative-index
#     wraparound and the gathers use 32-bit indices.
#   * Branch-free selects (``a if c else b`` on precomputed values, ``&`` on bools, no ``and``/``or``).
#   * Rounding shifts ``(x + 2**(d-1)) >> d`` are rewritten ``((x >> (d-1)) + 1) >> 1`` (same value for
#     d >= 1), which never needs a 33rd bit.
#   * Fewer table reads: Lg is one load from a table indexed by the significand (MB <= 15), and each
#     interpolation reads both ends from one packed int32 entry (:func:`packed_table`, checked exhaustively
#     when built), so 3 loads per element instead of 6. The generated loop reads those three tables through
#     :class:`lnsim.golden.lut.Lut`, so with AVX-512 they are register permutes, not gathers (a gather costs
#     about as much as the rest of the element: 2x on one thread).
#   * NaN/Inf counts accumulate in int32 per chunk: an int64 reduction would halve the vector width.
#   * Stage 1 clamps the magnitude field below Inf's pattern once, instead of selecting exponent and
#     mantissa apart (a NaN is clamped too; its results are discarded).
#   * Two passes per strip of 2,048 elements: stages 1-3 write X to a small buffer, stages 4-5 read it. One
#     element's dependency chain through all five stages is far longer than the CPU's reorder window can
#     hide at ~280 instructions per 16 elements; two shorter loops let it overlap more elements (1.3-1.5x
#     on one thread, measured with benchmarks/bench_golden.py).
# The loop itself (see _make_update_loop) is generated per spec: constants and tables are baked in as
# compile-time constants, so LLVM folds the constant shifts and masks and -- crucially -- can prove the
# table loads never alias the stores to k and state (with tables as arguments it refuses to vectorise).
# ---------------------------------------------------------------------------------------------------------


def _w(x):
    """``x`` as a 32-bit value (a Python int in Python; an int32 cast when compiled). Callers ensure it fits."""
    return int(x)


def _shl(x, n):
    """``x << n`` for 0 <= n <= 31 and a result that fits in int32 (a 32-bit shift when compiled)."""
    return x << n


def _sar(x, n):
    """``x >> n`` (arithmetic) for int32 x and 0 <= n <= 31 (a 32-bit shift when compiled)."""
    return x >> n


def _ix(x):
    """A table index in 0 .. 2**12 (as is in Python; masked to 13 bits when compiled, which is exact)."""
    return int(x)


@overload(_w)
def _w_jit(x):
    if isinstance(x, (types.Integer, types.Boolean)):
        return lambda x: np.int32(x)


@intrinsic
def _shl32(typingctx, x, n):
    def codegen(context, builder, sig, args):
        xv = context.cast(builder, args[0], sig.args[0], types.int32)
        nv = context.cast(builder, args[1], sig.args[1], types.int32)
        return builder.shl(xv, nv)

    return types.int32(x, n), codegen


@intrinsic
def _sar32(typingctx, x, n):
    def codegen(context, builder, sig, args):
        xv = context.cast(builder, args[0], sig.args[0], types.int32)
        nv = context.cast(builder, args[1], sig.args[1], types.int32)
        return builder.ashr(xv, nv)

    return types.int32(x, n), codegen


@overload(_shl)
def _shl_jit(x, n):
    if isinstance(x, types.Integer) and isinstance(n, types.Integer):
        return lambda x, n: _shl32(x, n)


@overload(_sar)
def _sar_jit(x, n):
    if isinstance(x, types.Integer) and isinstance(n, types.Integer):
        return lambda x, n: _sar32(x, n)


@overload(_ix)
def _ix_jit(x):
    if isinstance(x, types.Integer):
        return lambda x: np.int64(x) & 0x1FFF


def _bit_length_lean(x):
    """:func:`_bit_length` for 1 <= x < 2**31 (a count-leading-zeros instruction when compiled)."""
    return int(x).bit_length()


@intrinsic
def _bit_length32(typingctx, x):
    def codegen(context, builder, sig, args):
        xv = context.cast(builder, args[0], sig.args[0], types.int32)
        return builder.sub(llvm_ir.Constant(xv.type, 32), builder.ctlz(xv, llvm_ir.Constant(llvm_ir.IntType(1), 0)))

    return types.int32(x), codegen


@overload(_bit_length_lean)
def _bit_length_lean_jit(x):
    if isinstance(x, types.Integer):
        return lambda x: _bit_length32(x)


def _interp_lean(P, T, j, lo, sh, WIDE, RB, U, C, V, OFF):
    """``t0 + (((t1 - t0) * lo) >> sh)`` for the pair ``t0, t1 = T[j], T[j + 1]``, 0 <= j < len(T) - 1.

    ``RB > 0``: read both from the one entry ``P[j]`` of a packed table (:func:`packed_table`):
    ``t0 = P[j] >> RB`` and ``t1 - t0 = ((((t0 >> U) * C) >> V) + (P[j] & (2**RB - 1)) + OFF``; one table
    load instead of two. The product is formed in int64 only if ``WIDE`` (it may exceed int32).
    """
    if RB > 0:
        pj = _w(P[_ix(j)])
        t0 = _w(pj >> RB)
        d = _w(_sar(_w(_w(t0 >> U) * C), V) + _w(pj & ((1 << RB) - 1)) + OFF)
    else:
        t0 = _w(T[_ix(j)])
        d = _w(_w(T[_ix(j + 1)]) - t0)
    r = _w((d * lo) >> sh) if WIDE else _sar(_w(d * lo), sh)
    return _w(t0 + r)


def packed_table(T):
    """Pack the interpolation pairs of ``T`` into one int32 per entry, if they fit; see :func:`_interp_lean`.

    Entry ``j`` (0 <= j < len(T) - 1) is ``T[j] << RB | (t1 - t0 - model - OFF)`` where the difference
    ``t1 - t0 = T[j+1] - T[j]`` is predicted by ``model = (((T[j] >> U) * C) >> V)`` (``C = 0`` for no
    model) and the residual stored in the ``RB`` low bits. Every entry is checked to decode exactly.

    Returns ``(P, (RB, U, C, V, OFF))``, or ``(P, (0, 0, 0, 0, 0))`` (P unused) if nothing fits in 31 bits.
    """
    t = np.asarray(T, dtype=np.int64)
    t0, d = t[:-1], np.diff(t)
    none = (np.zeros(1, np.int32), (0, 0, 0, 0, 0))
    if t0.size == 0 or t0.min() < 0:
        return none
    t0_bits = int(t0.max()).bit_length()
    best = None
    # Candidate models: none, and d ~ slope * t0 (the antilog table is geometric, so d is nearly proportional).
    slope = float(np.dot(t0, d)) / max(float(np.dot(t0, t0)), 1.0)
    cands = [(0, 0, 0)]
    for U in range(0, t0_bits + 1):
        top = int(t0.max()) >> U
        for V in range(0, 31):
            C = int(round(slope * 2.0 ** (U + V)))
            if C == 0 or top * abs(C) >= 2**31:
                continue
            cands.append((U, C, V))
    for U, C, V in cands:
        r = d - (((t0 >> U) * C) >> V)
        off = int(r.min())
        rb = max(int(r.max()) - off, 1).bit_length()
        if t0_bits + rb <= 31 and (best is None or rb < best[0]):
            best = (rb, U, C, V, off)
    if best is None:
        return none
    rb, U, C, V, off = best
    P = (t0 << rb) | (d - (((t0 >> U) * C) >> V) - off)
    # Decode every entry as the kernel does and check it.
    pt0 = P >> rb
    pd = (((pt0 >> U) * C) >> V) + (P & ((1 << rb) - 1)) + off
    assert P.min() >= 0 and P.max() < 2**31 and (pt0 == t0).all() and (pd == d).all()
    return P.astype(np.int32), best


def log_significand_table(MB, LOG, a):
    """``LOGU((S16 - 2**15) << 1)`` for every significand ``Sn = 2**MB + j``, j < 2**MB (MB <= 15): Lg."""
    S16 = (np.arange(1 << MB, 2 << MB, dtype=np.int64)) << (15 - MB)
    return np.array([_log_unit_py(int((x - (1 << 15)) << 1), LOG, a) for x in S16], dtype=np.int32)


def _lean_ratio(gbits, st, W, MB, WM, EMAX, s, F, a, LOG, LGT, LOGP, LOGPK, WLOG):
    """Stages 1-3 of :func:`_update_element` in int32: returns ``(X, st_new, nan, inf)``.

    The first pass of the fast loop (:func:`_update_lean` is both passes). Same ``X`` and ``st_new`` as
    ``_update_element`` for every ``gbits`` and ``st`` word (up to 32 bits), except that for a NaN gradient
    ``X`` is unused and ``st_new = st``. ``st_new`` is the state word's bit pattern (as int32 when compiled).

    Tables: ``LGT`` = :func:`log_significand_table` (Lg in one load; used if MB <= 15), ``LOGP`` = the
    :func:`packed_table` of LOG with its constants ``LOGPK``; ``WLOG``: the log interpolation product may
    need more than 31 bits (:func:`_wide_products`).
    """
    EMAXF = (1 << (W - 1 - MB)) - 1
    # Stage 1. The word is read through shifts and masks only, so int32 or uint32 gives the same fields.
    g = _w(gbits)
    mag = _w(g & ((1 << (W - 1)) - 1))
    nan = mag > (EMAXF << MB)
    inf = mag == (EMAXF << MB)
    # Inf -> the largest finite magnitude; a NaN becomes it too, but its results are discarded.
    mag = mag if mag < (EMAXF << MB) else _w((EMAXF << MB) - 1)
    e = _w(mag >> MB)
    m = _w(mag & ((1 << MB) - 1))
    zero = mag == 0
    S = _w(m | (1 << MB)) if e > 0 else (m if m > 1 else _w(1))  # zero: S = 1
    x = e if e > 1 else _w(1)
    sh1 = _w(MB + 1 - _bit_length_lean(S))  # MB - p, in 0..MB
    Sn = _shl(S, sh1)
    en = _w(x - sh1)
    S16 = _w((Sn << (15 - MB)) if MB <= 15 else (Sn >> (MB - 15)))  # in [2**15, 2**16)

    # Stage 2. E < 2**23, M < 2**25 (WM <= 25).
    E = _w((st >> WM) & ((1 << (32 - WM)) - 1))
    M = _w(st & ((1 << WM) - 1))
    M1 = _w(M - ((M + (1 << (s - 1))) >> s))
    sqh = _w((S16 >> 1) * (S16 + (S16 & 1)))  # floor(S16**2 / 2) < 2**31
    hi = _w(1) if sqh >= (1 << 30) else _w(0)  # sq >> 31
    # Mt = (sqn + 2**(31-WM)) >> (32-WM) with sqn = sq << (1-hi); 29 - WM + hi >= 4.
    Mt = _sar(_w(_sar(sqh, _w(29 - WM + hi)) + 1), 1)
    Et = _w(2 * en + hi + (2 * MB - 1))
    Mt = _w(0) if zero else Mt
    Et = _w(0) if zero else Et
    Em = E if E > Et else Et
    dv = _w(Em - E)
    dv = _w(31) if dv > 31 else dv
    dt = _w(Em - Et)
    dt = _w(31) if dt > 31 else dt
    rv = _sar(_w(_sar(M1, _w((dv - 1) & 31)) + 1), 1)
    Av = rv if dv > 0 else M1
    rt = _sar(_w(_sar(Mt, _w((dt - 1) & 31)) + 1), 1)
    At = rt if dt > 0 else Mt
    Sm = _w(Av + At)  # < 2**(WM+1)
    over = Sm >= (1 << WM)
    under = (Sm < (1 << (WM - 1))) & (Em > 0)  # excludes over by itself
    Sd = _w(Sm >> 1)
    Su = _w(Sm << 1)
    Sm = Sd if over else (Su if under else Sm)
    Em = _w(Em + over - under)
    sat = Em > EMAX
    Sm = _w((1 << WM) - 1) if sat else Sm
    Em = _w(EMAX) if sat else Em
    st_new = _w((Em << WM) | Sm)  # the state word's bits (may set bit 31)

    # Stage 3. fv < 0 happens only for a state word breaking the normalisation invariant; the reference's
    # negative table indices (in -2**a .. -1) then wrap around, as NumPy/Numba indexing does.
    sh = 16 - a
    fg = _w((S16 - (1 << 15)) << 1)
    if MB <= 15:
        Lg = _w(LGT[_ix(Sn - (1 << MB))])
    else:
        Lg = _interp_lean(LOGP, LOG, _w(fg >> sh), _w(fg & ((1 << sh) - 1)), sh, WLOG, *LOGPK)
    fv = _w(Sm - (1 << (WM - 1)))
    fv = _w(0) if zero else fv
    f16 = _w((fv >> (WM - 17)) if WM >= 17 else (fv << (17 - WM)))  # in [-2**16, 2**16)
    lv = _w(f16 & ((1 << sh) - 1))
    iv = _w(f16 >> sh)  # in -2**a .. 2**a - 1
    jv = _w(iv + (1 << a) + 1) if iv < 0 else iv  # NumPy's wraparound; jv = 2**a only for iv = -1
    jv = _w((1 << a) - 1) if jv == (1 << a) else jv
    Lv = _interp_lean(LOGP, LOG, jv, lv, sh, WLOG, *LOGPK)
    # iv = -1: the wrapped pair LOG[2**a] = 2**F, LOG[0] = 0, i.e. 2**F + ((-2**F * lv) >> sh), exactly:
    Lw = _w((1 << F) - (lv << (F - sh))) if F >= sh else _w((1 << F) - ((lv + (1 << (sh - F)) - 1) >> (sh - F)))
    Lv = Lw if iv == -1 else Lv
    I = _w(2 * en - Em + (2 * MB - 1 + s))
    I = _w(-64) if I < -64 else (_w(64) if I > 64 else I)
    X = _w((I << F) + 2 * Lg - Lv)  # |X| < 2**27
    st_new = _w(st) if nan else st_new
    return X, st_new, nan, inf


def _lean_step(sw, k, gbits, X, log_eta, log_bc, W, MB, F, a, SSTAR, KMAX, ALOG, ALOGP, ALOGPK, WALOG):
    """Stages 4-5 of :func:`_update_element` in int32, from stage 3's ``X``: returns ``(k_new, nan)``.

    The second pass of the fast loop. ``k_new`` is ``_update_element``'s for every code ``0 <= k < 2**30``
    (larger codes saturate to the same ``k_new`` as 2**30; the loop passes them clamped) and
    ``|log_eta - log_bc| < 2**28``, unless ``nan``: then the caller keeps ``k``. The gradient's sign, zero
    and NaN flags are read again from ``gbits`` (cheaper than carrying them from the first pass).
    ``ALOGP`` / ``ALOGPK`` / ``WALOG``: as for the log table in :func:`_lean_ratio`, for ALOG.
    """
    EMAXF = (1 << (W - 1 - MB)) - 1
    g = _w(gbits)
    sg = _w((g >> (W - 1)) & 1)
    mag = _w(g & ((1 << (W - 1)) - 1))
    nan = mag > (EMAXF << MB)
    zero = mag == 0
    # Stage 4.
    Y = _w(X + _w(log_eta - log_bc))
    q = _w(Y >> (F + 1))
    ph = _w(Y & ((1 << (F + 1)) - 1))
    sa = F + 1 - a
    A = _interp_lean(ALOGP, ALOG, _w(ph >> sa), _w(ph & ((1 << sa) - 1)), sa, WALOG, *ALOGPK)  # < 2**26
    qc = _w(-2) if q < -2 else (_w(23) if q > 23 else q)
    n = _sar(_w(_sar(A, _w(23 - qc)) + 1), 1)
    n = _w(SSTAR) if n > SSTAR else n
    n = _w(0) if zero else n

    # Stage 5: clamp(k + d, 0, KMAX) as min(k, KMAX - n) + n or min(max(k, n) - n, KMAX) (no overflow).
    kmn = _w(KMAX - n)
    up = _w((k if k < kmn else kmn) + n)
    dn = _w((k if k > n else n) - n)
    dn = dn if dn < KMAX else _w(KMAX)
    k_new = up if sw == sg else dn
    return k_new, nan


def _update_lean(sw, k, gbits, st, log_eta, log_bc, W, MB, WM, EMAX, s, F, a, SSTAR, KMAX, LOG, ALOG, LGT,
                 LOGP, LOGPK, ALOGP, ALOGPK, WLOG, WALOG):
    """Both passes for one element (:func:`_lean_ratio`, then :func:`_lean_step`): ``(k_new, st_new, nan, inf)``.

    Same results as :func:`_update_element` under the conditions of the two passes.
    """
    X, st_new, nan, inf = _lean_ratio(gbits, st, W, MB, WM, EMAX, s, F, a, LOG, LGT, LOGP, LOGPK, WLOG)
    k_new, _ = _lean_step(sw, k, gbits, X, log_eta, log_bc, W, MB, F, a, SSTAR, KMAX, ALOG, ALOGP, ALOGPK, WALOG)
    return (k if nan else k_new), st_new, nan, inf


def _wide_products(LOG, ALOG, F, a):
    """Whether the log / antilog interpolation products ``(t[i+1] - t[i]) * l`` can exceed int32.

    For the log unit this includes the wrapped pair (index -1, 0) that an invalid state word can reach.
    """
    d_log = max(int(np.abs(np.diff(LOG.astype(np.int64))).max()), abs(int(LOG[-1]) - int(LOG[0])))
    d_alog = int(np.abs(np.diff(ALOG.astype(np.int64))).max())
    return d_log * ((1 << (16 - a)) - 1) >= 2**31, d_alog * ((1 << (F + 1 - a)) - 1) >= 2**31


#: Elements per chunk of the generated loop (one task of the parallel loop): NaN/Inf counts accumulate in
#: int32 within a chunk, and each chunk allocates one strip buffer.
_CHUNK = 16384
#: Elements per strip: the first pass writes X for a strip to a buffer (in L1), the second pass reads it.
_STRIP = 2048


def _make_update_loop(consts, LOG, ALOG, parallel):
    """Compile the update loop for one datapath: constants and tables are frozen into the machine code.

    SSTAR and KMAX stay run-time arguments, so formats that differ only in bits or eta0 (a sweep) share
    one compiled loop.
    """
    W, MB, WM, EMAX, s, F, a = (int(c) for c in consts)
    WLOG, WALOG = _wide_products(LOG, ALOG, F, a)
    if int(LOG[0]) != 0 or int(LOG[-1]) != 1 << F:
        raise ValueError("the log table must run from 0 to 2**F")
    LOG = np.array(LOG, dtype=np.int32)
    ALOG = np.array(ALOG, dtype=np.int32)
    LGT = log_significand_table(MB, LOG, a) if MB <= 15 else np.zeros(1, np.int32)
    LOGP, LOGPK = packed_table(LOG)
    ALOGP, ALOGPK = packed_table(ALOG)
    # Lookups in registers (vector permutes) instead of gathers where the CPU allows: see lnsim.golden.lut.
    LGT, LOGP, ALOGP = Lut(LGT), Lut(LOGP), Lut(ALOGP)
    CH, ST = _CHUNK, _STRIP
    KCAP = 1 << 30  # codes above it (only in uint32 arrays, never valid) give the same k_new as KCAP

    def update_loop(sign, k, grad, state, log_eta, log_bc, SSTAR, KMAX):
        n = k.shape[0]
        # int32 (both < 2**24): an int64 scalar would widen the comparisons with n and k to 64-bit lanes.
        sstar = np.int32(SSTAR)
        kmax = np.int32(KMAX)
        n_nan = 0
        n_inf = 0
        for c in numba.prange((n + CH - 1) // CH):
            c_nan = np.int32(0)
            c_inf = np.int32(0)
            xs = np.empty(ST, np.int32)
            for lo in range(c * CH, min(c * CH + CH, n), ST):
                hi = min(lo + ST, n)
                # Two passes over the strip, each short enough for the CPU to overlap many elements.
                for j in range(lo, hi):
                    i = np.uint64(j)  # unsigned: no negative-index wraparound
                    x, sn, nan, inf = lean_ratio(grad[i], state[i], W, MB, WM, EMAX, s, F, a, LOG, LGT, LOGP, LOGPK, WLOG)
                    xs[np.uint64(j - lo)] = x
                    state[i] = sn
                    c_nan = np.int32(c_nan + nan)
                    c_inf = np.int32(c_inf + inf)
                for j in range(lo, hi):
                    i = np.uint64(j)
                    k0 = k[i]
                    kc = np.int32(k0) if k0 < KCAP else np.int32(KCAP)
                    kn, nan = lean_step(np.int32(sign[i]), kc, grad[i], xs[np.uint64(j - lo)], log_eta, log_bc,
                                        W, MB, F, a, sstar, kmax, ALOG, ALOGP, ALOGPK, WALOG)
                    k[i] = k0 if nan else kn
            n_nan += c_nan
            n_inf += c_inf
        return n_nan, n_inf

    # Numba's on-disk cache is keyed by the function (and its closure), not by the parallel flag.
    update_loop = _renamed(update_loop, "_parallel" if parallel else "_serial")
    return numba.njit(cache=True, nogil=True, parallel=parallel)(update_loop)


_loops = {}
_loops_lock = threading.RLock()  # re-entered: the fused step compiles its update loop


def _update_loop_for(consts, LOG, ALOG, parallel):
    key = (tuple(int(c) for c in consts), LOG.tobytes(), ALOG.tobytes(), bool(parallel))
    fn = _loops.get(key)
    if fn is None:
        with _loops_lock:
            fn = _loops.get(key)
            if fn is None:
                fn = _loops[key] = _make_update_loop(key[0], LOG, ALOG, parallel)
    return fn


def _decode_lut_loop(sign, k, out, seg_ends, lut_offsets, LUT):
    """``out[i] = LUT[lut_offsets[s] + k[i]] | sign[i] << 31`` over the segments ending at ``seg_ends``.

    ``LUT`` holds, per segment, the decoder's bfloat16 bits of +sigma_star * exp(-k * eta0) for every code,
    shifted into the upper half of a float32 word (see :class:`lnsim.golden.FusedMadam`).
    """
    start = 0
    for s in range(seg_ends.shape[0]):
        base = np.uint64(lut_offsets[s])
        for j in range(start, seg_ends[s]):
            i = np.uint64(j)
            out[i] = LUT[base + np.uint64(k[i])] | (np.uint32(sign[i]) << np.uint32(31))
        start = seg_ends[s]


def _make_fused_step(consts, LOG, ALOG):
    """Compile, for one datapath, a step over flat buffers: float32 gradients -> update -> decoded weights.

    One call does what :func:`lnsim.codecs.grad_to_bits`, ``update_kernel_serial`` and the weight decoder do in
    three, on one thread (the trainer's small tensors gain nothing from threads).
    """
    update_loop = _update_loop_for(consts, LOG, ALOG, False)

    def fused_step(sign, k, grad_u32, convert_bf16, grad_bits, state, log_eta, log_bc, SSTAR, KMAX,
                   wbits, seg_ends, lut_offsets, LUT):
        if convert_bf16:
            float32_to_bfloat16_bits(grad_u32, grad_bits)
        n_nan, n_inf = update_loop(sign, k, grad_bits, state, log_eta, log_bc, SSTAR, KMAX)
        decode_lut_loop(sign, k, wbits, seg_ends, lut_offsets, LUT)
        return n_nan, n_inf

    return numba.njit(nogil=True)(fused_step)


_fused = {}


def fused_step_for(W, MB, WM, EMAX, s, F, a, LOG, ALOG):
    """The compiled fused step (:func:`_make_fused_step`) for these constants and tables (one per datapath)."""
    key = ((W, MB, WM, EMAX, s, F, a), LOG.tobytes(), ALOG.tobytes())
    fn = _fused.get(key)
    if fn is None:
        with _loops_lock:
            fn = _fused.get(key)
            if fn is None:
                fn = _fused[key] = _make_fused_step(key[0], LOG, ALOG)
    return fn


def fits_lean(log_eta, log_bc):
    """Whether the step scalars fit the vectorised loops' int32 arithmetic (else the reference loop runs)."""
    return abs(int(log_eta) - int(log_bc)) < 2**28


def update_kernel(sign, k, grad, state, log_eta, log_bc, W, MB, WM, EMAX, s, F, a, SSTAR, KMAX, LOG, ALOG):
    """Update flat arrays in place (multi-threaded); returns (number of NaN gradients, number of Inf gradients).

    Same arguments and results as :func:`update_kernel_reference`; runs the loop compiled for these
    constants and tables (compiled on first use, cached on disk).
    """
    if not fits_lean(log_eta, log_bc):
        return update_kernel_reference(sign, k, grad, state, log_eta, log_bc, W, MB, WM, EMAX, s, F, a, SSTAR, KMAX, LOG, ALOG)
    return _update_loop_for((W, MB, WM, EMAX, s, F, a), LOG, ALOG, True)(
        sign, k, grad, state, np.int64(log_eta), np.int64(log_bc), np.int32(SSTAR), np.int32(KMAX)
    )


def update_kernel_serial(sign, k, grad, state, log_eta, log_bc, W, MB, WM, EMAX, s, F, a, SSTAR, KMAX, LOG, ALOG):
    """:func:`update_kernel` on one thread."""
    if not fits_lean(log_eta, log_bc):
        return update_kernel_reference_serial(sign, k, grad, state, log_eta, log_bc, W, MB, WM, EMAX, s, F, a, SSTAR, KMAX, LOG, ALOG)
    return _update_loop_for((W, MB, WM, EMAX, s, F, a), LOG, ALOG, False)(
        sign, k, grad, state, np.int64(log_eta), np.int64(log_bc), np.int32(SSTAR), np.int32(KMAX)
    )


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
_log_unit_py = _log_unit
decode_element_py = _decode_element
update_element = _jit(_update_element)
decode_element = _jit(_decode_element)
_bit_length = _jit(_bit_length)
_log_unit = _jit(_log_unit)
_antilog_unit = _jit(_antilog_unit)
_lean_jit = numba.njit(cache=True, nogil=True)  # inlined by LLVM, not by Numba (faster to compile)
_interp_lean = _lean_jit(_interp_lean)
update_lean_py = _update_lean
lean_ratio = _jit(_lean_ratio)  # Numba-inlined: they take the tables (arrays)
lean_step = _jit(_lean_step)


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
# Parallel only: Numba's parfor lowering vectorises this loop, the plain loop not (2.5x slower on one thread).
decode_kernel = numba.njit(cache=True, nogil=True, parallel=True)(_decode_loop)
decode_lut_loop = numba.njit(cache=True, nogil=True)(_decode_lut_loop)
