"""LNSMadam: B-bit Madam as a ``torch.optim.Optimizer``, every update through the golden kernels.

Each parameter lives only as frozen signs, B-bit codes, second-moment state words and a per-tensor
sigma_star, held by a :class:`lnsim.GoldenMadam`; the tensors of one param group step together through one
:class:`lnsim.golden.FusedMadam` (one compiled call per group and step). After construction and after every
step, ``p.data`` holds the bit-true decoder's bfloat16 weights, so forward and backward run as usual. For
float32 parameters ``p.data`` *is* the fused buffer the decoder writes (no copy); other dtypes get a copy.
docs/torch.md describes the API, the rounding of ``lr`` to rungs and the state.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from lnsim.codecs import encode, init_depth_rungs
from lnsim.golden import FusedMadam, GoldenMadam, StepStats
from lnsim.spec import SPEC_OPTIONS, Spec
from lnsim.validation import SpecError, check_choice, check_int, check_positive, is_real

__all__ = ["INITS", "LNSMadam", "eta_rungs_for"]

#: Initialisations of the codes: encode the current weights, or draw codes uniformly over the rungs.
INITS = ("nearest", "uniform-rungs")

#: Keywords a param group may set besides ``params`` and ``lr``: the spec, its options and the init.
_SPEC_NAMES = tuple(o.name for o in SPEC_OPTIONS) + ("dynamic_range",)
_GROUP_NAMES = ("spec", "sigma_scale", "init") + _SPEC_NAMES

#: Parameter dtypes that hold every bfloat16 weight exactly (float16 does not: its range is too narrow).
_DTYPES = (torch.float32, torch.bfloat16, torch.float64)

#: State tensors of a parameter, as stored in ``optimizer.state[p]``, and their NumPy dtypes.
_STATE_DTYPES = {"sign": np.uint8, "state": np.uint32}


def eta_rungs_for(lr, spec: Spec) -> int:
    """The step's learning rate in whole rungs: ``lr / eta0`` rounded to the nearest integer (halves to
    even), at least 1 and at most ``spec.eta_star_rungs``.

    ``lr`` is eta in nepers (``group["lr"]``); a SpecError names it if it is not a finite number > 0.
    """
    if not is_real(lr) or not math.isfinite(lr) or lr <= 0:
        raise SpecError(f"lr must be a finite number > 0 (eta in nepers), not {lr!r}")
    return int(min(max(round(float(lr) / spec.fmt.eta0), 1), spec.eta_star_rungs))


class LNSMadam(torch.optim.Optimizer):
    """B-bit Madam (Bernstein et al. 2020) on LNS weights, bit-true to the golden model (docs/datapath.md).

    Parameters
    ----------
    params : iterable
        Tensors, ``(name, tensor)`` pairs (``model.named_parameters()``; errors then name the parameter) or
        param-group dicts. A group may set ``lr``, ``spec``, any spec option, ``sigma_scale`` and ``init``.
    spec : Spec, optional
        The datapath of every group that does not name its own; else built by
        ``Spec.from_options(**spec_options)``.
    lr : float, optional
        Every group's starting ``lr`` (eta in nepers); default: the group's spec's eta. Each step rounds it to
        whole rungs (:func:`eta_rungs_for`), so ``torch.optim.lr_scheduler`` schedulers work. It does not
        change the spec (its eta_star stays); give ``eta=`` to move both.
    sigma_scale : float
        sigma_star of a tensor (its largest weight, the weight at k = 0) is ``sigma_scale`` x the tensor's RMS
        at construction (the authors' ``p_scale``).
    init : {"nearest", "uniform-rungs"}
        ``"nearest"`` encodes the current weights to their nearest rungs; ``"uniform-rungs"`` (the paper's)
        keeps their signs and draws codes uniformly over 0..:func:`lnsim.codecs.init_depth_rungs`.
    seed : int
        Seeds the codes of ``"uniform-rungs"`` (one stream over all parameters, in group order).
    **spec_options
        Keywords of :meth:`Spec.from_options` (``bits``, ``eta0``, ``eta``, ``grad_format``, ...).

    A parameter with a zero or non-finite element, a dtype other than float32, bfloat16 or float64, or a
    device other than the CPU is refused at construction with one line naming it. A group whose parameters
    all have ``grad`` None is skipped by a step; within a stepped group a parameter without a gradient steps
    with a zero gradient (its second moment decays, its code stays).
    """

    def __init__(self, params, *, spec: Spec | None = None, lr: float | None = None, sigma_scale: float = 3.0,
                 init: str = "nearest", seed: int = 0, **spec_options):
        for name in spec_options:
            if name not in _SPEC_NAMES:
                raise SpecError(f"LNSMadam option must be one of spec, lr, sigma_scale, init, seed, "
                                f"{', '.join(_SPEC_NAMES)}, not {name!r}")
        if spec is not None and not isinstance(spec, Spec):
            raise SpecError(f"spec must be a Spec or None, not {spec!r}")
        if spec is not None and any(v is not None for v in spec_options.values()):
            raise SpecError(f"give spec or spec options ({', '.join(spec_options)}), not both")
        self._spec = spec
        self._spec_options = {k: v for k, v in spec_options.items() if v is not None}
        self._lr = None if lr is None else check_positive("lr", lr)
        self._sigma_scale = check_positive("sigma_scale", sigma_scale)
        self._init = check_choice("init", init, INITS)
        self._rng = np.random.default_rng(check_int("seed", seed, 0))
        self._tensors = {}  # parameter -> its GoldenMadam
        self._fused = []  # per group: FusedMadam
        self._plans = []  # per group, per parameter: (p, its gradient view, its weights view, its state)
        #: NaN and +-Inf gradient elements of the last step, and over all steps.
        self.last_stats = StepStats(nan=0, inf=0)
        self.total_stats = StepStats(nan=0, inf=0)
        super().__init__(params, {})

    # -- groups ------------------------------------------------------------------------------------------

    def add_param_group(self, param_group: dict) -> None:
        """Add a param group: its spec is resolved, its parameters encoded and fused (see the class doc)."""
        if not isinstance(param_group, dict):
            raise TypeError(f"param_group must be a dict, not {type(param_group).__name__}")
        index = len(self.param_groups)
        for key in param_group:
            if key not in ("params", "lr", "param_names") + _GROUP_NAMES:
                raise SpecError(f"param group {index}: key must be one of params, lr, "
                                f"{', '.join(_GROUP_NAMES)}, not {key!r}")
        spec = self._group_spec(param_group, index)
        group = dict(param_group)
        group["spec"] = spec
        group.setdefault("sigma_scale", self._sigma_scale)
        group.setdefault("init", self._init)
        lr = group.get("lr", self._lr)
        group["lr"] = spec.cfg.eta if lr is None else lr
        eta_rungs_for(group["lr"], spec)
        super().add_param_group(group)
        group = self.param_groups[-1]
        sigma_scale = check_positive("sigma_scale", group["sigma_scale"])
        init = check_choice("init", group["init"], INITS)
        tensors = [self._encode(p, spec, sigma_scale, init, self._describe(group, index, j))
                   for j, p in enumerate(group["params"])]
        self._attach(group, tensors)

    def _group_spec(self, group: dict, index: int) -> Spec:
        own = {k: v for k, v in group.items() if k in _SPEC_NAMES and v is not None}
        if group.get("spec") is not None:
            if not isinstance(group["spec"], Spec):
                raise SpecError(f"param group {index}: spec must be a Spec, not {group['spec']!r}")
            if own:
                raise SpecError(f"param group {index}: give spec or spec options ({', '.join(own)}), not both")
            return group["spec"]
        if not own:
            return self._spec if self._spec is not None else Spec.from_options(**self._spec_options)
        base = self._spec_options if self._spec is None else {
            k: v for k, v in self._spec.to_dict().items() if v is not None}
        try:
            return Spec.from_options(**(base | own))
        except SpecError as e:
            raise SpecError(f"param group {index}: {e}") from None

    @staticmethod
    def _describe(group: dict, index: int, j: int) -> str:
        names = group.get("param_names")
        return f"parameter {names[j]!r}" if names else f"param group {index} parameter {j}"

    def _encode(self, p: torch.Tensor, spec: Spec, sigma_scale: float, init: str, what: str) -> GoldenMadam:
        if p.device.type != "cpu":
            raise SpecError(f"{what} is on {p.device}: LNSMadam steps CPU tensors only (move the model with .cpu())")
        if p.dtype not in _DTYPES:
            raise SpecError(f"{what} has dtype {p.dtype}: LNSMadam needs float32, bfloat16 or float64 "
                            f"(they hold every bfloat16 weight exactly)")
        if p.numel() == 0:
            raise SpecError(f"{what} is empty")
        w = p.detach().to(torch.float64).numpy()
        bad = ~np.isfinite(w) | (w == 0)
        if bad.any():
            raise SpecError(f"{what} has {int(bad.sum())} zero or non-finite elements of {w.size}: Madam never moves "
                            f"a zero weight; train it with a float optimiser or start it away from zero "
                            f"(lnsim.torch.param_groups)")
        sigma_star = sigma_scale * float(np.sqrt(np.mean(w * w)))
        sign, k = encode(w, spec.fmt, sigma_star)
        if init == "uniform-rungs":
            k = self._rng.integers(0, init_depth_rungs(spec), size=w.shape, endpoint=True).astype(spec.fmt.code_dtype)
        return GoldenMadam(sign, k, spec, sigma_star)

    def _attach(self, group: dict, tensors: list[GoldenMadam]) -> None:
        """Fuse a group's tensors, point each parameter's state and data at the fused buffers.

        Also builds the group's stepping plan: per parameter, the torch view of its slice of the fused
        gradient buffer (where ``step`` copies a ``p.grad`` it cannot read in place) and, unless ``p.data`` is the fused
        weights buffer itself, the torch view of its decoded weights to copy out.
        """
        fused = FusedMadam(tensors, parallel=True)
        self._fused.append(fused)
        plan = []
        for p, t, w, g in zip(group["params"], tensors, fused.weights, fused.grads):
            self._tensors[p] = t
            self.state[p] = {"sign": torch.from_numpy(t.sign.copy()), "k": torch.from_numpy(t.k),
                             "state": torch.from_numpy(t.state), "sigma_star": t.sigma_star, "step": t.t}
            w = torch.from_numpy(w)
            if p.dtype == torch.float32 and p.is_contiguous():
                p.data = w
            else:
                p.data.copy_(w)
            plan.append((p, torch.from_numpy(g), w, self.state[p]))
        self._plans.append(plan)

    # -- stepping ----------------------------------------------------------------------------------------

    def eta_rungs(self, group: dict) -> int:
        """This step's learning rate of ``group`` in whole rungs (:func:`eta_rungs_for` of ``group["lr"]``)."""
        return eta_rungs_for(group["lr"], group["spec"])

    @torch.no_grad()
    def step(self, closure=None):
        """One B-bit Madam step of every group with a gradient; returns the closure's loss (if given).

        One compiled call steps each group. A large group (2**15 elements or more) runs over Numba's threads
        (:meth:`lnsim.golden.FusedMadam.step_from`) and reads a contiguous float32 ``p.grad`` where it lies;
        other gradients, and all of a small group's, are copied once, converted to float32 by ``copy_``, into
        the group's fused gradient buffer (``None`` as zeros).
        """
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        nan = inf = 0
        for index, (group, fused, plan) in enumerate(zip(self.param_groups, self._fused, self._plans)):
            if all(p.grad is None for p in group["params"]):
                continue
            eta_rungs = self.eta_rungs(group)
            # A small group's gradients are cheaper to copy (they stay in cache) than to hand over one by one.
            large = fused._threads
            grads = []
            for j, (p, g_view, _, _) in enumerate(plan):
                g = p.grad
                if g is None:
                    g_view.zero_()
                elif g.layout is not torch.strided or g.device.type != "cpu":
                    raise SpecError(f"{self._describe(group, index, j)}: its gradient must be a "
                                    f"dense CPU tensor, not {g.layout} on {g.device}")
                elif large and g.dtype == torch.float32 and g.is_contiguous() and not g.requires_grad:
                    grads.append(g.numpy())  # read in place by the compiled step
                    continue
                else:
                    g_view.copy_(g)
                grads.append(None)
            stats = fused.step_from(grads, eta_rungs) if large else fused.step(None, eta_rungs)
            nan += stats.nan
            inf += stats.inf
            t = fused.t
            for p, _, w, state in plan:
                state["step"] = t
                if p.data.data_ptr() != w.data_ptr():
                    p.data.copy_(w)
        self.last_stats = StepStats(nan=nan, inf=inf)
        self.total_stats = StepStats(nan=self.total_stats.nan + nan, inf=self.total_stats.inf + inf)
        return loss

    # -- inspection --------------------------------------------------------------------------------------

    def codes(self, p: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """``(sign, k)`` of parameter ``p`` as NumPy arrays (copies): sign uint8 (1 = negative), k the codes."""
        t = self._tensor(p)
        return t.sign.copy(), t.k.copy()

    def spec_for(self, p: torch.Tensor) -> Spec:
        """The :class:`Spec` parameter ``p`` is stepped with."""
        return self._tensor(p).spec

    def golden(self, p: torch.Tensor) -> GoldenMadam:
        """The :class:`lnsim.GoldenMadam` holding parameter ``p`` (its arrays are the optimiser's live state)."""
        return self._tensor(p)

    def _tensor(self, p) -> GoldenMadam:
        t = self._tensors.get(p)
        if t is None:
            raise SpecError("p must be a parameter of this optimiser")
        return t

    # -- state -------------------------------------------------------------------------------------------

    def state_dict(self) -> dict:
        """The state as torch's optimisers give it; each group's ``spec`` as :meth:`Spec.to_dict` (plain values,
        so ``torch.load(weights_only=True)`` reads it), each parameter's ``sign``, ``k`` and ``state`` as
        integer tensors, ``sigma_star`` a float and ``step`` an int."""
        sd = super().state_dict()
        for g in sd["param_groups"]:
            g["spec"] = g["spec"].to_dict()
        sd["state"] = {i: {k: (v.clone() if torch.is_tensor(v) else v) for k, v in s.items()}
                       for i, s in sd["state"].items()}
        return sd

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore :meth:`state_dict`: codes, signs, state words, sigma_star and step exactly, and each group's
        spec, lr and options; then ``p.data`` holds the restored weights. Checked before anything changes."""
        groups = state_dict.get("param_groups") if isinstance(state_dict, dict) else None
        if not isinstance(groups, list) or len(groups) != len(self.param_groups):
            raise SpecError(f"state_dict must hold {len(self.param_groups)} param groups, as this optimiser has")
        saved = dict(state_dict, param_groups=[dict(g, spec=Spec.from_dict(g["spec"])) for g in groups])
        tensors = []
        for gi, (g, mine) in enumerate(zip(saved["param_groups"], self.param_groups)):
            if len(g["params"]) != len(mine["params"]):
                raise SpecError(f"state_dict param group {gi} has {len(g['params'])} parameters, not "
                                f"{len(mine['params'])}")
            row = []
            for j, (pid, p) in enumerate(zip(g["params"], mine["params"])):
                s = saved["state"].get(pid)
                what = self._describe(mine, gi, j)
                if not isinstance(s, dict) or not {"sign", "k", "state", "sigma_star", "step"} <= set(s):
                    raise SpecError(f"state_dict has no LNSMadam state (sign, k, state, sigma_star, step) for {what}")
                try:
                    row.append(self._restore(s, g["spec"], tuple(p.shape)))
                except SpecError as e:
                    raise SpecError(f"state_dict {what}: {e}") from None
            tensors.append(row)
        # Replaces self.state with torch's copy; the fused buffers are rebuilt from it below.
        super().load_state_dict(saved)
        self._fused = []
        self._plans = []
        self._tensors = {}
        for group, row in zip(self.param_groups, tensors):
            self._attach(group, row)

    @staticmethod
    def _restore(s: dict, spec: Spec, shape: tuple) -> GoldenMadam:
        arrays = {}
        dtypes = dict(_STATE_DTYPES, k=spec.fmt.code_dtype)
        for key, dtype in dtypes.items():
            v = s[key]
            a = v.detach().cpu().numpy() if torch.is_tensor(v) else None
            if a is None or a.dtype != np.dtype(dtype) or a.shape != shape:
                got = f"{a.dtype} {a.shape}" if a is not None else type(v).__name__
                raise SpecError(f"{key} must be a {np.dtype(dtype)} tensor of shape {shape}, not {got}")
            arrays[key] = a
        return GoldenMadam(arrays["sign"], arrays["k"], spec, s["sigma_star"], state=arrays["state"],
                           t=check_int("step", s["step"], 0))
