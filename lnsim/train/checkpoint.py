"""Checkpoints of a training run: one ``.npz`` with the configuration, the full spec and every seed's state.

Layout (``allow_pickle=False`` throughout; text fields are JSON in 0-d unicode arrays)::

    format          "lnsim-train-checkpoint"
    version         1
    config          JSON: TrainConfig.to_dict(), the spec's constructor arguments included
    spec            JSON: Spec.summary(), every derived width (for readers; not used to resume)
    run{r}/meta     JSON: seed, epochs done, history, schedule state, seconds, NaN/Inf counts, data SHA-256
    run{r}/t{i}/packed, sigma_star, state, t         B-bit Madam: sign << bits | k (lnsim.pack), the
                                                     per-tensor scale, second-moment words, step count
    run{r}/t{i}/a/<name>, run{r}/t{i}/scalars        float optimisers: their array and scalar attributes

Seeds not yet started are absent; resuming trains them from scratch.
"""

from __future__ import annotations

import json
import os
import tempfile

import numpy as np

from lnsim.codecs import pack, unpack
from lnsim.golden import GoldenMadam
from lnsim.spec import Spec

__all__ = ["save", "load", "restore_lns", "restore_float", "FORMAT", "VERSION"]

FORMAT = "lnsim-train-checkpoint"
VERSION = 1


def _text(obj) -> np.ndarray:
    return np.array(json.dumps(obj))


def save(path: str, config: dict, runs: list, spec: Spec | None = None) -> None:
    """Write ``config`` and the state of each run (a :class:`lnsim.train.runner.RunState`) atomically to ``path``.

    ``spec``, if given, is also stored as its :meth:`~lnsim.Spec.summary` (every derived width), for readers.
    """
    arrays = {"format": np.array(FORMAT), "version": np.array(VERSION), "config": _text(config)}
    if spec is not None:
        arrays["spec"] = _text(spec.summary())
    for r, run in enumerate(runs):
        p = f"run{r}"
        arrays[f"{p}/meta"] = _text(run.meta())
        if run.lns:
            for i, t in enumerate(run.params.tensors):
                arrays[f"{p}/t{i}/packed"] = pack(t.sign, t.k, t.spec.fmt)
                arrays[f"{p}/t{i}/sigma_star"] = np.array(t.sigma_star)
                arrays[f"{p}/t{i}/state"] = t.state
                arrays[f"{p}/t{i}/t"] = np.array(t.t)
        else:
            for i, st in enumerate(run.params.state()):
                scalars = {}
                for name, value in st.items():
                    if isinstance(value, np.ndarray):
                        arrays[f"{p}/t{i}/a/{name}"] = value
                    else:
                        scalars[name] = value
                arrays[f"{p}/t{i}/scalars"] = _text(scalars)
    directory = os.path.dirname(os.path.abspath(path))
    try:
        fd, tmp = tempfile.mkstemp(suffix=".npz", dir=directory)
    except OSError as e:
        raise ValueError(f"save must be a writable file path, not {path!r} ({e.strerror})") from None
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def load(path: str) -> dict:
    """Read a checkpoint: ``{"config": dict, "runs": [raw run dicts]}``; see :func:`restore_lns` / the runner.

    Raises
    ------
    ValueError
        If the file is missing or is not an lnsim training checkpoint.
    """
    try:
        with np.load(path, allow_pickle=False) as f:
            data = {name: f[name] for name in f.files}
    except FileNotFoundError:
        raise ValueError(f"resume must be an existing checkpoint file, not {path!r} (no such file)") from None
    except (OSError, ValueError) as e:
        raise ValueError(f"resume must be an lnsim train checkpoint (.npz), not {path!r} ({e})") from None
    if str(data.get("format", "")) != FORMAT:
        raise ValueError(f"resume must be an lnsim train checkpoint, not {path!r} (no '{FORMAT}' marker)")
    if int(data["version"]) != VERSION:
        raise ValueError(f"checkpoint {path!r} has version {int(data['version'])}; this lnsim reads version {VERSION}")
    runs = []
    r = 0
    while f"run{r}/meta" in data:
        p = f"run{r}/"
        tensors = {}
        for name, value in data.items():
            if name.startswith(p) and name != p + "meta":
                i, _, field = name[len(p) + 1:].partition("/")
                tensors.setdefault(int(i), {})[field] = value
        runs.append({"meta": json.loads(str(data[p + "meta"])), "tensors": [tensors[i] for i in sorted(tensors)]})
        r += 1
    return {"config": json.loads(str(data["config"])), "runs": runs}


def restore_lns(raw_tensors: list[dict], spec: Spec) -> list[GoldenMadam]:
    """GoldenMadam objects from a run's saved tensors (codes unpacked, state and step count as saved)."""
    out = []
    for raw in raw_tensors:
        sign, k = unpack(raw["packed"], spec.fmt)
        out.append(GoldenMadam(sign, k, spec, float(raw["sigma_star"]), state=raw["state"], t=int(raw["t"])))
    return out


def restore_float(raw_tensors: list[dict]) -> list[dict]:
    """The float optimisers' attribute dicts from a run's saved tensors."""
    out = []
    for raw in raw_tensors:
        st = json.loads(str(raw["scalars"]))
        for name, value in raw.items():
            if name.startswith("a/"):
                st[name[2:]] = value
        out.append(st)
    return out
