"""Float64 reference optimisers: the baselines B-bit Madam is compared against.

Every optimiser here has the same calling shape::

    opt = Madam(w0, eta=0.01)      # or Adam(w0, lr=...), SGD(w0, lr=...)
    for g in gradients:
        opt.step(g)                # updates the weights in place, returns None
    w = opt.weights()              # float64 copy of the current weights
    opt.t                          # number of steps taken

``w0`` is an array of any shape; it is copied to float64, so the caller's array is never modified.
Hyper-parameters are keyword-only and validated on construction; an invalid one raises
:class:`ValueError` with the message ``"<name> must be <requirement>, not <value!r>"``.

* :class:`Madam` is float Madam exactly as the authors' PyTorch code behaves (Bernstein et al., 2020,
  "Learning compositional functions via multiplicative weight updates"), including its quirks: the
  weight bound is fixed at the first step from the RMS of the initial weights, a 0/0 normalised gradient
  is replaced by 0, and the normalised gradient is clamped to ``g_bound = eta_star / eta``.
* :class:`Adam` and :class:`SGD` follow the update rules of ``torch.optim.Adam`` and ``torch.optim.SGD``
  (L2 weight decay added to the gradient, SGD dampening 0).
"""

from __future__ import annotations

import math
import numbers

import numpy as np

__all__ = ["Madam", "Adam", "SGD"]


# --------------------------------------------------------------------------------------------------
# Validation helpers
# --------------------------------------------------------------------------------------------------


def _is_real(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def _check_positive(name: str, value) -> float:
    """A finite real number > 0."""
    if not (_is_real(value) and math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a finite number > 0, not {value!r}")
    return float(value)


def _check_non_negative(name: str, value) -> float:
    """A finite real number >= 0."""
    if not (_is_real(value) and math.isfinite(value) and value >= 0):
        raise ValueError(f"{name} must be a finite number >= 0, not {value!r}")
    return float(value)


def _check_unit_interval(name: str, value) -> float:
    """A real number in [0, 1) (an exponential-moving-average decay)."""
    if not (_is_real(value) and 0 <= value < 1):
        raise ValueError(f"{name} must be a number in [0, 1), not {value!r}")
    return float(value)


def _check_bool(name: str, value) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be True or False, not {value!r}")
    return bool(value)


def _check_weights(w0) -> np.ndarray:
    """Copy ``w0`` to a fresh float64 array, rejecting non-finite entries."""
    try:
        w = np.array(w0, dtype=np.float64, copy=True)
    except (TypeError, ValueError):
        raise ValueError(f"w0 must be an array of real numbers, not {w0!r}") from None
    bad = int(np.size(w) - np.count_nonzero(np.isfinite(w)))
    if bad:
        raise ValueError(f"w0 must contain only finite numbers, not an array with {bad} non-finite entries")
    return w


# --------------------------------------------------------------------------------------------------
# Shared machinery
# --------------------------------------------------------------------------------------------------


class _Optimiser:
    """Weights, step counter and gradient checking shared by the reference optimisers."""

    def __init__(self, w0) -> None:
        self._w = _check_weights(w0)
        self._t = 0

    @property
    def t(self) -> int:
        """Number of calls to :meth:`step` so far (0 before the first step)."""
        return self._t

    def weights(self) -> np.ndarray:
        """Return the current weights.

        Returns
        -------
        numpy.ndarray
            A float64 copy, of the shape of ``w0``, of the weights after :attr:`t` steps; modifying it
            does not affect the optimiser.
        """
        return self._w.copy()

    def _grad(self, grad) -> np.ndarray:
        """``grad`` as a float64 array of the weights' shape, or ValueError naming ``grad``."""
        try:
            g = np.asarray(grad, dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError(f"grad must be an array of real numbers, not {grad!r}") from None
        if g.shape != self._w.shape:
            raise ValueError(f"grad must have shape {self._w.shape} (the shape of w0), not {g.shape}")
        return g


# --------------------------------------------------------------------------------------------------
# Madam
# --------------------------------------------------------------------------------------------------


class Madam(_Optimiser):
    """Float64 Madam, behaving exactly as the authors' PyTorch implementation.

    Each weight is multiplied by ``exp(-eta * g_normed * sign(w))``, where ``g_normed`` is the gradient
    divided by the root of a bias-corrected exponential moving average of its square, then clamped to
    ``[-g_bound, g_bound]``; the weights are finally clamped to ``[-sigma_star, sigma_star]``. A weight's
    sign therefore never changes, and a zero weight stays zero.

    Parameters
    ----------
    w0 : array_like of float
        Initial weights, any shape; copied to float64. Must be finite, and non-empty when ``sigma_star``
        is None.
    eta : float, default 0.01
        Learning rate: the largest relative change per step is ``exp(eta * g_bound)``.
    g_bound : float, default 8.0
        Clamp on the normalised gradient; ``g_bound = eta_star / eta`` in the paper's notation
        (``eta_star = 8 eta``). With bias correction, ``|g_normed|`` at step ``t`` cannot exceed
        ``sqrt((1 - beta**t) / (1 - beta))``, so the clamp only acts once that exceeds ``g_bound``
        (from step 65 for the defaults) or when ``bias_correction`` is False.
    beta : float, default 0.999
        Decay of the moving average of squared gradients, in [0, 1).
    sigma_star : float or None, default None
        Bound on ``|w|``. None takes ``p_scale * sqrt(mean(w0**2))``, fixed at construction (the PyTorch
        code fixes it at the first step, before any weight has changed, which is the same value).
    p_scale : float, default 3.0
        Multiple of the RMS of ``w0`` used for ``sigma_star`` when it is None.
    bias_correction : bool, default True
        Divide the moving average by ``1 - beta**t`` before taking its root.

    Notes
    -----
    Per step, with ``t`` the new step count and all operations elementwise::

        exp_avg_sq = beta * exp_avg_sq + (1 - beta) * g**2
        g_normed   = g / sqrt(exp_avg_sq / (1 - beta**t))   # no division if bias_correction is False
        g_normed[isnan(g_normed)] = 0                        # 0/0: a zero gradient with no history
        g_normed   = clamp(g_normed, -g_bound, g_bound)
        w          = w * exp(-eta * g_normed * sign(w))
        w          = clamp(w, -sigma_star, sigma_star)

    Non-finite arithmetic is silent, as in PyTorch: a gradient whose square underflows to 0 gives
    ``+-inf``, clamped to ``+-g_bound``; an infinite or NaN gradient makes that weight's moving average
    infinite or NaN, after which its normalised gradient is NaN and replaced by 0 (the weight freezes).
    """

    def __init__(
        self,
        w0,
        *,
        eta: float = 0.01,
        g_bound: float = 8.0,
        beta: float = 0.999,
        sigma_star: float | None = None,
        p_scale: float = 3.0,
        bias_correction: bool = True,
    ) -> None:
        self._eta = _check_positive("eta", eta)
        self._g_bound = _check_positive("g_bound", g_bound)
        self._beta = _check_unit_interval("beta", beta)
        self._p_scale = _check_positive("p_scale", p_scale)
        self._bias_correction = _check_bool("bias_correction", bias_correction)
        if sigma_star is not None:
            sigma_star = _check_positive("sigma_star", sigma_star)
        super().__init__(w0)
        if sigma_star is None:
            if self._w.size == 0:
                raise ValueError(
                    "w0 must be non-empty when sigma_star is None (its RMS sets sigma_star), "
                    f"not an array of shape {self._w.shape}"
                )
            sigma_star = self._p_scale * math.sqrt(float(np.mean(self._w * self._w)))
        self._sigma_star = float(sigma_star)
        self._exp_avg_sq = np.zeros_like(self._w)

    @property
    def sigma_star(self) -> float:
        """The bound on ``|w|`` (the PyTorch code's ``state['max']``)."""
        return self._sigma_star

    @property
    def exp_avg_sq(self) -> np.ndarray:
        """A float64 copy of the moving average of squared gradients (not bias-corrected)."""
        return self._exp_avg_sq.copy()

    def step(self, grad) -> None:
        """Apply one Madam update to the weights, in place.

        Computes, elementwise, ``exp_avg_sq = beta * exp_avg_sq + (1 - beta) * grad**2``, the normalised
        gradient ``grad / sqrt(exp_avg_sq / (1 - beta**t))`` (NaN replaced by 0, clamped to
        ``+-g_bound``), then ``w *= exp(-eta * g_normed * sign(w))`` and clamps ``w`` to
        ``+-sigma_star``; see the class notes.

        Parameters
        ----------
        grad : array_like of float
            Gradient of the loss with respect to the weights, of the shape of ``w0``.

        Raises
        ------
        ValueError
            If ``grad`` does not have the shape of ``w0``.
        """
        g = self._grad(grad)
        self._t += 1
        beta = self._beta
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            self._exp_avg_sq *= beta
            self._exp_avg_sq += (1.0 - beta) * (g * g)
            second = self._exp_avg_sq
            if self._bias_correction:
                second = second / (1.0 - beta**self._t)
            g_normed = g / np.sqrt(second)
        g_normed = np.where(np.isnan(g_normed), 0.0, g_normed)
        g_normed = np.clip(g_normed, -self._g_bound, self._g_bound)
        self._w *= np.exp((-self._eta * g_normed) * np.sign(self._w))
        np.clip(self._w, -self._sigma_star, self._sigma_star, out=self._w)


# --------------------------------------------------------------------------------------------------
# Adam
# --------------------------------------------------------------------------------------------------


class Adam(_Optimiser):
    """Float64 Adam with bias correction, following ``torch.optim.Adam``.

    Parameters
    ----------
    w0 : array_like of float
        Initial weights, any shape; copied to float64. Must be finite.
    lr : float, default 1e-3
        Learning rate, >= 0.
    betas : pair of float, default (0.9, 0.999)
        Decays of the moving averages of the gradient and of its square, each in [0, 1).
    eps : float, default 1e-8
        Added to the bias-corrected root second moment; must be > 0 (unlike PyTorch, 0 is refused
        because a zero gradient would then give 0/0).
    weight_decay : float, default 0.0
        L2 penalty coefficient: ``weight_decay * w`` is added to the gradient (not decoupled as in AdamW).

    Notes
    -----
    Per step, with ``t`` the new step count::

        g          = grad + weight_decay * w
        exp_avg    = beta1 * exp_avg + (1 - beta1) * g
        exp_avg_sq = beta2 * exp_avg_sq + (1 - beta2) * g**2
        denom      = sqrt(exp_avg_sq) / sqrt(1 - beta2**t) + eps
        w          = w - (lr / (1 - beta1**t)) * exp_avg / denom
    """

    def __init__(
        self,
        w0,
        *,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
    ) -> None:
        self._lr = _check_non_negative("lr", lr)
        ok = isinstance(betas, (tuple, list)) and len(betas) == 2 and all(
            _is_real(b) and 0 <= b < 1 for b in betas
        )
        if not ok:
            raise ValueError(f"betas must be a pair of numbers in [0, 1), not {betas!r}")
        self._beta1, self._beta2 = float(betas[0]), float(betas[1])
        self._eps = _check_positive("eps", eps)
        self._weight_decay = _check_non_negative("weight_decay", weight_decay)
        super().__init__(w0)
        self._exp_avg = np.zeros_like(self._w)
        self._exp_avg_sq = np.zeros_like(self._w)

    def step(self, grad) -> None:
        """Apply one Adam update to the weights, in place.

        Adds ``weight_decay * w`` to ``grad``, updates the moving averages of the gradient and of its
        square, and subtracts ``lr / (1 - beta1**t) * exp_avg / (sqrt(exp_avg_sq / (1 - beta2**t)) + eps)``
        from the weights; see the class notes.

        Parameters
        ----------
        grad : array_like of float
            Gradient of the loss with respect to the weights, of the shape of ``w0``.

        Raises
        ------
        ValueError
            If ``grad`` does not have the shape of ``w0``.
        """
        g = self._grad(grad)
        self._t += 1
        if self._weight_decay != 0.0:
            g = g + self._weight_decay * self._w
        b1, b2 = self._beta1, self._beta2
        self._exp_avg *= b1
        self._exp_avg += (1.0 - b1) * g
        self._exp_avg_sq *= b2
        self._exp_avg_sq += (1.0 - b2) * (g * g)
        bias_correction1 = 1.0 - b1**self._t
        bias_correction2 = 1.0 - b2**self._t
        denom = np.sqrt(self._exp_avg_sq) / math.sqrt(bias_correction2) + self._eps
        self._w += -(self._lr / bias_correction1) * (self._exp_avg / denom)


# --------------------------------------------------------------------------------------------------
# SGD
# --------------------------------------------------------------------------------------------------


class SGD(_Optimiser):
    """Float64 stochastic gradient descent, following ``torch.optim.SGD`` with dampening 0.

    Parameters
    ----------
    w0 : array_like of float
        Initial weights, any shape; copied to float64. Must be finite.
    lr : float, default 0.1
        Learning rate, >= 0.
    momentum : float, default 0.0
        Momentum factor, >= 0; 0 disables the momentum buffer.
    nesterov : bool, default False
        Use Nesterov momentum; requires ``momentum > 0``.
    weight_decay : float, default 0.0
        L2 penalty coefficient: ``weight_decay * w`` is added to the gradient.

    Notes
    -----
    Per step::

        d = grad + weight_decay * w
        if momentum != 0:
            buf = d                        # first step
            buf = momentum * buf + d       # later steps
            d   = d + momentum * buf if nesterov else buf
        w = w - lr * d
    """

    def __init__(
        self,
        w0,
        *,
        lr: float = 0.1,
        momentum: float = 0.0,
        nesterov: bool = False,
        weight_decay: float = 0.0,
    ) -> None:
        self._lr = _check_non_negative("lr", lr)
        self._momentum = _check_non_negative("momentum", momentum)
        self._nesterov = _check_bool("nesterov", nesterov)
        if self._nesterov and self._momentum == 0.0:
            raise ValueError(f"momentum must be > 0 when nesterov is True, not {momentum!r}")
        self._weight_decay = _check_non_negative("weight_decay", weight_decay)
        super().__init__(w0)
        self._buf: np.ndarray | None = None

    def step(self, grad) -> None:
        """Apply one SGD update to the weights, in place.

        Adds ``weight_decay * w`` to ``grad``; with momentum, folds it into the momentum buffer
        (initialised to the first such gradient) and steps along the buffer, or along
        ``gradient + momentum * buffer`` for Nesterov; finally subtracts ``lr`` times that direction from
        the weights. See the class notes.

        Parameters
        ----------
        grad : array_like of float
            Gradient of the loss with respect to the weights, of the shape of ``w0``.

        Raises
        ------
        ValueError
            If ``grad`` does not have the shape of ``w0``.
        """
        d = self._grad(grad)
        self._t += 1
        if self._weight_decay != 0.0:
            d = d + self._weight_decay * self._w
        if self._momentum != 0.0:
            if self._buf is None:
                self._buf = d.copy()
            else:
                self._buf *= self._momentum
                self._buf += d
            d = d + self._momentum * self._buf if self._nesterov else self._buf
        self._w += -self._lr * d
