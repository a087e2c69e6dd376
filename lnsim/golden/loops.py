"""The fast update loops: generated and compiled per datapath, cached per process and on disk.

:func:`update_kernel` (threads) and :func:`update_kernel_serial` run the lean form of
:mod:`lnsim.golden.lean` over flat arrays, in a loop that :func:`_make_update_loop` generates for one set of
constants and tables: those are baked in as compile-time constants, so LLVM folds the constant shifts and
masks and -- crucially -- can prove the table loads never alias the stores to k and state (with tables as
arguments it refuses to vectorise). Same arguments and results as
:func:`lnsim.golden.element.update_kernel_reference`, which they fall back to for step scalars outside the
lean form's range (:func:`fits_lean`). :func:`fused_step_for` compiles the trainer's fused step: the same
loop with the gradient rounding and the weight decoder folded into each strip, one pass over memory.

The loop's shape, measured with benchmarks/bench_golden.py:

* Two passes per strip of 2,048 elements: stages 1-3 write X to a small buffer, stages 4-5 read it. One
  element's dependency chain through all five stages is far longer than the CPU's reorder window can
  hide at ~280 instructions per 16 elements; two shorter loops let it overlap more elements (1.3-1.5x
  on one thread).
* NaN/Inf counts accumulate in int32 per chunk: an int64 reduction would halve the vector width.

The strip buffers (8 KB per chunk; the fused step's gradient words 4-8 KB more) are the loops' one allocation.
"""

from __future__ import annotations

import hashlib
import threading

import numba
import numpy as np
from numba.core import types
from numba.extending import intrinsic

from lnsim.codecs import float32_to_bfloat16_bits
from lnsim.golden import lean, lut
from lnsim.golden.decoder import decode_lut_range
from lnsim.golden.element import _renamed, update_kernel_reference, update_kernel_reference_serial
from lnsim.golden.lean import _wide_products, lean_ratio, lean_step, log_significand_table, packed_table
from lnsim.golden.lut import Lut

__all__ = ["update_kernel", "update_kernel_serial", "fits_lean", "fused_step_for"]


def _sources_digest(*modules) -> str:
    """SHA-256 (16 hex digits) of the modules' source files."""
    h = hashlib.sha256()
    for m in modules:
        with open(m.__file__, "rb") as f:
            h.update(f.read())
    return h.hexdigest()[:16]


#: Part of the generated loop's name. Numba's on-disk cache checks only the file that defines a function, but
#: the loop compiles in the lean form and the table lookups from other modules: an edit to those must not
#: load a loop compiled from their old text.
_DEPENDS = _sources_digest(lean, lut)

#: Elements per chunk of the generated loop (one task of the parallel loop): NaN/Inf counts accumulate in
#: int32 within a chunk, and each chunk allocates one strip buffer.
_CHUNK = 16384
#: Elements per strip: the first pass writes X for a strip to a buffer (in L1), the second pass reads it.
_STRIP = 2048
#: Elements per chunk (one task on threads) of the fused step: the update loop's chunk, so the threads share
#: the work evenly (608 tasks for 10M elements).
_FUSED_CHUNK = _CHUNK


def _loop_tables(consts, LOG, ALOG):
    """The constants as ints and the tables the generated loops read, in the form they are frozen in."""
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
    return W, MB, WM, EMAX, s, F, a, LOG, ALOG, LGT, LOGP, LOGPK, ALOGP, ALOGPK, WLOG, WALOG


def _make_update_loop(consts, LOG, ALOG, parallel):
    """Compile the update loop for one datapath: constants and tables are frozen into the machine code.

    SSTAR and KMAX stay run-time arguments, so formats that differ only in bits or eta0 (a sweep) share
    one compiled loop.
    """
    W, MB, WM, EMAX, s, F, a, LOG, ALOG, LGT, LOGP, LOGPK, ALOGP, ALOGPK, WLOG, WALOG = _loop_tables(consts, LOG, ALOG)
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
                    x, sn, nan, inf = lean_ratio(grad[i], state[i], W, MB, WM, EMAX, s, F, a, LOG, LGT, LOGP, LOGPK,
                                                 WLOG)
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

    # Numba's on-disk cache is keyed by the function's name, code and closure: not by the parallel flag, nor by
    # the modules the loop compiles in (_DEPENDS).
    update_loop = _renamed(update_loop, ("_parallel_" if parallel else "_serial_") + _DEPENDS)
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


@intrinsic
def _words_at(typingctx, addr):
    """The address ``addr`` (an int64) as a pointer to uint32 words."""
    sig = types.CPointer(types.uint32)(types.int64)

    def codegen(context, builder, sig, args):
        return builder.inttoptr(args[0], context.get_value_type(sig.return_type))

    return sig, codegen


@numba.njit(cache=True, nogil=True)
def _fill(src, out, convert):
    """``out[:] = `` the bfloat16 bits of float32 words ``src`` (if ``convert``), else ``src`` as it is."""
    if convert:
        float32_to_bfloat16_bits(src, out)
    else:
        for j in range(src.shape[0]):
            out[j] = src[j]


@numba.njit(cache=True, nogil=True)
def _fill_strip(grad, gptrs, gstarts, lo, hi, out, convert):
    """Gradient words of elements ``lo .. hi-1`` into ``out[:hi-lo]`` (through :func:`_fill`): from the flat
    ``grad`` if ``gptrs`` is empty, else from the float32 arrays at the addresses ``gptrs``, array ``t`` holding
    elements ``gstarts[t] .. gstarts[t+1]-1``."""
    if gptrs.shape[0] == 0:
        _fill(grad[lo:hi], out[:hi - lo], convert)
        return
    t = np.searchsorted(gstarts, lo, side="right") - 1
    pos = lo
    while pos < hi:
        end = min(hi, gstarts[t + 1])
        src = numba.carray(_words_at(gptrs[t] + 4 * (pos - gstarts[t])), end - pos)
        _fill(src, out[pos - lo:end - lo], convert)
        pos = end
        t += 1


def _make_fused_step(consts, LOG, ALOG, parallel):
    """Compile, for one datapath, a step over flat buffers: gradients -> update -> decoded weights, in one pass.

    Each strip of :data:`_STRIP` elements is done whole while it sits in L1: its gradients are rounded to
    bfloat16 (:func:`lnsim.codecs.float32_to_bfloat16_bits`, if ``convert``) or copied as they are into a strip
    buffer, from the flat ``grad`` or, if ``gptrs`` is not empty, from each tensor's own float32 array where it
    lies (:func:`_fill_strip`; the caller keeps those arrays alive), the update loop's two passes run on it, and the weight decoder's table lookup
    (:func:`lnsim.golden.decoder.decode_lut_range`) writes its weights. On one thread or, if ``parallel``, with
    the chunks spread over Numba's threads. Every element's result depends on that element alone, and the
    NaN/Inf counts are sums, so both give the same bits as ``float32_to_bfloat16_bits``, the update loop and
    the decoder run one after the other over the whole buffers.
    """
    W, MB, WM, EMAX, s, F, a, LOG, ALOG, LGT, LOGP, LOGPK, ALOGP, ALOGPK, WLOG, WALOG = _loop_tables(consts, LOG, ALOG)
    CH, ST = _FUSED_CHUNK, _STRIP
    KCAP = 1 << 30
    GD = np.uint16 if W == 16 else np.uint32  # the gradient bit patterns' dtype

    def fused_step(sign, k, grad, convert, state, log_eta, log_bc, SSTAR, KMAX, wbits, seg_ends, lut_offsets, LUT,
                   gptrs, gstarts):
        n = k.shape[0]
        sstar = np.int32(SSTAR)
        kmax = np.int32(KMAX)
        n_nan = 0
        n_inf = 0
        for c in numba.prange((n + CH - 1) // CH):
            c_nan = np.int32(0)
            c_inf = np.int32(0)
            xs = np.empty(ST, np.int32)
            gs = np.empty(ST, GD)
            for lo in range(c * CH, min(c * CH + CH, n), ST):
                hi = min(lo + ST, n)
                _fill_strip(grad, gptrs, gstarts, lo, hi, gs, convert)
                for j in range(lo, hi):
                    i = np.uint64(j)
                    x, sn, nan, inf = lean_ratio(gs[np.uint64(j - lo)], state[i], W, MB, WM, EMAX, s, F, a, LOG, LGT,
                                                 LOGP, LOGPK, WLOG)
                    xs[np.uint64(j - lo)] = x
                    state[i] = sn
                    c_nan = np.int32(c_nan + nan)
                    c_inf = np.int32(c_inf + inf)
                for j in range(lo, hi):
                    i = np.uint64(j)
                    k0 = k[i]
                    kc = np.int32(k0) if k0 < KCAP else np.int32(KCAP)
                    kn, nan = lean_step(np.int32(sign[i]), kc, gs[np.uint64(j - lo)], xs[np.uint64(j - lo)], log_eta,
                                        log_bc, W, MB, F, a, sstar, kmax, ALOG, ALOGP, ALOGPK, WALOG)
                    k[i] = k0 if nan else kn
                decode_lut_range(sign, k, wbits, seg_ends, lut_offsets, LUT, lo, hi)
            n_nan += c_nan
            n_inf += c_inf
        return n_nan, n_inf

    fused_step = _renamed(fused_step, ("_parallel_" if parallel else "_serial_") + _DEPENDS)
    return numba.njit(cache=True, nogil=True, parallel=parallel)(fused_step)


_fused = {}


def fused_step_for(W, MB, WM, EMAX, s, F, a, LOG, ALOG, parallel=False):
    """The compiled fused step (:func:`_make_fused_step`) for these constants and tables (one per datapath),
    serial or parallel."""
    key = ((W, MB, WM, EMAX, s, F, a), LOG.tobytes(), ALOG.tobytes(), bool(parallel))
    fn = _fused.get(key)
    if fn is None:
        with _loops_lock:
            fn = _fused.get(key)
            if fn is None:
                fn = _fused[key] = _make_fused_step(key[0], LOG, ALOG, key[3])
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
        return update_kernel_reference(sign, k, grad, state, log_eta, log_bc, W, MB, WM, EMAX, s, F, a, SSTAR, KMAX,
                                       LOG, ALOG)
    return _update_loop_for((W, MB, WM, EMAX, s, F, a), LOG, ALOG, True)(
        sign, k, grad, state, np.int64(log_eta), np.int64(log_bc), np.int32(SSTAR), np.int32(KMAX)
    )


def update_kernel_serial(sign, k, grad, state, log_eta, log_bc, W, MB, WM, EMAX, s, F, a, SSTAR, KMAX, LOG, ALOG):
    """:func:`update_kernel` on one thread."""
    if not fits_lean(log_eta, log_bc):
        return update_kernel_reference_serial(sign, k, grad, state, log_eta, log_bc, W, MB, WM, EMAX, s, F, a, SSTAR,
                                              KMAX, LOG, ALOG)
    return _update_loop_for((W, MB, WM, EMAX, s, F, a), LOG, ALOG, False)(
        sign, k, grad, state, np.int64(log_eta), np.int64(log_bc), np.int32(SSTAR), np.int32(KMAX)
    )

