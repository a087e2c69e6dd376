"""GoldenMadam: one weight tensor held only as frozen signs and B-bit codes, updated by the golden kernels."""

from __future__ import annotations

import weakref
from dataclasses import dataclass

import numpy as np

from lnsim import tables
from lnsim.codecs import check_codes, check_sigma_star, decode, encode, grad_to_bits
from lnsim.golden.datapath import decode_bf16, update_inplace
from lnsim.spec import LNSFormat, MadamConfig, Spec
from lnsim.validation import SpecError, check_int

__all__ = ["GoldenMadam", "StepStats"]


@dataclass(frozen=True)
class StepStats:
    """What one step did: NaN gradients (elements left unchanged) and +-Inf gradients (clamped)."""

    nan: int
    inf: int


class GoldenMadam:
    """A tensor of LNS weights and its B-bit Madam optimiser state, bit-true to docs/datapath.md.

    The weights exist only as ``sign`` (uint8, frozen) and ``k`` (``fmt.code_dtype``); ``state`` (uint32)
    holds the second-moment EMA words; ``t`` counts steps. While a :class:`lnsim.golden.FusedMadam` holds the
    tensor, its arrays are views of the fused buffers and only :meth:`FusedMadam.step` steps it (a direct
    :meth:`step` raises :class:`SpecError`).

    Parameters
    ----------
    sign, k : integer arrays of one shape
    spec : Spec
    sigma_star : float
        Per-tensor scale: the weight at k = 0.
    state : uint32 array, optional
        Defaults to zeros (a fresh optimiser).
    t : int
        Steps already taken.
    """

    def __init__(self, sign, k, spec: Spec, sigma_star: float, *, state=None, t: int = 0):
        if not isinstance(spec, Spec):
            raise SpecError(f"spec must be a Spec, not {spec!r}")
        sign, k = check_codes(sign, k, spec.fmt)
        self.spec = spec
        self.sigma_star = check_sigma_star(sigma_star)
        self.sign = np.ascontiguousarray(sign)
        self.sign.flags.writeable = False
        self.k = np.ascontiguousarray(k).copy()
        if state is None:
            state = np.zeros(k.shape, np.uint32)
        state = np.asarray(state)
        if state.shape != k.shape or state.dtype != np.uint32:
            raise SpecError(f"state must be a uint32 array of shape {k.shape}, not {state.dtype} {state.shape}")
        if state.size:
            wm = spec.cfg.state_man_bits
            e, m = state >> np.uint32(wm), state & np.uint32(2**wm - 1)
            bad = (e > spec.state_exp_max) | ((e >= 1) & (m < 2 ** (wm - 1)))
            if bad.any():
                word = int(state[bad].flat[0])
                raise SpecError(
                    f"state must hold valid second-moment words ({spec.cfg.state_bits} bits, mantissa normalised "
                    f"when the exponent is >= 1; docs/datapath.md stage 2), not {word:#x}"
                )
        self.state = np.ascontiguousarray(state).copy()
        self.t = check_int("t", t, 0)
        self._fused_by = None  # a weak reference to the FusedMadam stepping this tensor

    def _stepper(self):
        """The live :class:`lnsim.golden.FusedMadam` that steps this tensor, or None."""
        return None if self._fused_by is None else self._fused_by()

    def __getstate__(self):
        # A copy (pickle, copy.copy, copy.deepcopy) has arrays of its own: no FusedMadam steps it.
        state = {**self.__dict__, "_fused_by": None}
        if self._stepper() is not None:  # the arrays are views of the FusedMadam's buffers
            state.update(sign=self.sign.copy(), k=self.k.copy(), state=self.state.copy())
        return state

    def _fuse(self, owner) -> None:
        """Mark this tensor as stepped by ``owner`` (a FusedMadam) for as long as ``owner`` lives."""
        self._fused_by = weakref.ref(owner)

    @classmethod
    def from_weights(cls, w0, fmt: LNSFormat, cfg: MadamConfig | None = None, sigma_star: float | None = None):
        """Encode float weights ``w0`` to the nearest rungs and start a fresh optimiser.

        ``sigma_star`` defaults to 3 x the RMS of ``w0`` (the authors' ``p_scale``); zero or non-finite
        weights are rejected (see :func:`lnsim.encode`).
        """
        spec = Spec(fmt, cfg if cfg is not None else MadamConfig())
        w0 = np.asarray(w0, dtype=np.float64)
        if sigma_star is None:
            if w0.size == 0:
                raise SpecError("w0 must not be empty when sigma_star is not given")
            sigma_star = 3.0 * float(np.sqrt(np.mean(w0 * w0)))
        sign, k = encode(w0, fmt, sigma_star)
        return cls(sign, k, spec, sigma_star)

    @property
    def shape(self) -> tuple:
        """Shape of the tensor."""
        return self.k.shape

    def step(self, grad, *, eta_rungs: int | None = None) -> StepStats:
        """One B-bit Madam step with float gradients ``grad`` (same shape), quantised to the gradient format.

        ``eta_rungs`` (default: the spec's eta / eta0) sets this step's learning rate in whole rungs.
        """
        grad = np.asarray(grad)
        if grad.shape != self.k.shape:
            raise SpecError(f"grad must have shape {self.k.shape}, not {grad.shape}")
        return self.step_bits(grad_to_bits(grad, self.spec.cfg.grad_format), eta_rungs=eta_rungs)

    def step_bits(self, grad_bits, *, eta_rungs: int | None = None) -> StepStats:
        """One step with gradients given as bit patterns of the gradient format (uint16 or uint32).

        Raises
        ------
        SpecError
            If a :class:`lnsim.golden.FusedMadam` steps this tensor (a direct step would desynchronise its ``t``).
        """
        if self._stepper() is not None:
            raise SpecError("this GoldenMadam is stepped by a FusedMadam: call FusedMadam.step, not GoldenMadam.step")
        log_eta = tables.log_eta_term(self.spec, eta_rungs)
        log_bc = tables.bias_correction_term(self.spec, self.t + 1)
        n_nan, n_inf = update_inplace(
            self.spec, self.sign, self.k, np.ascontiguousarray(grad_bits), self.state, log_eta=log_eta, log_bc=log_bc
        )
        self.t += 1
        return StepStats(nan=n_nan, inf=n_inf)

    def weights(self) -> np.ndarray:
        """The weights as float64: ``(-1)**sign * sigma_star * exp(-k * eta0)``."""
        return decode(self.sign, self.k, self.spec.fmt, self.sigma_star)

    def weights_bf16(self) -> np.ndarray:
        """The weights as the bit-true decoder's bfloat16 values (float32 array)."""
        bits = decode_bf16(self.spec.fmt, self.sign, self.k, self.sigma_star)
        return (bits.astype(np.uint32) << 16).view(np.float32)

    def __repr__(self) -> str:
        return (f"GoldenMadam(shape={self.shape}, {self.spec.fmt.describe()}, sigma_star={self.sigma_star:g}, "
                f"t={self.t})")
