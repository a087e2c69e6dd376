"""A NumPy multi-layer perceptron in float32: ReLU hidden layers, softmax cross-entropy.

The model holds no weights: every call takes them as a list ``[W0, b0, W1, b1, ...]`` of float32 arrays
(``W`` of shape ``(fan_in, fan_out)``, ``b`` of shape ``(fan_out,)``), so the same code runs on the decoded
weights of B-bit Madam and on the float weights of the baselines.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from lnsim.validation import check_int

__all__ = ["MLP"]


class MLP:
    """Layer sizes and the float32 forward and backward passes.

    Parameters
    ----------
    n_in : int
        Input features.
    hidden : sequence of int
        Width of each hidden (ReLU) layer; may be empty (a linear softmax classifier).
    n_out : int
        Classes.
    """

    def __init__(self, n_in: int, hidden, n_out: int):
        for name, v in (("n_in", n_in), ("n_out", n_out)):
            check_int(name, v, 1)
        hidden = tuple(hidden)
        for h in hidden:
            if isinstance(h, bool) or not isinstance(h, numbers.Integral) or not 1 <= h <= 65536:
                raise ValueError(f"hidden sizes must be integers in 1..65536, not {h!r}")
        self.sizes = (int(n_in), *(int(h) for h in hidden), int(n_out))

    @property
    def shapes(self) -> list[tuple]:
        """Shapes of ``[W0, b0, W1, b1, ...]``."""
        out = []
        for fan_in, fan_out in zip(self.sizes[:-1], self.sizes[1:]):
            out += [(fan_in, fan_out), (fan_out,)]
        return out

    @property
    def names(self) -> list[str]:
        """``["layer0.W", "layer0.b", ...]``."""
        return [f"layer{i // 2}.{'Wb'[i % 2]}" for i in range(2 * (len(self.sizes) - 1))]

    @property
    def fan_ins(self) -> list[int]:
        """The fan-in of the layer each tensor belongs to (the usual init scale is 1/sqrt(fan_in))."""
        return [self.sizes[i // 2] for i in range(2 * (len(self.sizes) - 1))]

    def describe(self) -> str:
        """E.g. ``64-128-10``."""
        return "-".join(str(s) for s in self.sizes)

    def init_float(self, rng: np.random.Generator) -> list[np.ndarray]:
        """The usual initialisation (PyTorch's ``nn.Linear``): weights and biases U(-1/sqrt(fan_in), +1/sqrt(fan_in)).

        Returns float64 arrays; their RMS is :meth:`init_scale`. Zero draws (probability ~0) are nudged to the
        bound, since a multiplicative update cannot move a zero weight.
        """
        out = []
        for shape, fan_in in zip(self.shapes, self.fan_ins):
            bound = 1.0 / math.sqrt(fan_in)
            w = rng.uniform(-bound, bound, size=shape)
            w[w == 0] = bound
            out.append(w)
        return out

    def init_scale(self) -> list[float]:
        """RMS of each tensor's usual initialisation: 1/sqrt(3 * fan_in)."""
        return [1.0 / math.sqrt(3.0 * f) for f in self.fan_ins]

    def logits(self, params, X) -> np.ndarray:
        """Forward pass: float32 logits of shape (n, n_out)."""
        h = X
        n_layers = len(params) // 2
        for i in range(n_layers):
            h = h @ params[2 * i] + params[2 * i + 1]
            if i < n_layers - 1:
                np.maximum(h, 0.0, out=h)
        return h

    def predict(self, params, X) -> np.ndarray:
        """Class indices."""
        return np.argmax(self.logits(params, X), axis=1)

    def loss_and_grads(self, params, X, y):
        """Mean softmax cross-entropy of a batch, its number of correct predictions and the gradients.

        Returns
        -------
        loss : float
        correct : int
        grads : list of float32 arrays, the shapes of ``params``
        """
        n_layers = len(params) // 2
        acts = [X]
        h = X
        for i in range(n_layers):
            h = h @ params[2 * i] + params[2 * i + 1]
            if i < n_layers - 1:
                np.maximum(h, 0.0, out=h)
                acts.append(h)
        n = X.shape[0]
        z = h - h.max(axis=1, keepdims=True)
        e = np.exp(z)
        s = e.sum(axis=1, keepdims=True)
        rows = np.arange(n)
        loss = float(np.mean(np.log(s[:, 0]) - z[rows, y]))
        correct = int(np.count_nonzero(np.argmax(z, axis=1) == y))
        d = e / s
        d[rows, y] -= 1.0
        d *= np.float32(1.0 / n)
        grads = [None] * (2 * n_layers)
        for i in range(n_layers - 1, -1, -1):
            a = acts[i]
            grads[2 * i] = a.T @ d
            grads[2 * i + 1] = d.sum(axis=0)
            if i > 0:
                d = d @ params[2 * i].T
                d[a <= 0] = 0.0
        return loss, correct, grads
