"""The tasks of a sweep: one per (grid point, seed), plus the FP32 Madam reference per seed, or one fidelity
measurement per point; each with the key of everything its result depends on, and :func:`run_task` for workers.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import os
import time
from dataclasses import dataclass

import lnsim
from lnsim.spec import Option, Spec
from lnsim.spec.schema import bounds
from lnsim.train.config import TrainConfig
from lnsim.train.runner import data_fingerprint
from lnsim.validation import check_int

__all__ = ["SWEEP_OPTIONS", "RESULT_FORMAT", "Task", "code_version", "task_key", "plan_training", "plan_fidelity", "run_task",
           "REFERENCE_SERIES", "is_reference"]

#: Version of the stored result; bump it when what a task computes or stores changes without a source change below.
RESULT_FORMAT = 2

#: Modules (relative to the lnsim package) whose source decides a result; their SHA-256 is part of every key.
NUMERIC_SOURCES = ("validation.py", "spec", "tables.py", "codecs.py", "reference.py", "fidelity.py", "golden", "train",
                   "torch")
#: Presentation-only modules of those folders: editing them does not invalidate stored results.
_NOT_NUMERIC = ("spec/schema.py", "spec/__main__.py", "train/plots.py", "train/checkpoint.py")

#: The sweep's own options (besides the grid's axes and the training options).
SWEEP_OPTIONS = (
    Option(name="reference", kind=bool, default=True, flag="--no-reference", help="do not train the FP32 Madam reference"),
    Option(name="elements", kind=int, default=100_000, bounds=(1, 10**8),
           help="elements per fidelity run (default {default})"),
    Option(name="steps", kind=int, default=30, bounds=(1, 10**6), help="steps per fidelity run (default {default})"),
)
_BOUNDS = bounds(SWEEP_OPTIONS)

#: The series label of the float reference (with its beta and bias correction when a grid has several).
REFERENCE_SERIES = "FP32 Madam"


def is_reference(row: dict) -> bool:
    """Whether a result row (or a task's meta) is an FP32 Madam reference run."""
    return row.get("optimizer") == "madam"


def _reference_series(values: dict, several: bool) -> str:
    if not several:
        return REFERENCE_SERIES
    bc = "" if values["bias_correction"] else ", no bias correction"
    return f"{REFERENCE_SERIES} (beta_shift {values['beta_shift']}{bc})"


@functools.lru_cache(maxsize=1)
def code_version() -> dict:
    """``{"lnsim": version, "format": RESULT_FORMAT, "sources": sha256}``: the code a stored result came from.

    ``sources`` hashes the text of every module that computes results (:data:`NUMERIC_SOURCES`), so a change
    to the golden model, the trainer or the spec invalidates stored points even when the version is not bumped.
    """
    root = os.path.dirname(os.path.abspath(lnsim.__file__))
    files = []
    for entry in NUMERIC_SOURCES:
        path = os.path.join(root, entry)
        if os.path.isdir(path):
            files += [os.path.join(entry, name) for name in os.listdir(path) if name.endswith(".py")]
        else:
            files.append(entry)
    h = hashlib.sha256()
    for rel in sorted(f.replace(os.sep, "/") for f in files):
        if rel in _NOT_NUMERIC:
            continue
        h.update(rel.encode() + b"\0")
        with open(os.path.join(root, rel), "rb") as f:
            h.update(f.read() + b"\0")
    return {"lnsim": lnsim.__version__, "format": RESULT_FORMAT, "sources": h.hexdigest()}


def task_key(identity: dict) -> str:
    """The key of a task: SHA-256 (24 hex digits) of its identity as canonical JSON (sorted keys, exact floats)."""
    text = json.dumps(identity, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode()).hexdigest()[:24]


@dataclass(frozen=True)
class Task:
    """One unit of work.

    ``identity`` (JSON-able) is everything the result depends on and is hashed into ``key``; ``meta`` holds the
    row fields known before running (grid values, derived spec quantities, series label), not hashed.
    """

    kind: str
    identity: dict
    key: str
    meta: dict


def _new_task(kind: str, identity: dict, meta: dict) -> Task:
    identity = {"task": kind, "code": code_version(), **identity}
    return Task(kind=kind, identity=identity, key=task_key(identity), meta=meta)


def _spec_fields(spec: Spec) -> dict:
    """A row's spec columns: every input of the spec, the rung size, the dynamic range, the steps in rungs and the
    bits each weight stores (:attr:`lnsim.spec.Spec.bits_per_weight`, its total)."""
    return {**spec.to_dict(), "rung_size": -math.expm1(-spec.fmt.eta0), "dynamic_range": spec.fmt.dynamic_range,
            "eta_rungs": spec.eta_rungs, "eta_star_rungs": spec.eta_star_rungs,
            "bits_per_weight": spec.bits_per_weight.total}


def _reference_values(point) -> dict:
    # Float Madam reads only eta, eta_star, beta and bias correction (and eta0 as the schedule's decay step):
    # one reference at lnsim train's defaults per beta and bias correction of the grid.
    return {"beta_shift": point.spec.cfg.beta_shift, "bias_correction": point.spec.cfg.bias_correction}


def plan_training(points, train_options: dict, seeds, *, reference: bool = True) -> list[Task]:
    """One training task per point and seed (lns-madam), then the FP32 Madam reference per seed (float Madam at
    ``lnsim train``'s default eta0 0.001 and eta 0.01, with the grid's beta and bias correction).

    ``train_options`` are training options of :data:`lnsim.train.config.TRAIN_OPTIONS` (dataset, data, hidden,
    epochs, batch_size, init, sigma_scale, schedule, patience, decay_factor, threshold, test_size; None for a
    default), validated here by :meth:`~lnsim.train.config.TrainConfig.from_options`; every seed's data split is
    loaded once for its fingerprint. Raises ``ValueError`` (one line) for invalid options or data.
    """
    fingerprints = {}

    def config(spec, optimizer, seed):
        cfg = TrainConfig.from_options(spec, **train_options, optimizer=optimizer, seeds=1, seed=seed)
        if seed not in fingerprints:
            fingerprints[seed] = data_fingerprint(cfg, seed)
        return cfg

    def train_task(cfg, series, spec_fields, seed, reference_key):
        meta = {"optimizer": cfg.optimizer, "series": series, **spec_fields, "dataset": cfg.dataset,
                "epochs": cfg.epochs, "seed": seed, "reference_key": reference_key}
        return _new_task("train", {"config": cfg.to_dict(), "data": fingerprints[seed]}, meta)

    tasks, references = [], {}
    several = len({tuple(_reference_values(p).items()) for p in points}) > 1
    for point in points:
        for seed in seeds:
            reference_key = None
            if reference:
                values = _reference_values(point)
                ref_cfg = config(Spec.from_options(**values), "madam", seed)
                ref_fields = {"eta0": ref_cfg.spec.fmt.eta0, "eta": ref_cfg.spec.cfg.eta,
                              "eta_star": ref_cfg.spec.cfg.eta_star, **values}
                ref = train_task(ref_cfg, _reference_series(values, several), ref_fields, seed, None)
                references.setdefault(ref.key, ref)
                reference_key = ref.key
            cfg = config(point.spec, "lns-madam", seed)
            tasks.append(train_task(cfg, point.series, _spec_fields(cfg.spec), seed, reference_key))
    return tasks + list(references.values())


def plan_fidelity(points, *, elements: int, steps: int, seed: int) -> list[Task]:
    """One fidelity task per point: :func:`lnsim.fidelity.measure` with ``elements`` x ``steps`` updates."""
    check_int("elements", elements, *_BOUNDS["elements"])
    check_int("steps", steps, *_BOUNDS["steps"])
    check_int("seed", seed, 0, 2**63 - 1)
    return [_new_task("fidelity", {"spec": p.spec.to_dict(), "elements": elements, "steps": steps, "seed": seed},
                      {"series": p.series, **_spec_fields(p.spec), "elements": elements, "steps": steps, "seed": seed})
            for p in points]


def _run_training(identity: dict) -> tuple[dict, dict]:
    from lnsim.train.report import summarise
    from lnsim.train.runner import train

    config = TrainConfig.from_dict(identity["config"])
    result = train(config, threads=1)
    run = result["runs"][0]
    if run.data != identity["data"]:
        raise ValueError(f"the data of seed {run.seed} changed since the sweep was planned ({config.dataset})")
    s = summarise(result)
    sat = s["saturated"]
    weights = sat["weights"] if sat else None
    k0, kmax = (sat["k0"][0], sat["kmax"][0]) if sat else (None, None)
    loss = s["train_loss"]["per_seed"][0]
    measured = {
        "test_accuracy": s["test_accuracy"]["per_seed"][0],
        "train_loss": loss[-1] if loss else None,
        "train_accuracy": s["train_accuracy"]["per_seed"][0][-1],
        "lr_decays": s["lr_decays"][0],
        "saturated_k0": k0,
        "saturated_kmax": kmax,
        "weights": weights,
        "saturated_fraction": (k0 + kmax) / weights if sat else None,
        "nan_gradients": s["nan_gradients"][0] if sat else None,
        "inf_gradients": s["inf_gradients"][0] if sat else None,
        "nonfinite_gradients": sum(x or 0 for x in s["nonfinite_gradients"]["per_seed"][0]),
        "skipped_steps": sum(x or 0 for x in s["skipped_steps"]["per_seed"][0]),
        "model": s["model"],
        "seconds": s["seconds_per_seed"][0],
    }
    return measured, s


def _run_fidelity(identity: dict) -> tuple[dict, dict]:
    from lnsim.fidelity import measure
    from lnsim.train.runner import limit_threads

    t0 = time.perf_counter()
    with limit_threads(1):
        m = measure(Spec.from_dict(identity["spec"]), n=identity["elements"], steps=identity["steps"],
                    seed=identity["seed"])
    measured = {name: m[name] for name in ("updates", "exact", "off_by_one", "max_error", "clamped", "stall_rate",
                                           "table_bits")}
    measured["seconds"] = time.perf_counter() - t0
    return measured, m


def run_task(task: Task) -> dict:
    """Run one task (in a worker: one thread) and return its record.

    The record is ``{"format", "key", "identity", "measured", "detail"}``: ``measured`` the row's result fields
    (accuracies as fractions 0..1, seconds of wall time), ``detail`` the full :func:`lnsim.train.report.summarise`
    or :func:`lnsim.fidelity.measure` output.
    """
    runner = {"train": _run_training, "fidelity": _run_fidelity}[task.kind]
    measured, detail = runner(task.identity)
    return {"format": RESULT_FORMAT, "key": task.key, "identity": task.identity, "measured": measured, "detail": detail}
