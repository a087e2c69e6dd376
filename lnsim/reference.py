"""Float64 reference optimisers: the baselines B-bit Madam is compared against.

Every optimiser here has the same calling shape::

    opt = Madam(w0, eta=0.01)      # or Adam(w0, lr=...), SGD(w0, lr=...)
    for g in gradients:
        opt.step(g)                # updates the weights in place, returns None
    w = opt.weights()              # float64 copy of the current weights
    opt.t                          # number of steps taken
    opt.lr = 1e-4                  # Adam, SGD: the learning rate (Madam: opt.eta, opt.g_bound)
    state = opt.state_dict()       # a plain dict of NumPy arrays and numbers
    opt.load_state_dict(state)     # restores exactly that state

``w0`` is an array of any shape; it is copied to float64, so the caller's array is never modified.
Hyper-parameters are keyword-only and validated on construction, by the learning-rate setters and by
:meth:`~_Optimiser.load_state_dict`; an invalid one raises :class:`lnsim.validation.SpecError` (a
:class:`ValueError`) with the one-line message ``"<name> must be <requirement>, not <value!r>"``.

The keys of :meth:`~_Optimiser.state_dict` are public and listed under "State" in each class: a
checkpoint that stores them does not depend on the classes' private attributes.

* :class:`Madam` is float Madam exactly as the authors' PyTorch code behaves (Bernstein et al., 2020,
  "Learning compositional functions via multiplicative weight updates"), including its quirks: the
  weight bound is fixed at the first step from the RMS of the initial weights, a 0/0 normalised gradient
  is replaced by 0, and the normalised gradient is clamped to ``g_bound = eta_star / eta``.
* :class:`Adam` and :class:`SGD` follow the update rules of ``torch.optim.Adam`` and ``torch.optim.SGD``
  (L2 weight decay added to the gradient, SGD dampening 0).
"""

from __future__ import annotations

import math
import reprlib

import numpy as np

from lnsim.validation import (SpecError, check_bool, check_int, check_interval, check_non_negative, check_positive,
                              is_real)

__all__ = ["Madam", "Adam", "SGD"]


# --------------------------------------------------------------------------------------------------
# Shared machinery
# --------------------------------------------------------------------------------------------------


def _check_weights(w0) -> np.ndarray:
    """Copy ``w0`` to a fresh float64 array, rejecting non-finite entries."""
    try:
        w = np.array(w0, dtype=np.float64, copy=True)
    except (TypeError, ValueError):
        raise SpecError(f"w0 must be an array of real numbers, not {w0!r}") from None
    bad = int(np.size(w) - np.count_nonzero(np.isfinite(w)))
    if bad:
        raise SpecError(f"w0 must contain only finite numbers, not an array with {bad} non-finite entries")
    return w


def _check_decay(name: str, value) -> float:
    """An exponential-moving-average decay: a number in [0, 1)."""
    return check_interval(name, value, 0, 1)


def _check_nesterov(name: str, nesterov: bool, momentum: float, given) -> None:
    """Nesterov momentum needs a momentum factor > 0 (``given`` is the value as the caller gave it)."""
    if nesterov and momentum == 0.0:
        raise SpecError(f"{name} must be > 0 when nesterov is True, not {given!r}")


def _check_state_array(name: str, value, shape: tuple) -> np.ndarray:
    """A fresh float64 copy of ``value`` if it is a NumPy float array of ``shape``, else a SpecError.

    Entries are not required to be finite: a moving average fed an infinite gradient is infinite, and
    such a state must still round-trip.
    """
    if not (isinstance(value, np.ndarray) and value.dtype.kind == "f" and value.shape == shape):
        got = (f"an array of dtype {value.dtype} and shape {value.shape}" if isinstance(value, np.ndarray)
               else reprlib.repr(value))
        raise SpecError(f"{name} must be a float array of shape {shape}, not {got}")
    return value.astype(np.float64)


class _Optimiser:
    """Weights, step counter, gradient checking and the state dict shared by the reference optimisers.

    A subclass lists what its state holds besides ``"w"`` and ``"t"``: ``_MOMENTS`` maps a state key to
    the private attribute holding that moving-average array, ``_OPTIONAL`` names the moments that may be
    None (not yet created: the key is then left out), and ``_HYPER`` maps a state key to the private
    attribute and the check of a hyper-parameter.
    """

    _MOMENTS: dict = {}
    _OPTIONAL: frozenset = frozenset()
    _HYPER: dict = {}

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

    def state_dict(self) -> dict:
        """Return everything the next :meth:`step` depends on, as a plain dict.

        Returns
        -------
        dict
            ``"w"``: the weights (float64 array of the shape of ``w0``); ``"t"``: the step count (int);
            then the class's moving averages (float64 arrays of that shape) and hyper-parameters (float or
            bool), under the keys listed in the class's "State" section. Arrays are copies: the dict does
            not alias the optimiser.
        """
        state = {"w": self._w.copy(), "t": self._t}
        for key, attr in self._MOMENTS.items():
            value = getattr(self, attr)
            if value is not None:
                state[key] = value.copy()
        for key, (attr, _) in self._HYPER.items():
            state[key] = getattr(self, attr)
        return state

    def load_state_dict(self, state: dict) -> None:
        """Replace the optimiser's state by ``state``, a :meth:`state_dict` (of an optimiser of this class
        whose weights have the same shape).

        Every entry is checked before anything changes; arrays are copied to float64.

        Raises
        ------
        SpecError
            If ``state`` is not a dict with exactly the class's keys, an array is not a NumPy float array of
            the weights' shape, ``t`` is not an integer >= 0 or a hyper-parameter fails the constructor's
            check. The one-line message names the class and the key (``"Adam state lr must be a finite
            number >= 0, not -1.0"``); the optimiser is then unchanged.
        """
        cls = type(self).__name__
        if not isinstance(state, dict):
            raise SpecError(f"{cls} state must be a dict, not {reprlib.repr(state)}")
        keys = ["w", "t", *self._MOMENTS, *self._HYPER]
        missing = [key for key in keys if key not in state and key not in self._OPTIONAL]
        unknown = [key for key in state if key not in keys]
        if missing or unknown:
            wrong = [f"without {key!r}" for key in missing] + [f"with the unknown key {key!r}" for key in unknown]
            raise SpecError(f"{cls} state must have the keys {', '.join(keys)}, not a dict {' and '.join(wrong)}")
        new = {"_w": _check_state_array(f"{cls} state w", state["w"], self._w.shape),
               "_t": check_int(f"{cls} state t", state["t"], 0)}
        for key, attr in self._MOMENTS.items():
            new[attr] = _check_state_array(f"{cls} state {key}", state[key], self._w.shape) if key in state else None
        for key, (attr, check) in self._HYPER.items():
            new[attr] = check(f"{cls} state {key}", state[key])
        self._check_state(cls, new)
        for attr, value in new.items():
            setattr(self, attr, value)

    def _check_state(self, cls: str, new: dict) -> None:
        """Checks across entries of a state being loaded (``new`` maps private attributes to values)."""

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

    State
    -----
    :meth:`state_dict` holds ``w``, ``t``, ``exp_avg_sq`` (arrays and the step count) and ``eta``,
    ``g_bound``, ``beta``, ``sigma_star``, ``bias_correction``. ``p_scale`` is not kept: it only sets
    ``sigma_star`` at construction.
    """

    _MOMENTS = {"exp_avg_sq": "_exp_avg_sq"}
    _HYPER = {"eta": ("_eta", check_positive), "g_bound": ("_g_bound", check_positive), "beta": ("_beta", _check_decay),
              "sigma_star": ("_sigma_star", check_positive), "bias_correction": ("_bias_correction", check_bool)}

    def __init__(self, w0, *, eta: float = 0.01, g_bound: float = 8.0, beta: float = 0.999,
                 sigma_star: float | None = None, p_scale: float = 3.0, bias_correction: bool = True) -> None:
        self.eta = eta
        self.g_bound = g_bound
        self._beta = _check_decay("beta", beta)
        self._p_scale = check_positive("p_scale", p_scale)
        self._bias_correction = check_bool("bias_correction", bias_correction)
        if sigma_star is not None:
            sigma_star = check_positive("sigma_star", sigma_star)
        super().__init__(w0)
        if sigma_star is None:
            if self._w.size == 0:
                raise SpecError("w0 must be non-empty when sigma_star is None (its RMS sets sigma_star), "
                                f"not an array of shape {self._w.shape}")
            sigma_star = self._p_scale * math.sqrt(float(np.mean(self._w * self._w)))
        self._sigma_star = float(sigma_star)
        self._exp_avg_sq = np.zeros_like(self._w)

    @property
    def eta(self) -> float:
        """The learning rate: a weight's largest relative change per step is ``exp(eta * g_bound)``.

        Settable between steps (a schedule) to a finite number > 0; anything else raises SpecError.
        """
        return self._eta

    @eta.setter
    def eta(self, value) -> None:
        self._eta = check_positive("eta", value)

    @property
    def g_bound(self) -> float:
        """The clamp on the normalised gradient (``eta_star / eta``); settable to a finite number > 0."""
        return self._g_bound

    @g_bound.setter
    def g_bound(self, value) -> None:
        self._g_bound = check_positive("g_bound", value)

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


class _Additive(_Optimiser):
    """An optimiser that subtracts ``lr`` times a direction from the weights (Adam, SGD)."""

    @property
    def lr(self) -> float:
        """The learning rate; settable between steps (a schedule) to a finite number >= 0, anything else
        raises SpecError."""
        return self._lr

    @lr.setter
    def lr(self, value) -> None:
        self._lr = check_non_negative("lr", value)


class Adam(_Additive):
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

    State
    -----
    :meth:`state_dict` holds ``w``, ``t``, ``exp_avg``, ``exp_avg_sq`` (arrays and the step count) and
    ``lr``, ``beta1``, ``beta2``, ``eps``, ``weight_decay``.
    """

    _MOMENTS = {"exp_avg": "_exp_avg", "exp_avg_sq": "_exp_avg_sq"}
    _HYPER = {"lr": ("_lr", check_non_negative), "beta1": ("_beta1", _check_decay), "beta2": ("_beta2", _check_decay),
              "eps": ("_eps", check_positive), "weight_decay": ("_weight_decay", check_non_negative)}

    def __init__(self, w0, *, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0) -> None:
        self.lr = lr
        if not (isinstance(betas, (tuple, list)) and len(betas) == 2 and all(is_real(b) and 0 <= b < 1 for b in betas)):
            raise SpecError(f"betas must be a pair of numbers in [0, 1), not {betas!r}")
        self._beta1, self._beta2 = float(betas[0]), float(betas[1])
        self._eps = check_positive("eps", eps)
        self._weight_decay = check_non_negative("weight_decay", weight_decay)
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


class SGD(_Additive):
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

    State
    -----
    :meth:`state_dict` holds ``w``, ``t``, ``momentum_buffer`` (arrays and the step count; the buffer only
    once a step with momentum has created it) and ``lr``, ``momentum``, ``nesterov``, ``weight_decay``.
    """

    _MOMENTS = {"momentum_buffer": "_buf"}
    _OPTIONAL = frozenset({"momentum_buffer"})
    _HYPER = {"lr": ("_lr", check_non_negative), "momentum": ("_momentum", check_non_negative),
              "nesterov": ("_nesterov", check_bool), "weight_decay": ("_weight_decay", check_non_negative)}

    def __init__(self, w0, *, lr: float = 0.1, momentum: float = 0.0, nesterov: bool = False,
                 weight_decay: float = 0.0) -> None:
        self.lr = lr
        self._momentum = check_non_negative("momentum", momentum)
        self._nesterov = check_bool("nesterov", nesterov)
        _check_nesterov("momentum", self._nesterov, self._momentum, momentum)
        self._weight_decay = check_non_negative("weight_decay", weight_decay)
        super().__init__(w0)
        self._buf: np.ndarray | None = None

    def _check_state(self, cls: str, new: dict) -> None:
        _check_nesterov(f"{cls} state momentum", new["_nesterov"], new["_momentum"], new["_momentum"])

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
