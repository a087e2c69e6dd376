"""The lean form of the golden update: the element in int32 only, written so that LLVM vectorises it.

Two passes, as the generated loops of :mod:`lnsim.golden.loops` run them: :func:`lean_ratio` (stages 1-3, up
to the log ratio ``X``) and :func:`lean_step` (stages 4-5). Together they give ``k_new`` and ``st_new`` of
:func:`lnsim.golden.element.update_element` bit for bit under the ranges their docstrings state (checked by
tests/test_kernel_equivalence.py); :func:`update_lean_py` is both passes in plain Python. Also here: the
int32 intrinsics the lean form is written in, and the tables it reads (:func:`packed_table`,
:func:`log_significand_table`).

Numba types every integer operation as int64 and LLVM narrows only some of it back, and any int64 value
left in the loop halves the vector width or stops vectorisation. So the lean element keeps every value
in int32 explicitly:

* ``_w(x)`` (a plain int in Python, an int32 cast when compiled) wraps every intermediate. Each value
  provably fits in int32 for every input (ranges noted in the code), so the cast never changes a value --
  except the two 32-bit words (gradient, state), which only go through shifts and masks that give the
  same bits whether the word is read as int32 or uint32.
* ``_shl`` / ``_sar`` (plain shifts in Python) compile to 32-bit shifts, for variable shift amounts
  (LLVM cannot narrow those); every amount is in 0..31. ``_bit_length_lean`` compiles to ctlz.
* ``_ix`` masks table indices to 13 bits (they are in 0..2**12), so Numba drops its negative-index
  wraparound and the gathers use 32-bit indices.
* Branch-free selects (``a if c else b`` on precomputed values, ``&`` on bools, no ``and``/``or``).
* Rounding shifts ``(x + 2**(d-1)) >> d`` are rewritten ``((x >> (d-1)) + 1) >> 1`` (same value for
  d >= 1), which never needs a 33rd bit.
* Fewer table reads: Lg is one load from a table indexed by the significand (MB <= 15), and each
  interpolation reads both ends from one packed int32 entry (:func:`packed_table`, checked exhaustively
  when built), so 3 loads per element instead of 6. The generated loop reads those three tables through
  :class:`lnsim.golden.lut.Lut`, so with AVX-512 they are register permutes, not gathers (a gather costs
  about as much as the rest of the element: 2x on one thread).
* Stage 1 clamps the magnitude field below Inf's pattern once, instead of selecting exponent and
  mantissa apart (a NaN is clamped too; its results are discarded).
"""

from __future__ import annotations

import numba
import numpy as np
from llvmlite import ir as llvm_ir
from numba.core import types
from numba.extending import intrinsic, overload

from lnsim.golden.element import _log_unit_py

__all__ = ["lean_ratio", "lean_step", "update_lean_py", "packed_table", "check_packed_table", "log_significand_table"]


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
    check_packed_table(P, t, best)
    return P.astype(np.int32), best


def check_packed_table(P, T, params):
    """Check that every entry of the packed table ``P`` decodes, as :func:`_interp_lean` reads it, to its pair.

    ``P`` (integers, before the cast to int32) and ``params = (RB, U, C, V, OFF)`` as :func:`packed_table`
    returns them; ``T`` is the table packed. Entry ``j`` must lie in 0 .. 2**31 - 1 and give
    ``t0 = P[j] >> RB == T[j]`` and ``(((t0 >> U) * C) >> V) + (P[j] & (2**RB - 1)) + OFF == T[j+1] - T[j]``.

    Raises
    ------
    RuntimeError
        If ``P`` has not ``len(T) - 1`` entries or an entry does not decode exactly (the lean form would
        then compute wrong bits, so this is never skipped).
    """
    rb, U, C, V, off = (int(c) for c in params)
    p = np.asarray(P, dtype=np.int64)
    t = np.asarray(T, dtype=np.int64)
    if p.shape != (t.size - 1,):
        raise RuntimeError(f"a packed table of {t.size} entries must have {t.size - 1} entries, not shape {p.shape}")
    t0 = p >> rb
    d = (((t0 >> U) * C) >> V) + (p & ((1 << rb) - 1)) + off
    bad = (p < 0) | (p >= 2**31) | (t0 != t[:-1]) | (d != np.diff(t))
    if bad.any():
        j = int(np.flatnonzero(bad)[0])
        raise RuntimeError(
            f"packed table entry {j} = {int(p[j])} with (RB, U, C, V, OFF) = {(rb, U, C, V, off)} decodes to "
            f"T[j] = {int(t0[j])}, T[j+1] - T[j] = {int(d[j])}, not {int(t[j])}, {int(t[j + 1] - t[j])} "
            f"(or lies outside 0 .. 2**31 - 1)"
        )


def log_significand_table(MB, LOG, a):
    """``LOGU((S16 - 2**15) << 1)`` for every significand ``Sn = 2**MB + j``, j < 2**MB (MB <= 15): Lg."""
    S16 = (np.arange(1 << MB, 2 << MB, dtype=np.int64)) << (15 - MB)
    return np.array([_log_unit_py(int((x - (1 << 15)) << 1), LOG, a) for x in S16], dtype=np.int32)


def _lean_ratio(gbits, st, W, MB, WM, EMAX, s, F, a, LOG, LGT, LOGP, LOGPK, WLOG):
    """Stages 1-3 of :func:`~lnsim.golden.element.update_element` in int32: returns ``(X, st_new, nan, inf)``.

    The first pass of the fast loop (:func:`_update_lean` is both passes). Same ``X`` and ``st_new`` as
    ``update_element`` for every ``gbits`` and ``st`` word (up to 32 bits), except that for a NaN gradient
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
    """Stages 4-5 of :func:`~lnsim.golden.element.update_element` in int32, from stage 3's ``X``: ``(k_new, nan)``.

    The second pass of the fast loop. ``k_new`` is ``update_element``'s for every code ``0 <= k < 2**30``
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

    Same results as :func:`~lnsim.golden.element.update_element` under the conditions of the two passes.
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


_lean_jit = numba.njit(cache=True, nogil=True)  # inlined by LLVM, not by Numba (faster to compile)
_interp_lean = _lean_jit(_interp_lean)
update_lean_py = _update_lean
_jit = numba.njit(cache=True, nogil=True, inline="always")
lean_ratio = _jit(_lean_ratio)  # Numba-inlined: they take the tables (arrays)
lean_step = _jit(_lean_step)
