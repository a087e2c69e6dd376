"""The trainable tensors of an MLP under each optimiser: B-bit Madam on codes, or a float reference optimiser.

:class:`LNSParams` holds every tensor only as a :class:`lnsim.GoldenMadam` (frozen signs, B-bit codes, a
per-tensor sigma_star, the second-moment state words): the forward pass sees the bit-true decoder's bfloat16
weights, and every update is ``GoldenMadam.step``. :class:`FloatParams` wraps :mod:`lnsim.reference`'s
Madam, Adam and SGD (float64 arithmetic; the model still runs in float32).

Initialisation (:func:`init_lns`): signs are those of the usual float initialisation drawn from the seed;
sigma_star is ``sigma_scale`` times the usual init's RMS; codes are either the usual init quantised to the
ladder (``"quantized"``) or uniform over the rungs (``"uniform-rungs"``, the paper's way). Either way the codes
spread over at most :data:`INIT_DEPTH` nepers (a dynamic range of about 60): on a longer ladder (16 bits at
eta0 = 0.001 is 65.5 nepers deep) almost every weight would start near zero.
"""

from __future__ import annotations

import copy

import numpy as np

from lnsim import reference
from lnsim.codecs import INIT_DEPTH, encode, init_depth_rungs
from lnsim.golden import FusedMadam, GoldenMadam
from lnsim.spec import Spec
from lnsim.validation import check_choice

__all__ = ["INIT_DEPTH", "INITS", "OPTIMIZERS", "LNSParams", "FloatParams", "init_lns", "init_depth_rungs"]

#: Initialisations of the codes.
INITS = ("quantized", "uniform-rungs")

#: Optimisers by their ``--optimizer`` name.
OPTIMIZERS = ("lns-madam", "madam", "adam", "sgd")


def init_lns(spec: Spec, w0, scales, init: str, sigma_scale: float, rng: np.random.Generator) -> list[GoldenMadam]:
    """One fresh :class:`GoldenMadam` per tensor.

    Parameters
    ----------
    w0 : list of float arrays
        The usual float initialisation (gives the signs, and the codes for ``"quantized"``).
    scales : list of float
        RMS of the usual initialisation per tensor; sigma_star = ``sigma_scale * scale``.
    init : {"quantized", "uniform-rungs"}
    rng : Generator
        Draws the codes for ``"uniform-rungs"``.
    """
    check_choice("init", init, INITS)
    kmax = init_depth_rungs(spec)
    out = []
    for w, scale in zip(w0, scales):
        sigma_star = sigma_scale * scale
        sign, k = encode(w, spec.fmt, sigma_star)
        if init == "uniform-rungs":
            k = rng.integers(0, kmax, size=w.shape, endpoint=True)
        k = np.minimum(k, kmax).astype(spec.fmt.code_dtype)
        out.append(GoldenMadam(sign, k, spec, sigma_star))
    return out


class LNSParams:
    """B-bit Madam over a list of tensors, each a :class:`GoldenMadam`; no float copy of any weight is kept.

    ``params()`` are the bit-true decoder's bfloat16 weights as float32 arrays (:func:`lnsim.golden.decode_bf16`).

    With ``fused=True`` (the default) the tensors step together through one :class:`lnsim.golden.FusedMadam`
    (one compiled call per step: gradient quantisation, the golden update, the decoder), exactly what
    ``GoldenMadam.step`` and ``decode_bf16`` do per tensor. ``fused=False`` calls ``GoldenMadam.step`` on each
    tensor; tests/test_train_optim.py checks the two agree bit for bit.
    """

    def __init__(self, tensors: list[GoldenMadam], *, fused: bool = True):
        self.tensors = tensors
        self.nan = 0
        self.inf = 0
        self._decoded = None
        self.fused = FusedMadam(tensors) if fused and tensors else None

    def params(self) -> list[np.ndarray]:
        """Decoded weights for the forward pass (float32 arrays holding bfloat16 values; fused: rewritten in place
        by the next step)."""
        if self.fused is not None:
            return self.fused.weights
        if self._decoded is None:
            self._decoded = [t.weights_bf16() for t in self.tensors]
        return self._decoded

    def step(self, grads, eta_rungs: int) -> None:
        """One B-bit Madam step of every tensor (gradients enter in the spec's gradient format)."""
        if self.fused is not None:
            st = self.fused.step(grads, eta_rungs)
            self.nan += st.nan
            self.inf += st.inf
        else:
            for tensor, g in zip(self.tensors, grads):
                st = tensor.step(g, eta_rungs=eta_rungs)
                self.nan += st.nan
                self.inf += st.inf
            self._decoded = None

    def saturated(self) -> list[dict]:
        """Per tensor: codes at k = 0 (the largest magnitude, sigma_star) and at k = 2**B - 1 (the smallest)."""
        return [{"k0": int(np.count_nonzero(t.k == 0)), "kmax": int(np.count_nonzero(t.k == t.spec.fmt.code_max)),
                 "size": int(t.k.size)} for t in self.tensors]

    def codes(self) -> list[np.ndarray]:
        """The code arrays (views)."""
        return [t.k for t in self.tensors]


def _reference_optimiser(name: str, w, *, spec: Spec, sigma_star: float, lr: float, momentum: float):
    if name == "madam":
        return reference.Madam(w, eta=spec.cfg.eta, g_bound=spec.clamp_ratio, beta=spec.cfg.beta,
                               sigma_star=sigma_star, bias_correction=spec.cfg.bias_correction)
    if name == "adam":
        return reference.Adam(w, lr=lr)
    return reference.SGD(w, lr=lr, momentum=momentum)


class FloatParams:
    """A float reference optimiser (:mod:`lnsim.reference`) per tensor.

    Madam takes ``eta = rungs * eta0`` with the clamp at the spec's eta_star (as B-bit Madam); Adam and SGD take
    ``lr * scale``. Both go through the optimisers' public setters (``eta``, ``g_bound``, ``lr``), and the state
    of a checkpoint through their ``state_dict()`` / ``load_state_dict()``.
    """

    def __init__(self, name: str, w0, *, spec: Spec, sigma_stars, lr: float, momentum: float):
        self.name = name
        self.spec = spec
        self.lr = lr
        self.tensors = [_reference_optimiser(name, w, spec=spec, sigma_star=s, lr=lr, momentum=momentum)
                        for w, s in zip(w0, sigma_stars)]
        self._decoded = None

    def params(self) -> list[np.ndarray]:
        """The weights as float32 arrays for the forward pass."""
        if self._decoded is None:
            self._decoded = [t.weights().astype(np.float32) for t in self.tensors]
        return self._decoded

    def step(self, grads, eta_rungs: int, scale: float) -> None:
        """One reference step per tensor at the schedule's learning rate."""
        for t, g in zip(self.tensors, grads):
            if self.name == "madam":
                t.eta = eta_rungs * self.spec.fmt.eta0
                t.g_bound = self.spec.eta_star_rungs / eta_rungs
            else:
                t.lr = self.lr * scale
            t.step(g)
        self._decoded = None

    def state(self) -> list[dict]:
        """Each tensor's ``state_dict()`` (NumPy arrays and numbers under the keys :mod:`lnsim.reference`
        documents), for checkpoints."""
        return [t.state_dict() for t in self.tensors]

    def load_state(self, states: list[dict]) -> None:
        """Restore :meth:`state`: one ``state_dict()`` per tensor, all checked before any tensor changes.

        Raises
        ------
        ValueError
            One line, if the number of states is not the number of tensors or a state does not fit its tensor
            (``"adam tensor 2: Adam state w must be a float array of shape (4, 3), not ..."``).
        """
        if not isinstance(states, list) or len(states) != len(self.tensors):
            got = len(states) if isinstance(states, list) else f"a {type(states).__name__}"
            raise ValueError(f"{self.name} state must be a list of {len(self.tensors)} tensor states, not {got}")
        restored = []
        for i, (t, st) in enumerate(zip(self.tensors, states)):
            t = copy.deepcopy(t)
            try:
                t.load_state_dict(st)
            except ValueError as e:
                raise ValueError(f"{self.name} tensor {i}: {e}") from None
            restored.append(t)
        self.tensors = restored
        self._decoded = None
