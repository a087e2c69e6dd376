"""The PyTorch side of the trainer: a :class:`~lnsim.train.torch_task.TorchTask` under B-bit Madam
(:class:`lnsim.torch.LNSMadam`), float Madam (:class:`lnsim.torch.Madam`), Adam or SGD.

:func:`lnsim.train.runner.train` calls this module for every configuration but the NumPy MLP; the runs, the
schedule, the history, the checkpoints and the summary are the MLP's. As there, each seed fixes the data split,
the model's initialisation (:func:`~lnsim.train.torch_task.make_task`), the minibatch order of each epoch
(``default_rng([seed, 1, epoch])``) and torch's generator during each epoch (for dropout), so a resumed run
continues bit for bit.

B-bit Madam holds every parameter: weights as they are, biases and other parameters with exact zeros moved to
+-0.01 first (:func:`lnsim.torch.param_groups` with ``small="lns"``), as the MLP trainer trains its biases on
the datapath too.
"""

from __future__ import annotations

import hashlib
import math
import time

import numpy as np
import torch

from lnsim.torch import LNSMadam, Madam, param_groups
from lnsim.train.config import TrainConfig
from lnsim.train.runner import RunState
from lnsim.train.schedule import PlateauSchedule
from lnsim.train.torch_task import TorchTask

__all__ = ["TorchModel", "TorchLNSParams", "TorchFloatParams", "new_run", "restore_run", "train_epoch"]

#: ``TrainConfig.init`` -> :class:`LNSMadam`'s ``init``.
_INITS = {"quantized": "nearest", "uniform-rungs": "uniform-rungs"}


class TorchModel:
    """A run's ``torch.nn.Module`` with what the report asks of a model: ``names`` and :meth:`describe`."""

    def __init__(self, module: torch.nn.Module, summary: str):
        self.module = module
        self.summary = summary
        self.names = [name for name, p in module.named_parameters() if p.requires_grad]

    def describe(self) -> str:
        """``"cnn1d 40-c32-c32-c32-10 (8,042 parameters)"``."""
        n = sum(p.numel() for p in self.module.parameters() if p.requires_grad)
        return f"{self.summary} ({n:,} parameters)"


class TorchLNSParams:
    """B-bit Madam over every parameter of a model; ``tensors`` are their :class:`lnsim.GoldenMadam` (live)."""

    def __init__(self, optimizer: LNSMadam, params: list):
        self.optimizer = optimizer
        self.params = params
        self.nan = 0
        self.inf = 0

    @property
    def tensors(self) -> list:
        """The GoldenMadam of each parameter, in the model's order."""
        return [self.optimizer.golden(p) for p in self.params]

    def saturated(self) -> list[dict]:
        """Per tensor: codes at k = 0 and at k = 2**B - 1, and its size."""
        return [{"k0": int(np.count_nonzero(t.k == 0)), "kmax": int(np.count_nonzero(t.k == t.spec.fmt.code_max)),
                 "size": int(t.k.size)} for t in self.tensors]


class TorchFloatParams:
    """A float optimiser over every parameter of a model, with its state as NumPy arrays for checkpoints."""

    def __init__(self, optimizer: torch.optim.Optimizer, params: list):
        self.optimizer = optimizer
        self.params = params

    def state(self) -> list[dict]:
        """Per parameter: ``w`` (its values) and the optimiser's state (tensors as arrays, numbers as they are)."""
        out = []
        for p in self.params:
            st = {"w": p.detach().numpy().copy()}
            for key, value in self.optimizer.state.get(p, {}).items():
                st[key] = value.detach().numpy().copy() if torch.is_tensor(value) else value
            out.append(st)
        return out

    def load_state(self, states: list[dict]) -> None:
        """Restore :meth:`state` (ValueError, one line, if it does not fit the parameters)."""
        if not isinstance(states, list) or len(states) != len(self.params):
            raise ValueError(f"the checkpoint holds {len(states)} float tensors, not the model's {len(self.params)}")
        for i, (p, st) in enumerate(zip(self.params, states)):
            w = st.get("w")
            if not isinstance(w, np.ndarray) or w.shape != tuple(p.shape):
                raise ValueError(f"float tensor {i}: w must be an array of shape {tuple(p.shape)}")
        with torch.no_grad():
            for p, st in zip(self.params, states):
                p.copy_(torch.from_numpy(np.asarray(st["w"])))
                self.optimizer.state[p] = {k: torch.from_numpy(np.array(v)) if isinstance(v, np.ndarray) else v
                                           for k, v in st.items() if k != "w"}


def _optimizer(config: TrainConfig, module: torch.nn.Module, seed: int):
    spec = config.spec
    if config.lns:
        named, _ = param_groups(module, small="lns", seed=seed)
        opt = LNSMadam(named, spec=spec, sigma_scale=config.sigma_scale, init=_INITS[config.init], seed=seed)
        return TorchLNSParams(opt, [p for _, p in named])
    params = [p for p in module.parameters() if p.requires_grad]
    if config.optimizer == "madam":
        opt = Madam(params, lr=spec.cfg.eta, eta_star=spec.cfg.eta_star, beta=spec.cfg.beta,
                    sigma_scale=config.sigma_scale, bias_correction=spec.cfg.bias_correction)
    elif config.optimizer == "adam":
        opt = torch.optim.Adam(params, lr=config.effective_lr, foreach=True)
    else:
        opt = torch.optim.SGD(params, lr=config.effective_lr, momentum=config.momentum, foreach=True)
    return TorchFloatParams(opt, params)


def new_run(config: TrainConfig, task: TorchTask, seed: int) -> RunState:
    """A fresh run of ``task`` (its model as built by the task) under ``config``'s optimiser."""
    if any(True for _ in task.model.buffers()):
        raise ValueError("the task's model has buffers (BatchNorm statistics, ...): the trainer checkpoints "
                         "parameters and optimiser state only; use a model without buffers")
    module = task.model.float()
    params = _optimizer(config, module, seed)
    schedule = PlateauSchedule(config.spec.eta_rungs, factor=config.decay_factor,
                               patience=config.patience if config.schedule == "plateau" else None,
                               threshold=config.threshold)
    summary = getattr(module, "summary", None) or type(module).__name__
    return RunState(seed=seed, model=TorchModel(module, summary), params=params, schedule=schedule, lns=config.lns)


def restore_run(config: TrainConfig, task: TorchTask, seed: int, raw: dict) -> RunState:
    """The run a checkpoint's ``raw`` run (:func:`lnsim.train.checkpoint.load`) saved, continuing bit for bit."""
    from lnsim.train import checkpoint

    run = new_run(config, task, seed)
    meta = raw["meta"]
    if meta["seed"] != seed:
        raise ValueError(f"checkpoint run for seed {meta['seed']} found where seed {seed} was expected")
    if run.lns:
        opt = run.params.optimizer
        tensors = checkpoint.restore_lns(raw["tensors"], config.spec)
        if len(tensors) != len(run.params.params):
            raise ValueError(f"the checkpoint holds {len(tensors)} tensors, not the model's {len(run.params.params)}")
        sd = opt.state_dict()
        sd["state"] = {i: {"sign": torch.from_numpy(t.sign), "k": torch.from_numpy(t.k),
                           "state": torch.from_numpy(t.state), "sigma_star": t.sigma_star, "step": t.t}
                       for i, t in enumerate(tensors)}
        opt.load_state_dict(sd)
        run.params.nan, run.params.inf = meta["nan"], meta["inf"]
    else:
        run.params.load_state(checkpoint.restore_float(raw["tensors"]))
    run.schedule.load_state(meta["schedule"])
    run.epoch, run.seconds, run.history = meta["epoch"], meta["seconds"], meta["history"]
    return run


def _batches(data, seed: int, epoch: int, batch_size: int):
    if not isinstance(data, tuple):
        yield from data
        return
    X, y = data
    order = torch.from_numpy(np.random.default_rng([seed, 1, epoch]).permutation(len(y)))
    for start in range(0, len(y), batch_size):
        idx = order[start:start + batch_size]
        yield X[idx], y[idx]


def _evaluate(module, task: TorchTask, batch_size: int = 4096) -> float:
    module.eval()
    total, n = 0.0, 0
    with torch.no_grad():
        data = task.test
        batches = ((data[0][i:i + batch_size], data[1][i:i + batch_size]) for i in range(0, len(data[1]), batch_size)) \
            if isinstance(data, tuple) else data
        for xb, yb in batches:
            total += float(task.metric(module(xb), yb)) * len(yb)
            n += len(yb)
    return total / n if n else math.nan


def _set_lr(run: RunState, config: TrainConfig, rungs: int, scale: float) -> None:
    opt = run.params.optimizer
    for group in opt.param_groups:
        if config.optimizer in ("lns-madam", "madam"):
            group["lr"] = rungs * config.spec.fmt.eta0
        else:
            group["lr"] = config.effective_lr * scale


def train_epoch(run: RunState, config: TrainConfig, task: TorchTask) -> None:
    """One pass over the task's training data in minibatches, then the test metric; appends to ``run.history``
    (the same series as the MLP's, :data:`lnsim.train.runner.HISTORY_KEYS`)."""
    t0 = time.perf_counter()
    module, params = run.model.module, run.params
    opt = params.optimizer
    rungs, scale = run.schedule.rungs, run.schedule.scale
    _set_lr(run, config, rungs, scale)
    total, correct, n, nonfinite, skipped = 0.0, 0.0, 0, 0, 0
    digest = hashlib.sha256(f"lnsim-epoch-{run.seed}-{run.epoch}".encode()).hexdigest()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(digest[:15], 16))
        module.train()
        for xb, yb in _batches(task.train, run.seed, run.epoch, config.batch_size):
            opt.zero_grad(set_to_none=True)
            out = module(xb)
            loss = task.loss(out, yb)
            loss.backward()
            m = len(yb)
            total += loss.item() * m
            correct += float(task.metric(out.detach(), yb)) * m
            n += m
            if run.lns:
                opt.step()
                bad = opt.last_stats.nan + opt.last_stats.inf
                params.nan += opt.last_stats.nan
                params.inf += opt.last_stats.inf
                nonfinite += bad
            else:
                bad = sum(int(p.grad.numel() - torch.isfinite(p.grad).sum()) for p in params.params if p.grad is not None)
                if bad:  # a float optimiser would turn every weight it touches into NaN: skip the step, count it
                    nonfinite += bad
                    skipped += 1
                else:
                    opt.step()
    loss = total / n if n else math.nan
    h = run.history
    h["nonfinite_gradients"].append(nonfinite)
    h["skipped_steps"].append(skipped)
    h["train_loss"].append(loss)
    h["train_accuracy"].append(correct / n if n else math.nan)
    h["test_accuracy"].append(_evaluate(module, task))
    h["eta_rungs"].append(rungs)
    run.schedule.update(loss if math.isfinite(loss) else math.inf)
    run.epoch += 1
    run.seconds += time.perf_counter() - t0
