"""What the PyTorch trainer trains: a :class:`TorchTask` (model, data, loss, metric), built in or the user's own.

A user's task is a function named ``module:function`` (an importable module, or a ``path/to/file.py``), called
once per seed as ``function(seed)``, with PyTorch's global generator seeded from ``seed`` first. It returns a
dict:

``model``
    A fresh ``torch.nn.Module`` on the CPU (float32 parameters), taking a batch of inputs to outputs.
``train``, ``test``
    Either a pair of tensors ``(X, y)`` (the trainer shuffles ``train`` into ``--batch-size`` minibatches per
    epoch, by the seed) or an iterable of ``(inputs, targets)`` batches, such as a ``DataLoader``, iterated
    once per epoch as it is.
``loss`` (optional)
    ``loss(outputs, targets) -> scalar tensor``, minimised; default ``torch.nn.functional.cross_entropy``.
``metric`` (optional)
    ``metric(outputs, targets) -> float`` in 0..1, the batch's mean score, higher is better; reported as the
    test accuracy (averaged over samples); default: the share of argmax outputs equal to the targets.
``name`` (optional)
    One line describing the data, for the table.

examples/mnist1d_mlp_task.py is a complete task; docs/torch.md describes the protocol.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import os
import sys
from dataclasses import dataclass

import torch

from lnsim.train.config import TrainConfig
from lnsim.train.data import load_dataset

__all__ = ["TorchTask", "make_task", "load_task_function", "accuracy"]


def accuracy(outputs: torch.Tensor, targets: torch.Tensor) -> float:
    """The share (0..1) of rows of ``outputs`` whose argmax is the target class."""
    return float((outputs.argmax(1) == targets).float().mean())


@dataclass
class TorchTask:
    """A model and its data, ready to train: ``train`` and ``test`` are ``(X, y)`` tensor pairs or iterables of
    batches; ``fingerprint`` is the SHA-256 a checkpoint or a sweep result is tied to."""

    model: torch.nn.Module
    train: object
    test: object
    loss: object
    metric: object
    name: str
    fingerprint: str

    @property
    def n_train(self) -> int | None:
        """Training samples, if the data are tensors."""
        return len(self.train[1]) if isinstance(self.train, tuple) else None


def _seeded(seed: int):
    fork = torch.random.fork_rng(devices=[])
    fork.__enter__()
    torch.manual_seed(int(hashlib.sha256(f"lnsim-torch-{seed}".encode()).hexdigest()[:15], 16))
    return fork


def make_task(config: TrainConfig, seed: int) -> TorchTask:
    """The task of ``config`` for ``seed``: its ``--task`` function's, else the built-in CNN on its data set.

    The model is initialised from a torch generator seeded by ``seed`` alone (the global generator is left as
    it was). Raises ValueError (one line) for a task that breaks the protocol or data a model cannot take.
    """
    fork = _seeded(seed)
    try:
        if config.task is not None:
            return _user_task(config.task, seed)
        return _builtin_task(config, seed)
    finally:
        fork.__exit__(None, None, None)


def _builtin_task(config: TrainConfig, seed: int) -> TorchTask:
    from lnsim.torch.models import build_model

    split = load_dataset(config.dataset, seed=seed, test_size=config.test_size)
    model = build_model(config.model, split.n_features, split.n_classes, config.hidden)
    pair = lambda X, y: (torch.from_numpy(X), torch.from_numpy(y))  # noqa: E731
    return TorchTask(model=model, train=pair(split.X_train, split.y_train), test=pair(split.X_test, split.y_test),
                     loss=torch.nn.functional.cross_entropy, metric=accuracy, name=split.describe(),
                     fingerprint=split.fingerprint())


def load_task_function(task: str):
    """The function a ``module:function`` or ``path/to/file.py:function`` text names; ValueError otherwise."""
    module_name, sep, func = task.rpartition(":")
    if not sep or not module_name or not func.isidentifier():
        raise ValueError(f"task must be module:function or path/to/file.py:function, not {task!r}")
    try:
        if module_name.endswith(".py"):
            if not os.path.isfile(module_name):
                raise ValueError(f"task file {module_name!r} does not exist")
            name = "lnsim_task_" + hashlib.sha256(os.path.abspath(module_name).encode()).hexdigest()[:12]
            module = sys.modules.get(name)
            if module is None:
                spec = importlib.util.spec_from_file_location(name, module_name)
                module = importlib.util.module_from_spec(spec)
                spec.loader.exec_module(module)
                sys.modules[name] = module
        else:
            module = importlib.import_module(module_name)
    except ValueError:
        raise
    except Exception as e:
        raise ValueError(f"task {task!r}: importing {module_name} failed ({type(e).__name__}: {e})") from None
    fn = getattr(module, func, None)
    if not callable(fn):
        raise ValueError(f"task {task!r}: {module_name} has no function {func!r}")
    return fn, getattr(module, "__file__", None)


def _hash_data(h, data) -> None:
    if isinstance(data, tuple):
        for t in data:
            h.update(str(tuple(t.shape)).encode() + str(t.dtype).encode())
            h.update(t.detach().contiguous().cpu().numpy().tobytes())
    else:
        h.update(b"batches")


def _user_task(task: str, seed: int) -> TorchTask:
    fn, path = load_task_function(task)
    got = fn(seed)
    if not isinstance(got, dict):
        raise ValueError(f"task {task!r} must return a dict with model, train and test, not {type(got).__name__}")
    unknown = sorted(set(got) - {"model", "train", "test", "loss", "metric", "name"})
    missing = [k for k in ("model", "train", "test") if k not in got]
    if unknown or missing:
        what = f"missing {', '.join(missing)}" if missing else f"unknown keys {', '.join(unknown)}"
        raise ValueError(f"task {task!r} must return model, train, test and optionally loss, metric, name; {what}")
    if not isinstance(got["model"], torch.nn.Module):
        raise ValueError(f"task {task!r}: model must be a torch.nn.Module, not {type(got['model']).__name__}")
    for key in ("train", "test"):
        data = got[key]
        if isinstance(data, list) and len(data) == 2 and all(torch.is_tensor(t) for t in data):
            got[key] = data = tuple(data)
        if isinstance(data, tuple):
            if len(data) != 2 or not all(torch.is_tensor(t) for t in data) or len(data[0]) != len(data[1]):
                raise ValueError(f"task {task!r}: {key} must be (X, y), two tensors of one length, or an "
                                 f"iterable of batches")
        elif not hasattr(data, "__iter__"):
            raise ValueError(f"task {task!r}: {key} must be (X, y) tensors or an iterable of batches, "
                             f"not {type(data).__name__}")
    for key in ("loss", "metric"):
        if key in got and not callable(got[key]):
            raise ValueError(f"task {task!r}: {key} must be callable(outputs, targets)")
    h = hashlib.sha256(task.encode() + b"\0")
    if path and os.path.isfile(path):
        with open(path, "rb") as f:
            h.update(f.read())
    for key in ("train", "test"):
        _hash_data(h, got[key])
    name = str(got.get("name") or task)
    return TorchTask(model=got["model"], train=got["train"], test=got["test"],
                     loss=got.get("loss", torch.nn.functional.cross_entropy), metric=got.get("metric", accuracy),
                     name=name, fingerprint=h.hexdigest())
