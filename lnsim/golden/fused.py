"""FusedMadam: several GoldenMadam tensors stepped as one set of flat buffers, one compiled call per step.

The trainer's hot path. Float32 gradients go in; the step quantises them to the gradient format, runs the
golden update over every element and decodes the new codes into float32 words holding the bit-true decoder's
bfloat16 values, all in one call, on one thread or (``parallel=True``) over Numba's threads. A step is exactly :meth:`GoldenMadam.step` on every tensor
(same kernel, same step scalars) followed by :func:`lnsim.golden.decode_bf16` of the new codes;
tests/test_golden_fused.py checks both bit for bit, serial and parallel.

Gradients either come as arrays (``step(grads)`` copies them into the flat float32 buffer) or are written by
the caller straight into that buffer's per-tensor views, :attr:`FusedMadam.grads` (e.g. PyTorch's
``torch.from_numpy(view).copy_(p.grad)``), and ``step(None)`` steps with them: no second copy.

Decoding reads a per-tensor table of the decoder's output for every code (built once with
:func:`decode_bf16` itself, so there is no second formula): a weight's value depends only on its sign, its code
and the tensor's frozen sigma_star. Formats wider than :data:`LUT_MAX_BITS` take three calls instead (gradient
rounding, :func:`update_inplace`, :func:`decode_bf16` per run of tensors sharing a sigma_star).
"""

from __future__ import annotations

import numpy as np

from lnsim import tables
from lnsim.codecs import grad_to_bits
from lnsim.golden import decoder, loops
from lnsim.golden.datapath import _PARALLEL_MIN, _constants, decode_bf16, grad_dtype, update_inplace
from lnsim.golden.madam import GoldenMadam, StepStats
from lnsim.spec import GradFormat
from lnsim.validation import SpecError, check_bool

__all__ = ["FusedMadam", "LUT_MAX_BITS"]

#: Widest code whose decode table (2**bits words per tensor) is built; wider formats decode element-wise.
LUT_MAX_BITS = 16


class FusedMadam:
    """B-bit Madam over a list of tensors sharing one spec and step count, each element updated as
    :class:`GoldenMadam` does, with one call per step.

    The tensors' ``sign``, ``k`` and ``state`` become views of flat buffers owned here (so each
    :class:`GoldenMadam` still shows its own tensor) and their ``t`` follows this object's. While this object
    lives, only :meth:`step` steps them: :meth:`GoldenMadam.step` of a member raises, as does a second
    FusedMadam over one of them. ``weights`` are float32 arrays, one per tensor, holding the
    decoded bfloat16 values of the current codes; :meth:`step` rewrites them in place. ``grads`` are float32
    arrays, one per tensor (its shape), views of the flat gradient buffer :meth:`step` reads: write a step's
    gradients there and call ``step(None)``.

    Parameters
    ----------
    tensors : list of GoldenMadam
        One spec and one ``t`` for all (the bias-correction term is per step, not per tensor).
    parallel : bool
        Spread each step over Numba's threads (as many as :func:`numba.get_num_threads` gives at the call)
        when the tensors hold 2**15 elements or more; the results are the same bits either way.
    """

    def __init__(self, tensors: list[GoldenMadam], *, parallel: bool = False):
        parallel = check_bool("parallel", parallel)
        tensors = list(tensors)
        if not tensors or not all(isinstance(t, GoldenMadam) for t in tensors):
            raise SpecError(f"tensors must be a non-empty list of GoldenMadam, not {tensors!r}")
        spec = tensors[0].spec
        if any(t.spec != spec for t in tensors) or len({t.t for t in tensors}) != 1:
            raise SpecError("tensors must share one spec and one step count t")
        for i, t in enumerate(tensors):
            if t._stepper() is not None:
                raise SpecError(f"tensors[{i}] is already stepped by another FusedMadam")
            if any(u is t for u in tensors[:i]):
                raise SpecError(f"tensors[{i}] appears twice in tensors")
        self.spec = spec
        self.tensors = tensors
        self.t = tensors[0].t
        self.parallel = parallel
        sizes = [t.k.size for t in tensors]
        ends = np.cumsum(sizes)
        self._slices = [slice(int(e - n), int(e)) for e, n in zip(ends, sizes)]
        n = int(ends[-1])
        self.sign = np.empty(n, np.uint8)
        self.k = np.empty(n, spec.fmt.code_dtype)
        self.state = np.empty(n, np.uint32)
        for t, sl in zip(tensors, self._slices):
            self.sign[sl] = t.sign.reshape(-1)
            self.k[sl] = t.k.reshape(-1)
            self.state[sl] = t.state.reshape(-1)
        self.sign.flags.writeable = False
        for t, sl in zip(tensors, self._slices):
            t.sign, t.k, t.state = (a[sl].reshape(t.k.shape) for a in (self.sign, self.k, self.state))
            t._fuse(self)
        self._grad = np.zeros(n, np.float32)
        self.grads = [self._grad[sl].reshape(t.k.shape) for t, sl in zip(tensors, self._slices)]
        self._threads = parallel and n >= _PARALLEL_MIN
        self._grad_bits = (self._grad.view(np.uint32) if spec.cfg.grad_format is GradFormat.FLOAT32
                           else np.zeros(n, grad_dtype(spec)))
        self._wbits = np.zeros(n, np.uint32)
        self.weights = [self._wbits[sl].view(np.float32).reshape(t.k.shape) for t, sl in zip(tensors, self._slices)]
        self._segments = self._decode_segments()
        self._lut = self._build_lut() if spec.fmt.bits <= LUT_MAX_BITS else None
        self._decode()
        W, MB, WM, EMAX, s, F, a, SSTAR, KMAX = _constants(spec)
        self._fused = None
        if self._lut is not None:
            fused = loops.fused_step_for(W, MB, WM, EMAX, s, F, a, tables.log_table(spec), tables.antilog_table(spec),
                                         parallel=self._threads)
            convert = spec.cfg.grad_format is GradFormat.BFLOAT16
            grad = self._grad.view(np.uint32) if convert else self._grad_bits
            self._fused = (fused, (self.sign, self.k, grad, convert, self.state),
                           (np.int32(SSTAR), np.int32(KMAX), self._wbits, *self._lut))
        # step_from reads float32 words where they lie for the formats the kernel takes them in (not float16).
        self._in_place = self._fused is not None and spec.cfg.grad_format is not GradFormat.FLOAT16
        self._gstarts = np.array([0] + [sl.stop for sl in self._slices], np.int64)
        self._no_ptrs = np.zeros(0, np.int64)
        self._own_ptrs = np.array([g.__array_interface__["data"][0] for g in self.grads], np.int64)
        start = self._wbits.__array_interface__["data"][0]
        self._wbits_at = (start, start + self._wbits.nbytes)

    def _decode_segments(self) -> list:
        """Runs of neighbouring tensors with one sigma_star (a layer's weights and bias): one table each."""
        segments = []
        for t, sl in zip(self.tensors, self._slices):
            if segments and segments[-1][1] == t.sigma_star:
                segments[-1][0] = slice(segments[-1][0].start, sl.stop)
            else:
                segments.append([sl, t.sigma_star])
        return [(sl, sigma_star) for sl, sigma_star in segments]

    def _build_lut(self):
        fmt = self.spec.fmt
        codes = np.arange(fmt.code_max + 1, dtype=fmt.code_dtype)
        positive = np.zeros(codes.shape, np.uint8)
        lut = np.concatenate([decode_bf16(fmt, positive, codes, s).astype(np.uint32) << 16 for _, s in self._segments])
        ends = np.array([sl.stop for sl, _ in self._segments], np.int64)
        offsets = np.arange(len(self._segments), dtype=np.int64) * codes.size
        return ends, offsets, lut

    def _decode(self) -> None:
        if self._lut is not None:
            decoder.decode_lut_loop(self.sign, self.k, self._wbits, *self._lut)
        else:
            fmt = self.spec.fmt
            for sl, sigma_star in self._segments:
                np.left_shift(decode_bf16(fmt, self.sign[sl], self.k[sl], sigma_star), 16, out=self._wbits[sl],
                              dtype=np.uint32)

    def step(self, grads, eta_rungs: int | None = None) -> StepStats:
        """One B-bit Madam step of every tensor with float gradients: ``grads`` (one array per tensor, its shape),
        or, if ``grads`` is None, the float32 values already in :attr:`grads`.

        ``step(grads)`` copies the arrays into :attr:`grads` first (converting them to float32); ``step(None)``
        reads them as they are. Either way :attr:`grads` keep this step's float32 gradients afterwards.
        ``eta_rungs`` (default: the spec's eta / eta0) is this step's learning rate in whole rungs. Returns the
        NaN and +-Inf gradient counts over all tensors; ``weights`` then hold the new decoded values.
        """
        if grads is not None:
            self._copy_grads(list(grads))
        return self._step(self._scalars(eta_rungs), self._no_ptrs)

    def step_from(self, grads, eta_rungs: int | None = None) -> StepStats:
        """:meth:`step` reading each gradient where it lies, without copying it into :attr:`grads`.

        ``grads`` holds one entry per tensor: an array of its shape, or None for the gradient already in
        :attr:`grads`. A C-contiguous float32 NumPy array (e.g. ``p.grad.numpy()``) is read in place by the
        compiled step, for the bfloat16 and float32 gradient formats; any other array, and every array of
        other formats, is copied into :attr:`grads` first. The arrays must not change during the call. Same
        bits, counts and checks as ``step(grads)``; :attr:`grads` then hold only the copied gradients.
        """
        grads = list(grads)
        if len(grads) != len(self.tensors):
            raise SpecError(f"grads must hold {len(self.tensors)} arrays (one per tensor), not {len(grads)}")
        for i, (t, g) in enumerate(zip(self.tensors, grads)):
            if g is not None and np.shape(g) != t.k.shape:
                raise SpecError(f"grads[{i}] must have shape {t.k.shape}, not {np.shape(g)}")
        scalars = self._scalars(eta_rungs)
        in_place = self._in_place and loops.fits_lean(*scalars)
        ptrs = self._own_ptrs.copy() if in_place else self._no_ptrs
        for i, (view, g) in enumerate(zip(self.grads, grads)):
            if in_place and isinstance(g, np.ndarray) and g.dtype == np.float32 and g.flags.c_contiguous:
                p = g.__array_interface__["data"][0]
                if not self._wbits_at[0] - g.nbytes < p < self._wbits_at[1]:  # the step writes those words
                    ptrs[i] = p
                    continue
            if g is not None:
                view[...] = g
        return self._step(scalars, ptrs)  # grads (and so the arrays read in place) live until it returns

    def _scalars(self, eta_rungs) -> tuple[int, int]:
        return tables.log_eta_term(self.spec, eta_rungs), tables.bias_correction_term(self.spec, self.t + 1)

    def _step(self, scalars, gptrs) -> StepStats:
        spec = self.spec
        log_eta, log_bc = scalars
        fmt = spec.cfg.grad_format
        if fmt is GradFormat.FLOAT16:
            self._grad_bits[:] = grad_to_bits(self._grad, fmt)
        if self._fused is not None and loops.fits_lean(log_eta, log_bc):
            fused, buffers, rest = self._fused
            n_nan, n_inf = fused(*buffers, np.int64(log_eta), np.int64(log_bc), *rest, gptrs, self._gstarts)
        else:
            if fmt is GradFormat.BFLOAT16:
                self._grad_bits[:] = grad_to_bits(self._grad, fmt)
            n_nan, n_inf = update_inplace(spec, self.sign, self.k, self._grad_bits, self.state, log_eta=log_eta,
                                          log_bc=log_bc, parallel=self.parallel)
            self._decode()
        self.t += 1
        for t in self.tensors:
            t.t = self.t
        return StepStats(nan=int(n_nan), inf=int(n_inf))

    def _copy_grads(self, grads: list) -> None:
        """Check ``grads`` (count, shapes) and copy them into the flat buffer; nothing is written on an error."""
        if len(grads) != len(self.tensors):
            raise SpecError(f"grads must hold {len(self.tensors)} arrays (one per tensor), not {len(grads)}")
        for i, (t, g) in enumerate(zip(self.tensors, grads)):
            if np.shape(g) != t.k.shape:
                raise SpecError(f"grads[{i}] must have shape {t.k.shape}, not {np.shape(g)}")
        for view, g in zip(self.grads, grads):
            view[...] = g
