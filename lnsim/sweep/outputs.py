"""A sweep's tables: one row per task (``results.csv``/``.json``, ``fidelity.csv``/``.json``) and the Markdown
summaries with the mean and standard deviation over seeds (``summary.md``, ``fidelity.md``)."""

from __future__ import annotations

import csv
import io
import json
import os

import numpy as np

from lnsim.files import atomic_write
from lnsim.spec import FIELD_NAMES
from lnsim.sweep.tasks import is_reference
from lnsim.train.report import mean_std

__all__ = ["TRAIN_FIELDS", "FIDELITY_FIELDS", "rows", "write_rows", "training_summary", "fidelity_summary",
           "model_label"]

# The spec's columns: these first, in this order, then any other input of the spec.
_FIRST = ["bits", "base", "eta0", "frac_bits", "rung_size", "dynamic_range", "eta", "eta_rungs", "eta_star",
          "eta_star_rungs", "grad_format"]
_SPEC_FIELDS = [*_FIRST, *(name for name in FIELD_NAMES if name not in _FIRST), "bits_per_weight"]

#: Columns of results.csv / keys of each results.json row, in order (see docs/explore.md for units).
TRAIN_FIELDS = ["optimizer", "series", *_SPEC_FIELDS, "dataset", "model", "epochs", "seed", "test_accuracy",
                "train_loss", "train_accuracy", "lr_decays", "saturated_k0", "saturated_kmax", "weights",
                "saturated_fraction", "nan_gradients", "inf_gradients", "nonfinite_gradients", "skipped_steps",
                "seconds", "key", "reference_key"]

#: Columns of fidelity.csv / keys of each fidelity.json row.
FIDELITY_FIELDS = ["series", *_SPEC_FIELDS, "elements", "steps", "seed", "updates", "exact", "off_by_one",
                   "max_error", "clamped", "stall_rate", "table_bits", "seconds", "key"]


def rows(tasks, records: dict, fields) -> list[dict]:
    """One row per task with a record, in task order: the task's known fields, its measured ones and its key;
    fields that do not apply (e.g. bits of the float reference) are None."""
    out = []
    for task in tasks:
        record = records.get(task.key)
        if record is None:
            continue
        values = {**task.meta, **record["measured"], "key": task.key}
        out.append({name: values.get(name) for name in fields})
    return out


def write_rows(out: str, stem: str, table: list[dict], fields) -> list[str]:
    """Write ``stem.csv`` (empty cell for None) and ``stem.json`` (a list of row objects) into ``out``."""
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    for row in table:
        writer.writerow({k: "" if v is None else v for k, v in row.items()})
    paths = [os.path.join(out, f"{stem}.csv"), os.path.join(out, f"{stem}.json")]
    atomic_write(paths[0], text.getvalue())
    atomic_write(paths[1], json.dumps(table, indent=1, allow_nan=False) + "\n")
    return paths


def _groups(table: list[dict]) -> dict:
    """Rows by point (series and bits), in first-seen order."""
    groups = {}
    for row in table:
        groups.setdefault((row["series"], row["bits"]), []).append(row)
    return groups


def _pm(values) -> str:
    mean, std = mean_std([100 * v for v in values])
    return f"{mean:.2f} +- {std:.2f}"


def _dash(value) -> str:
    return "-" if value is None else str(value)


def _eta(row) -> str:
    if row["eta_rungs"] is None:
        return f"{row['eta']:g}"
    return f"{row['eta']:.4g} ({row['eta_rungs']})"


def _eta0(row) -> str:
    if row["base"] == "pow2":
        return f"2^-{row['frac_bits']} ln2 = {row['eta0']:.4g}"
    return f"{row['eta0']:.4g}"


def model_label(model: str) -> str:
    """A row's model as a title says it: the MLP's layer sizes as ``"64-128-10 MLP"``, a PyTorch model's
    description as it is."""
    return f"{model} MLP" if model[:1].isdigit() else model


def training_summary(table: list[dict], *, title: str) -> str:
    """The Markdown summary of a training sweep: one row per point, test accuracy in % as mean +- standard
    deviation over seeds (ddof 1), the paired difference to FP32 Madam on the same seeds, saturated codes, the
    bits each weight stores (code + sign + state; ``-`` for the float reference) and mean seconds per run."""
    by_key = {row["key"]: row for row in table}
    seeds = sorted({row["seed"] for row in table})
    lines = [f"# {title}", "",
             f"{table[0]['dataset']}, {model_label(table[0]['model'])}, {table[0]['epochs']} epochs, seeds "
             f"{', '.join(map(str, seeds))}; test accuracy in %, mean +- std over seeds; saturated codes: share of "
             f"weights at k = 0 and k = 2**B - 1 after training.", "",
             "| configuration | bits | eta0 | eta (rungs) | dynamic range | test accuracy | vs FP32 Madam (paired) "
             "| saturated codes | bits per weight | seconds |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for (series, bits), group in _groups(table).items():
        first = group[0]
        acc = [r["test_accuracy"] for r in group]
        refs = [by_key.get(r["reference_key"]) for r in group]
        vs = "-"
        if not is_reference(first) and refs and all(refs):
            mean, std = mean_std([100 * (a - ref["test_accuracy"]) for a, ref in zip(acc, refs)])
            vs = f"{mean:+.2f} +- {std:.2f}"
        sat = "-"
        if first["weights"]:
            k0 = np.mean([r["saturated_k0"] for r in group]) / first["weights"]
            kmax = np.mean([r["saturated_kmax"] for r in group]) / first["weights"]
            sat = f"{k0:.1%} at k=0, {kmax:.1%} at k=max"
        lines.append(
            f"| {series} | {'-' if bits is None else bits} | {_eta0(first) if bits is not None else '-'} | "
            f"{_eta(first)} | {'-' if first['dynamic_range'] is None else format(first['dynamic_range'], '.4g')} | "
            f"{_pm(acc)} | {vs} | {sat} | {_dash(first['bits_per_weight'])} | "
            f"{np.mean([r['seconds'] for r in group]):.1f} |")
    return "\n".join(lines) + "\n"


def fidelity_summary(table: list[dict], *, title: str) -> str:
    """The Markdown summary of a fidelity sweep: per point the share of golden rung steps equal to float64
    Madam's, the count off by one, the worst error in rungs, the stall rate (share of element-steps with a
    non-zero finite gradient whose state word did not change), the bits each weight stores and the update
    tables' size."""
    first = table[0]
    lines = [f"# {title}", "",
             f"{first['elements']:,} elements x {first['steps']} steps, seed {first['seed']}, gradient scales "
             f"log-uniform over 1e-6..10 and drifting (lnsim.fidelity.measure).", "",
             "| configuration | bits | eta0 | eta (rungs) | eta_star (rungs) | exact | off by one | max error (rungs) "
             "| stall rate | bits per weight | update table bits | seconds |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in table:
        lines.append(f"| {r['series']} | {r['bits']} | {_eta0(r)} | {_eta(r)} | {r['eta_star_rungs']} | "
                     f"{100 * r['exact']:.3f}% | {r['off_by_one']:,} | {r['max_error']} | "
                     f"{100 * r['stall_rate']:.4f}% | {r['bits_per_weight']} | {r['table_bits']:,} | "
                     f"{r['seconds']:.2f} |")
    return "\n".join(lines) + "\n"
