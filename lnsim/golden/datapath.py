"""Validated entry points to the golden kernels over flat arrays (docs/datapath.md).

These functions check dtypes, shapes and ranges once, then hand contiguous arrays to the Numba kernels:
:mod:`lnsim.golden.loops` (the update), :mod:`lnsim.golden.element` (one element's trace) and
:mod:`lnsim.golden.decoder`.
"""

from __future__ import annotations

import numpy as np

from lnsim import tables
from lnsim.codecs import check_codes, check_sigma_star
from lnsim.golden import decoder, element, loops
from lnsim.spec import Base, LNSFormat, Spec
from lnsim.validation import SpecError

__all__ = ["grad_dtype", "update_inplace", "update_trace", "update_trace_arrays", "decode_bf16", "sigma_star_fixed"]


#: Arrays smaller than this run on one thread: waking the thread pool costs more than it saves.
_PARALLEL_MIN = 1 << 15


def grad_dtype(spec: Spec) -> np.dtype:
    """Dtype of the gradient bit patterns for ``spec``: uint16 or uint32."""
    return np.dtype(np.uint16 if spec.cfg.grad_format.width == 16 else np.uint32)


def _constants(spec: Spec):
    g, c = spec.cfg.grad_format, spec.cfg
    return (g.width, g.man_bits, c.state_man_bits, spec.state_exp_max, c.beta_shift, c.log_frac_bits,
            c.table_index_bits, spec.eta_star_rungs, spec.fmt.code_max)


def _check_array(name, arr, dtype, shape):
    if not isinstance(arr, np.ndarray) or arr.dtype != dtype or arr.shape != shape or not arr.flags.c_contiguous:
        got = f"{arr.dtype} {arr.shape}" if isinstance(arr, np.ndarray) else type(arr).__name__
        raise SpecError(f"{name} must be a C-contiguous {np.dtype(dtype)} array of shape {shape}, not {got}")


def update_inplace(spec: Spec, sign, k, grad_bits, state, *, log_eta: int, log_bc: int, parallel: bool = True):
    """One B-bit Madam step over flat arrays, in place on ``k`` and ``state``.

    Parameters
    ----------
    sign : uint8 array, 0 or 1 (frozen; never written)
    k : array of ``spec.fmt.code_dtype``, codes in 0..2**bits-1 (updated)
    grad_bits : array of :func:`grad_dtype`, gradient bit patterns in ``spec.cfg.grad_format``
    state : uint32 array, second-moment state words (0 for a fresh element; updated)
    log_eta, log_bc : int
        The step's scalars, from :func:`lnsim.tables.log_eta_term` and :func:`lnsim.tables.bias_correction_term`.
    parallel : bool
        Use Numba's threads for arrays of 2**15 elements or more (the results are the same either way).

    Returns
    -------
    (n_nan, n_inf) : the number of NaN gradients (elements left unchanged) and of +-Inf gradients.
    """
    shape = k.shape if isinstance(k, np.ndarray) else None
    _check_array("k", k, np.dtype(spec.fmt.code_dtype), shape)
    _check_array("sign", sign, np.uint8, shape)
    _check_array("grad_bits", grad_bits, grad_dtype(spec), shape)
    _check_array("state", state, np.uint32, shape)
    kernel = loops.update_kernel if parallel and k.size >= _PARALLEL_MIN else loops.update_kernel_serial
    n_nan, n_inf = kernel(
        sign.reshape(-1), k.reshape(-1), grad_bits.reshape(-1), state.reshape(-1),
        np.int64(log_eta), np.int64(log_bc), *_constants(spec), tables.log_table(spec), tables.antilog_table(spec),
    )
    return int(n_nan), int(n_inf)


def update_trace(spec: Spec, sw: int, k: int, gbits: int, st: int, *, log_eta: int, log_bc: int) -> dict:
    """One element's update with every intermediate value named in :data:`lnsim.golden.element.STAGE_NAMES`.

    For co-verification: the RTL's stage outputs are compared with these values.
    """
    r = element.update_element(
        np.int64(sw), np.int64(k), np.int64(gbits), np.int64(st), np.int64(log_eta), np.int64(log_bc),
        *_constants(spec), tables.log_table(spec), tables.antilog_table(spec),
    )
    # The kernel returns k_new, st_new first; STAGE_NAMES lists them last, in datapath order.
    values = list(r[2:]) + [r[0], r[1]]
    return {name: int(v) for name, v in zip(element.STAGE_NAMES, values)}


def update_trace_arrays(spec: Spec, sw, k, gbits, st, *, log_eta, log_bc) -> dict:
    """Every intermediate value of :func:`update_trace` for each element of flat arrays, as int64 arrays keyed by
    :data:`lnsim.golden.element.STAGE_NAMES` (``log_eta``, ``log_bc``: per-element arrays or ints).

    For coverage: the serial element form (about as fast as the reference loop), not for training.
    """
    n = len(k)
    out = np.empty((len(element.STAGE_NAMES), n), np.int64)  # one contiguous row per value
    element.trace_kernel(
        np.ascontiguousarray(sw, np.int64), np.ascontiguousarray(k, np.int64),
        np.ascontiguousarray(gbits, np.int64), np.ascontiguousarray(st, np.int64),
        np.broadcast_to(np.asarray(log_eta, np.int64), (n,)).copy(),
        np.broadcast_to(np.asarray(log_bc, np.int64), (n,)).copy(), out,
        *_constants(spec), tables.log_table(spec), tables.antilog_table(spec),
    )
    return dict(zip(element.STAGE_NAMES, out))


def sigma_star_fixed(sigma_star: float) -> tuple[int, int]:
    """sigma_star as the decoder's (es, mus): ``sigma_star ~= mus * 2**(es - 15)``, mus in [2**15, 2**16)."""
    return tables.normalised(check_sigma_star(sigma_star))


def decode_bf16(fmt: LNSFormat, sign, k, sigma_star: float) -> np.ndarray:
    """Bit-true weight decoder: bfloat16 bit patterns (uint16) of ``(-1)**sign * sigma_star * exp(-k * eta0)``.

    Integer-only, as docs/datapath.md "Weight decoder"; results below bfloat16's normal range flush to +-0.
    """
    sign, k = check_codes(sign, k, fmt)
    es, mus = sigma_star_fixed(sigma_star)
    lo, hi = tables.ladder_tables(fmt)
    pow2 = fmt.base is Base.POW2
    hi = hi if hi is not None else (np.zeros(1, np.int32), np.zeros(1, np.int32))
    out = np.empty(k.shape, np.uint16)
    decoder.decode_kernel(
        np.ascontiguousarray(sign).reshape(-1), np.ascontiguousarray(k).reshape(-1), out.reshape(-1),
        np.int64(es), np.int64(mus), pow2, np.int64(fmt.frac_bits if pow2 else 0),
        np.int64(0 if pow2 else tables.ladder_split(fmt)), lo[0], lo[1], hi[0], hi[1],
    )
    return out
