"""Training runs: one configuration, several seeds, per-epoch history, checkpoints and the summary.

Every seed fixes, in one stream each: the stratified data split (``random_state=seed``), the usual float
initialisation (signs of B-bit Madam; starting weights of the baselines), the codes of ``uniform-rungs``, and
the minibatch order of each epoch (``default_rng([seed, 1, epoch])``, so a resumed run sees the same batches).
"""

from __future__ import annotations

import contextlib
import math
import sys
import time
from dataclasses import dataclass, field

import numpy as np

from lnsim.train import checkpoint
from lnsim.train.config import TrainConfig
from lnsim.train.data import Split, load_dataset
from lnsim.train.model import MLP
from lnsim.train.optim import FloatParams, LNSParams, init_lns
from lnsim.train.schedule import PlateauSchedule

__all__ = ["HISTORY_KEYS", "RunState", "train", "train_epoch", "limit_threads", "data_fingerprint"]

#: Per-epoch series in ``RunState.history``. ``nonfinite_gradients``: NaN/Inf gradient elements seen in the epoch;
#: ``skipped_steps``: float-optimiser steps skipped because a gradient was not finite (B-bit Madam never skips:
#: its datapath leaves NaN elements unchanged and clamps Inf, element by element).
HISTORY_KEYS = ("train_loss", "train_accuracy", "test_accuracy", "eta_rungs", "nonfinite_gradients", "skipped_steps")


@dataclass
class RunState:
    """One seed's run: the model, the optimiser's tensors, the schedule and the history so far."""

    seed: int
    model: MLP
    params: object
    schedule: PlateauSchedule
    lns: bool
    epoch: int = 0
    seconds: float = 0.0
    data: str = ""
    history: dict = field(default_factory=lambda: {key: [] for key in HISTORY_KEYS})

    def meta(self) -> dict:
        """JSON-able state besides the tensors (for checkpoints)."""
        nan, inf = (self.params.nan, self.params.inf) if self.lns else (0, 0)
        return {"seed": self.seed, "epoch": self.epoch, "seconds": self.seconds, "history": self.history,
                "schedule": self.schedule.state(), "nan": nan, "inf": inf, "data": self.data}


def _new_run(config: TrainConfig, split: Split, seed: int) -> RunState:
    model = MLP(split.n_features, config.hidden, split.n_classes)
    rng = np.random.default_rng([seed, 0])
    w0 = model.init_float(rng)
    scales = model.init_scale()
    sigma_stars = [config.sigma_scale * s for s in scales]
    spec = config.spec
    if config.lns:
        params = LNSParams(init_lns(spec, w0, scales, config.init, config.sigma_scale, np.random.default_rng([seed, 2])))
    else:
        params = FloatParams(config.optimizer, w0, spec=spec, sigma_stars=sigma_stars, lr=config.effective_lr or 0.0,
                             momentum=config.momentum)
    schedule = PlateauSchedule(spec.eta_rungs, factor=config.decay_factor,
                               patience=config.patience if config.schedule == "plateau" else None,
                               threshold=config.threshold)
    return RunState(seed=seed, model=model, params=params, schedule=schedule, lns=config.lns)


def _restore_run(config: TrainConfig, split: Split, seed: int, raw: dict) -> RunState:
    run = _new_run(config, split, seed)
    meta = raw["meta"]
    if meta["seed"] != seed:
        raise ValueError(f"checkpoint run for seed {meta['seed']} found where seed {seed} was expected")
    if run.lns:
        run.params = LNSParams(checkpoint.restore_lns(raw["tensors"], config.spec))
        run.params.nan, run.params.inf = meta["nan"], meta["inf"]
    else:
        run.params.load_state(checkpoint.restore_float(raw["tensors"]))
    run.schedule.load_state(meta["schedule"])
    run.epoch, run.seconds, run.history = meta["epoch"], meta["seconds"], meta["history"]
    for key in HISTORY_KEYS:  # checkpoints of version 1 lack the non-finite series: not recorded, so None
        run.history.setdefault(key, [None] * run.epoch)
    return run


def _accuracy(model: MLP, params, X, y, batch: int = 4096) -> float:
    correct = 0
    for i in range(0, len(y), batch):
        correct += int(np.count_nonzero(model.predict(params, X[i:i + batch]) == y[i:i + batch]))
    return correct / len(y)


def train_epoch(run: RunState, config: TrainConfig, split: Split) -> None:
    """One pass over the training data in minibatches, then the test accuracy; appends to ``run.history``.

    A float baseline that diverges makes NaN and Inf activations: NumPy's warnings about them are silenced,
    since the epoch counts what they lead to (``nonfinite_gradients``, ``skipped_steps``, a NaN loss), and
    the report says it once.
    """
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        _train_epoch(run, config, split)


def _train_epoch(run: RunState, config: TrainConfig, split: Split) -> None:
    t0 = time.perf_counter()
    X, y = split.X_train, split.y_train
    n = len(y)
    order = np.random.default_rng([run.seed, 1, run.epoch]).permutation(n)
    bs = config.batch_size
    rungs, scale = run.schedule.rungs, run.schedule.scale
    total, correct, nonfinite, skipped = 0.0, 0, 0, 0
    model, params = run.model, run.params
    for start in range(0, n, bs):
        idx = order[start:start + bs]
        loss, c, grads = model.loss_and_grads(params.params(), X[idx], y[idx])
        total += loss * len(idx)
        correct += c
        if run.lns:
            before = params.nan + params.inf
            params.step(grads, rungs)
            nonfinite += params.nan + params.inf - before
        else:
            bad = sum(int(g.size - np.count_nonzero(np.isfinite(g))) for g in grads)
            if bad:  # a float optimiser would turn every weight it touches into NaN: skip the step, count it
                nonfinite += bad
                skipped += 1
            else:
                params.step(grads, rungs, scale)
    loss = total / n
    h = run.history
    h["nonfinite_gradients"].append(nonfinite)
    h["skipped_steps"].append(skipped)
    h["train_loss"].append(loss)
    h["train_accuracy"].append(correct / n)
    h["test_accuracy"].append(_accuracy(model, params.params(), split.X_test, split.y_test))
    h["eta_rungs"].append(rungs)
    run.schedule.update(loss if math.isfinite(loss) else math.inf)
    run.epoch += 1
    run.seconds += time.perf_counter() - t0


@contextlib.contextmanager
def limit_threads(n: int):
    """Within the block, run the golden kernels (Numba), BLAS and (if loaded) PyTorch on at most ``n`` threads.

    The trainer's tensors are small: on a busy machine, waking a second thread per small kernel costs more
    than the kernel.
    """
    import numba

    prev = numba.get_num_threads()
    numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
    torch = sys.modules.get("torch")
    prev_torch = torch.get_num_threads() if torch is not None else None
    if torch is not None:
        torch.set_num_threads(n)
    try:
        try:
            from threadpoolctl import threadpool_limits
        except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn
            limits = contextlib.nullcontext()
        else:
            limits = threadpool_limits(n)
        with limits:
            yield
    finally:
        numba.set_num_threads(prev)
        if torch is not None:
            torch.set_num_threads(prev_torch)


def train(config: TrainConfig, *, split: Split | None = None, resume: dict | None = None, save: str | None = None,
          progress: bool = False, threads: int = 1, log=None, started=None) -> dict:
    """Train every seed of ``config`` for ``config.epochs`` epochs (from a checkpoint if ``resume`` is given).

    Parameters
    ----------
    split : Split, optional
        The MLP's data; by default ``load_dataset(config.dataset, seed=...)`` per seed (the split depends on the
        seed). PyTorch models (``config.uses_torch``) take their task's data
        (:func:`lnsim.train.torch_task.make_task`).
    resume : dict, optional
        A loaded checkpoint (:func:`lnsim.train.checkpoint.load`); its configuration must equal ``config`` but for
        ``epochs``.
    save : str, optional
        Checkpoint path, rewritten after every epoch.
    progress : bool
        Show a tqdm progress bar per seed on stderr (when stderr is a terminal).
    log : callable(str), optional
        Called with ``"seed 0: resuming from epoch 3 of 10"`` for each seed restored from ``resume``.
    started : callable(data, model), optional
        Called once, before the first epoch of the first seed, with the data's description
        (``"digits: 1347 train / 450 test, ..."``) and the model's (``"64-128-10"``): a caller's header comes
        before the training's progress.

    Returns
    -------
    dict with ``config``, ``data`` (description per seed), ``runs`` (list of :class:`RunState`) and ``seconds``.
    """
    if resume is not None:
        _check_resume(config, resume["config"])
        for r in resume["runs"]:
            done = r["meta"]["epoch"]
            if done > config.epochs:
                raise ValueError(f"resume: seed {r['meta']['seed']} of the checkpoint is already at epoch {done}, past "
                                 f"--epochs {config.epochs}; give --epochs {done} or more to continue it")
    backend = _torch_backend(config) if config.uses_torch else _MLP
    raw_runs = {r["meta"]["seed"]: r for r in (resume or {"runs": []})["runs"]}
    runs, data = [], []
    t0 = time.perf_counter()
    with limit_threads(threads):
        for seed in config.seeds:
            s = split if split is not None and not config.uses_torch else backend.load(config, seed)
            if resume is not None and seed in raw_runs:
                if raw_runs[seed]["meta"]["data"] != backend.fingerprint(s):
                    raise ValueError(f"resume: the data of seed {seed} differs from the checkpoint's "
                                     f"(the data set or file changed)")
                run = backend.restore_run(config, s, seed, raw_runs[seed])
                if log is not None:
                    log(f"seed {seed}: resuming from epoch {run.epoch} of {config.epochs}")
            else:
                run = backend.new_run(config, s, seed)
            run.data = backend.fingerprint(s)
            data.append(backend.describe(s))
            runs.append(run)
            if started is not None and len(runs) == 1:
                started(data[0], run.model.describe())
            bar = _progress_bar(config, run, progress)
            try:
                while run.epoch < config.epochs:
                    backend.train_epoch(run, config, s)
                    if save is not None:
                        checkpoint.save(save, config.to_dict(), runs, config.spec)
                    _progress_update(bar, run)
            finally:
                if bar is not None:
                    bar.close()
        if save is not None:
            checkpoint.save(save, config.to_dict(), runs, config.spec)
    return {"config": config, "data": data, "runs": runs, "seconds": time.perf_counter() - t0}


class _Backend:
    """How :func:`train` loads, starts, restores and steps the runs of one kind of model."""

    def __init__(self, load, fingerprint, describe, new_run, restore_run, train_epoch):
        self.load, self.fingerprint, self.describe = load, fingerprint, describe
        self.new_run, self.restore_run, self.train_epoch = new_run, restore_run, train_epoch


_MLP = _Backend(load=lambda config, seed: load_dataset(config.dataset, seed=seed, test_size=config.test_size),
                fingerprint=Split.fingerprint, describe=Split.describe, new_run=_new_run, restore_run=_restore_run,
                train_epoch=train_epoch)


def _torch_backend(config: TrainConfig) -> _Backend:
    """The PyTorch trainer (:mod:`lnsim.train.torch_runner`), or a one-line ValueError saying what to install."""
    try:
        import torch  # noqa: F401
    except ImportError:
        what = f"model {config.model}" if config.task is None else f"task {config.task}"
        raise ValueError(f'{what} trains with PyTorch, which is not installed: pip install "lnsim[torch]"') from None
    from lnsim.train import torch_runner
    from lnsim.train.torch_task import make_task

    return _Backend(load=make_task, fingerprint=lambda task: task.fingerprint, describe=lambda task: task.name,
                    new_run=torch_runner.new_run, restore_run=torch_runner.restore_run,
                    train_epoch=torch_runner.train_epoch)


def data_fingerprint(config: TrainConfig, seed: int) -> str:
    """The SHA-256 of the data seed ``seed`` of ``config`` trains on (a checkpoint or sweep result is tied to it);
    ValueError (one line) for data that cannot be loaded."""
    backend = _torch_backend(config) if config.uses_torch else _MLP
    return backend.fingerprint(backend.load(config, seed))


def _check_resume(config: TrainConfig, saved: dict) -> None:
    now = config.to_dict()
    saved = {"model": "mlp", "task": None, **saved}  # checkpoints from before the CNNs: the MLP
    for key in now:
        if key == "epochs":
            continue
        if key == "spec":
            for name, value in now["spec"].items():
                if saved["spec"].get(name) != value:
                    raise ValueError(f"resume: the checkpoint was saved with {name}={saved['spec'].get(name)!r}, "
                                     f"not {value!r}; repeat the original options")
        elif saved.get(key) != now[key]:
            raise ValueError(f"resume: the checkpoint was saved with {key}={saved.get(key)!r}, not {now[key]!r}; "
                             f"repeat the original options")


def _progress_bar(config: TrainConfig, run: RunState, progress: bool):
    if not progress:
        return None
    from tqdm import tqdm

    # disable=None: a bar on a terminal, nothing when stderr is a file or a CI log.
    return tqdm(total=config.epochs, initial=run.epoch, desc=f"{config.optimizer} seed {run.seed}", unit="epoch",
                leave=True, dynamic_ncols=True, disable=None)


def _progress_update(bar, run: RunState) -> None:
    if bar is None:
        return
    h = run.history
    bar.set_postfix(loss=f"{h['train_loss'][-1]:.4f}", train=f"{100 * h['train_accuracy'][-1]:.1f}%",
                    test=f"{100 * h['test_accuracy'][-1]:.1f}%", eta=f"{h['eta_rungs'][-1]}r", refresh=False,
                    **({"nonfinite": h["nonfinite_gradients"][-1]} if h["nonfinite_gradients"][-1] else {}))
    bar.update(1)
