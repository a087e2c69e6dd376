"""Checkpoints of a training run: one ``.npz`` with the configuration, the full spec and every seed's state.

Layout (``allow_pickle=False`` throughout; text fields are JSON in 0-d unicode arrays)::

    format          "lnsim-train-checkpoint"
    version         3
    checksum        SHA-256 (hex) over every other member: name, dtype, shape and bytes, in name order
    config          JSON: TrainConfig.to_dict(), the spec's constructor arguments included
    spec            JSON: lnsim.tables.spec_summary(spec), every derived width (for readers; not used to resume)
    run{r}/meta     JSON: seed, epochs done, history, schedule state, seconds, NaN/Inf counts, data SHA-256
    run{r}/t{i}/packed, sigma_star, state, t         B-bit Madam: sign << bits | k (lnsim.pack), the
                                                     per-tensor scale, second-moment words, step count
    run{r}/t{i}/a/<key>, run{r}/t{i}/scalars         float optimisers: their state_dict() (lnsim.reference's
                                                     documented keys), arrays as members, numbers as JSON

Seeds not yet started are absent; resuming trains them from scratch.

Versions: 1 had no checksum; 1 and 2 stored a float optimiser's private attributes (``_w``, ``_exp_avg_sq``,
...), which :func:`load` renames to the state_dict() keys (``w``, ``exp_avg_sq``, ...); 3 stores those keys.

Writes are atomic: the file is written and flushed to disk under a temporary name in the same directory, then
renamed over ``path``, so an interrupted save leaves the previous checkpoint whole. Loading checks the marker,
the version (1, 2 and 3 are read) and the checksum before anything is restored; a truncated, altered or foreign
file is a one-line ``ValueError``.
"""

from __future__ import annotations

import hashlib
import json

import numpy as np

from lnsim import tables
from lnsim.codecs import pack, unpack
from lnsim.files import atomic_write, read_npz
from lnsim.golden import GoldenMadam
from lnsim.spec import Spec

__all__ = ["save", "load", "checksum", "restore_lns", "restore_float", "FORMAT", "VERSION", "READABLE_VERSIONS"]

FORMAT = "lnsim-train-checkpoint"
VERSION = 3
#: Versions :func:`load` reads (version 1 had no checksum; 1 and 2 named float state by private attributes).
READABLE_VERSIONS = (1, 2, 3)
#: Versions 1 and 2: a float optimiser's private attribute -> its state_dict() key (None: not state, dropped).
_ATTRIBUTE_KEYS = {
    "_w": "w", "_t": "t", "_exp_avg": "exp_avg", "_exp_avg_sq": "exp_avg_sq", "_buf": "momentum_buffer",
    "_eta": "eta", "_g_bound": "g_bound", "_beta": "beta", "_sigma_star": "sigma_star",
    "_bias_correction": "bias_correction", "_p_scale": None, "_lr": "lr", "_beta1": "beta1", "_beta2": "beta2",
    "_eps": "eps", "_weight_decay": "weight_decay", "_momentum": "momentum", "_nesterov": "nesterov",
}


def _text(obj) -> np.ndarray:
    return np.array(json.dumps(obj))


def checksum(arrays: dict) -> str:
    """SHA-256 (hex) of a checkpoint's members but ``checksum``: each name, dtype, shape and bytes, in name order."""
    h = hashlib.sha256()
    for name in sorted(arrays):
        if name == "checksum":
            continue
        a = np.ascontiguousarray(arrays[name])
        h.update(f"{name}\0{a.dtype.str}\0{a.shape}\0".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def save(path: str, config: dict, runs: list, spec: Spec | None = None) -> None:
    """Write ``config`` and the state of each run (a :class:`lnsim.train.runner.RunState`) atomically to ``path``.

    ``spec``, if given, is also stored as its :meth:`~lnsim.Spec.summary` (every derived width), for readers.
    """
    arrays = {"format": np.array(FORMAT), "version": np.array(VERSION), "config": _text(config)}
    if spec is not None:
        arrays["spec"] = _text(tables.spec_summary(spec))
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
    arrays["checksum"] = np.array(checksum(arrays))
    atomic_write(path, lambda f: np.savez(f, **arrays), option="save")


def load(path: str) -> dict:
    """Read a checkpoint: ``{"config": dict, "runs": [{"meta": dict, "tensors": [...]}]}``.

    A B-bit Madam tensor is the dict of its saved members (``packed``, ``sigma_star``, ``state``, ``t``; see
    :func:`restore_lns`); a float optimiser's tensor is its ``state_dict()``, under the current keys whatever
    the file's version.

    Raises
    ------
    ValueError
        If the file is missing, unreadable, truncated, altered (checksum), of another version or not an lnsim
        training checkpoint. Nothing is restored from a file that fails.
    """
    data = read_npz(path, "resume", "lnsim train checkpoint (.npz)")
    if str(data.get("format", "")) != FORMAT:
        raise ValueError(f"resume must be an lnsim train checkpoint, not {path!r} (no '{FORMAT}' marker)")
    v = data.get("version")
    version = int(v) if v is not None and v.shape == () and v.dtype.kind in "iu" else None
    if version not in READABLE_VERSIONS:
        readable = ", ".join(map(str, READABLE_VERSIONS))
        raise ValueError(f"checkpoint {path!r} has version {version}; this lnsim reads versions {readable}")
    if version >= 2 and str(data.get("checksum", "")) != checksum(data):
        raise ValueError(f"checkpoint {path!r} is corrupt: its checksum does not match its contents")
    try:
        return _parse(data, version)
    except (KeyError, ValueError, TypeError) as e:
        raise ValueError(f"checkpoint {path!r} is malformed ({type(e).__name__}: {e})") from None


def _parse(data: dict, version: int) -> dict:
    runs = []
    r = 0
    while f"run{r}/meta" in data:
        p = f"run{r}/"
        tensors = {}
        for name, value in data.items():
            if name.startswith(p) and name != p + "meta":
                i, _, field = name[len(p) + 1:].partition("/")
                tensors.setdefault(int(i), {})[field] = value
        tensors = [tensors[i] for i in sorted(tensors)]
        tensors = [_float_state(fields, version) if "scalars" in fields else fields for fields in tensors]
        runs.append({"meta": json.loads(str(data[p + "meta"])), "tensors": tensors})
        r += 1
    return {"config": json.loads(str(data["config"])), "runs": runs}


def _float_state(fields: dict, version: int) -> dict:
    """A float optimiser's state_dict() from its saved members (``a/<key>`` arrays, ``scalars`` JSON)."""
    state = json.loads(str(fields["scalars"]))
    if not isinstance(state, dict):
        raise ValueError(f"a float optimiser's scalars must be a JSON object, not {type(state).__name__}")
    state.update((name[2:], value) for name, value in fields.items() if name.startswith("a/"))
    if version >= 3:
        return state
    renamed = {}
    for name, value in state.items():
        if name not in _ATTRIBUTE_KEYS:
            raise ValueError(f"version-{version} float optimiser attribute {name!r} is not one lnsim wrote")
        if _ATTRIBUTE_KEYS[name] is not None and value is not None:  # SGD's buffer was None before its first step
            renamed[_ATTRIBUTE_KEYS[name]] = value
    return renamed


def restore_lns(raw_tensors: list[dict], spec: Spec) -> list[GoldenMadam]:
    """GoldenMadam objects from a run's saved tensors (codes unpacked, state and step count as saved)."""
    out = []
    for raw in raw_tensors:
        sign, k = unpack(raw["packed"], spec.fmt)
        out.append(GoldenMadam(sign, k, spec, float(raw["sigma_star"]), state=raw["state"], t=int(raw["t"])))
    return out


def restore_float(raw_tensors: list[dict]) -> list[dict]:
    """The float optimisers' ``state_dict()`` per tensor, from a run's loaded tensors (:func:`load`), for
    :meth:`lnsim.train.optim.FloatParams.load_state`; the dicts are copies, the arrays shared."""
    return [dict(raw) for raw in raw_tensors]
