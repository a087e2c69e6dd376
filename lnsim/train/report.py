"""The results of a training run as a JSON-able summary and as a text table."""

from __future__ import annotations

import math

import numpy as np

from lnsim import tables

__all__ = ["header_fields", "summarise", "format_header", "format_table", "mean_std"]


def mean_std(values) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for a single value)."""
    a = np.asarray(values, dtype=np.float64)
    return float(a.mean()), float(a.std(ddof=1)) if a.size > 1 else 0.0


def _finite(x):
    return x if x is None or math.isfinite(x) else None


def header_fields(config, model: str | None) -> dict:
    """What a run is, known before it trains: the optimiser, data set, widths, model (its description), epochs,
    batch, learning rate and schedule, the seeds, and the spec (:func:`lnsim.tables.spec_summary`, for the
    optimisers that use it, else None). These are the first keys of :func:`summarise`'s summary, in order,
    then ``spec``; :func:`format_header` prints them."""
    spec = config.spec
    madam = config.optimizer in ("lns-madam", "madam")
    return {
        "optimizer": config.optimizer,
        "dataset": config.dataset,
        "bits": spec.fmt.bits if config.lns else None,
        "eta0": spec.fmt.eta0 if madam else None,
        "eta": spec.cfg.eta if madam else None,
        "eta_star": spec.cfg.eta_star if madam else None,
        "lr": config.effective_lr,
        "momentum": config.momentum if config.optimizer == "sgd" else None,
        "model": model,
        "epochs": config.epochs,
        "batch_size": config.batch_size,
        "init": config.init if config.lns else "usual",
        "sigma_scale": config.sigma_scale,
        "schedule": {"kind": config.schedule, "patience": config.patience, "decay_factor": config.decay_factor,
                     "threshold": config.threshold},
        "seeds": list(config.seeds),
        "spec": tables.spec_summary(spec) if madam else None,
    }


def summarise(result: dict) -> dict:
    """The JSON-able summary of :func:`lnsim.train.runner.train`'s result.

    Accuracies are fractions (0..1); ``train_loss`` is the mean minibatch loss of each epoch; saturated codes
    (k = 0 or 2**B - 1, after the last epoch) are counted for lns-madam only.
    """
    config = result["config"]
    runs = result["runs"]
    final = [r.history["test_accuracy"][-1] if r.history["test_accuracy"] else None for r in runs]
    done = [a for a in final if a is not None]
    mean, std = mean_std(done) if done else (None, None)
    losses = [[_finite(x) for x in r.history["train_loss"]] for r in runs]
    n_epochs = min((len(x) for x in losses), default=0)
    mean_loss = [_finite(float(np.mean([x[e] if x[e] is not None else np.inf for x in losses]))) for e in range(n_epochs)]
    head = header_fields(config, runs[0].model.describe() if runs else None)
    spec_summary = head.pop("spec")
    summary = {
        **head,
        "test_accuracy": {"mean": mean, "std": std, "per_seed": final},
        "train_loss": {"mean": mean_loss, "per_seed": losses},
        "train_accuracy": {"per_seed": [r.history["train_accuracy"] for r in runs]},
        "test_accuracy_per_epoch": {"per_seed": [r.history["test_accuracy"] for r in runs]},
        "eta_rungs": {"per_seed": [r.history["eta_rungs"] for r in runs]},
        "nonfinite_gradients": {"per_seed": [r.history["nonfinite_gradients"] for r in runs]},
        "skipped_steps": {"per_seed": [r.history["skipped_steps"] for r in runs]},
        "lr_decays": [r.schedule.decays for r in runs],
        "seconds": result["seconds"],
        "seconds_per_seed": [r.seconds for r in runs],
        "data": result["data"],
        "spec": spec_summary,
        "config": config.to_dict(),
    }
    if config.lns:
        sat = [r.params.saturated() for r in runs]
        summary["saturated"] = {
            "k0": [sum(t["k0"] for t in s) for s in sat],
            "kmax": [sum(t["kmax"] for t in s) for s in sat],
            "weights": sum(t["size"] for t in sat[0]) if sat else 0,
            "per_tensor": [[{"name": name, **t} for name, t in zip(r.model.names, s)] for r, s in zip(runs, sat)],
        }
        summary["nan_gradients"] = [r.params.nan for r in runs]
        summary["inf_gradients"] = [r.params.inf for r in runs]
    else:
        summary["saturated"] = None
    return summary


def format_header(fields: dict, data: str | None = None) -> str:
    """The two lines that say what a run is (from :func:`header_fields` or a summary): the optimiser on the data
    (``data``, the data set's description, else its name), then the model, batch, epochs and the optimiser's
    settings (the spec for B-bit Madam)."""
    s = fields
    lines = [f"{s['optimizer']} on {data or s['dataset']}"]
    what = f"model {s['model']}, batch {s['batch_size']}, {s['epochs']} epochs"
    if s["optimizer"] == "lns-madam":
        sp = s["spec"]
        what += (f", B={sp['bits']} eta0={sp['eta0']:g}, eta {sp['eta_rungs']} rungs, eta_star {sp['eta_star_rungs']} "
                 f"rungs, {sp['grad_format']} gradients, init {s['init']}")
    elif s["optimizer"] == "madam":
        what += f", eta {s['eta']:g}, eta_star {s['eta_star']:g}, beta {s['spec']['beta']:.6g}"
    else:
        what += f", lr {s['lr']:g}" + (f", momentum {s['momentum']:g}" if s["momentum"] is not None else "")
    lines.append(what)
    return "\n".join(lines)


def format_table(summary: dict, *, header: bool = True) -> str:
    """A plain-text table: one row per seed, then the test accuracy (mean +- std over several seeds), the
    non-finite gradients and skipped steps if there were any, and the saturated codes; after
    :func:`format_header`'s lines unless ``header`` is False (printed before the training)."""
    s = summary
    lines = [format_header(s, s["data"][0] if s["data"] else None)] if header else []
    header = ["seed", "test acc", "train loss", "train acc", "lr decays"]
    sat = s["saturated"]
    if sat is not None:
        header += ["k=0", "k=max"]
    header.append("seconds")
    rows = []
    for i, seed in enumerate(s["seeds"]):
        acc = s["test_accuracy"]["per_seed"][i]
        loss = s["train_loss"]["per_seed"][i]
        tacc = s["train_accuracy"]["per_seed"][i]
        row = [str(seed), "-" if acc is None else f"{100 * acc:.2f}%",
               "-" if not loss or loss[-1] is None else f"{loss[-1]:.4f}",
               "-" if not tacc else f"{100 * tacc[-1]:.2f}%", str(s["lr_decays"][i])]
        if sat is not None:
            row += [str(sat["k0"][i]), str(sat["kmax"][i])]
        row.append(f"{s['seconds_per_seed'][i]:.2f}")
        rows.append(row)
    widths = [max(len(h), *(len(r[j]) for r in rows)) for j, h in enumerate(header)]
    lines.append("  ".join(h.rjust(w) for h, w in zip(header, widths)))
    lines += ["  ".join(c.rjust(w) for c, w in zip(r, widths)) for r in rows]
    ta = s["test_accuracy"]
    if ta["mean"] is not None and len(s["seeds"]) > 1:
        lines.append(f"test accuracy {100 * ta['mean']:.2f}% +- {100 * ta['std']:.2f} (mean +- std over "
                     f"{len(s['seeds'])} seeds); {s['seconds']:.1f} s")
    elif ta["mean"] is not None:
        lines.append(f"test accuracy {100 * ta['mean']:.2f}% (1 seed); {s['seconds']:.1f} s")
    nonfinite = _nonfinite_line(s)
    if nonfinite:
        lines.append(nonfinite)
    if sat is not None:
        lines.append(f"saturated codes after training: k=0 {sum(sat['k0'])}, k=2**B-1 {sum(sat['kmax'])} "
                     f"(of {sat['weights']} weights per seed)")
    return "\n".join(lines)


def _nonfinite_line(s: dict) -> str:
    """The line about non-finite (NaN/Inf) gradients, "" when there were none: how many elements, and for a float
    optimiser how many steps it skipped (each would have made its weights NaN)."""
    per_seed = [sum(x or 0 for x in h) for h in s["nonfinite_gradients"]["per_seed"]]
    if not any(per_seed):
        return ""
    steps = [sum(x or 0 for x in h) for h in s["skipped_steps"]["per_seed"]]
    seeds = ", ".join(f"seed {seed}: {n:,}" for seed, n in zip(s["seeds"], per_seed) if n)
    if s["optimizer"] == "lns-madam":
        return (f"non-finite gradients: {sum(per_seed):,} elements ({seeds}); the datapath left NaN elements' "
                f"codes unchanged and clamped Inf")
    skipped = ", ".join(f"seed {seed}: {n:,}" for seed, n in zip(s["seeds"], steps) if n)
    return (f"non-finite gradients: {sum(per_seed):,} elements ({seeds}); {sum(steps):,} steps skipped ({skipped}): "
            f"the float optimiser diverged (a smaller learning rate?)")
