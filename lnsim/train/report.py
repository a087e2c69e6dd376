"""The results of a training run as a JSON-able summary and as a text table."""

from __future__ import annotations

import math

import numpy as np

from lnsim import tables

__all__ = ["summarise", "format_table", "mean_std"]


def mean_std(values) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for a single value)."""
    a = np.asarray(values, dtype=np.float64)
    return float(a.mean()), float(a.std(ddof=1)) if a.size > 1 else 0.0


def _finite(x):
    return x if x is None or math.isfinite(x) else None


def summarise(result: dict) -> dict:
    """The JSON-able summary of :func:`lnsim.train.runner.train`'s result.

    Accuracies are fractions (0..1); ``train_loss`` is the mean minibatch loss of each epoch; saturated codes
    (k = 0 or 2**B - 1, after the last epoch) are counted for lns-madam only.
    """
    config = result["config"]
    runs = result["runs"]
    spec = config.spec
    final = [r.history["test_accuracy"][-1] if r.history["test_accuracy"] else None for r in runs]
    done = [a for a in final if a is not None]
    mean, std = mean_std(done) if done else (None, None)
    losses = [[_finite(x) for x in r.history["train_loss"]] for r in runs]
    n_epochs = min((len(x) for x in losses), default=0)
    mean_loss = [_finite(float(np.mean([x[e] if x[e] is not None else np.inf for x in losses]))) for e in range(n_epochs)]
    summary = {
        "optimizer": config.optimizer,
        "dataset": config.dataset,
        "bits": spec.fmt.bits if config.lns else None,
        "eta0": spec.fmt.eta0 if config.optimizer in ("lns-madam", "madam") else None,
        "eta": spec.cfg.eta if config.optimizer in ("lns-madam", "madam") else None,
        "eta_star": spec.cfg.eta_star if config.optimizer in ("lns-madam", "madam") else None,
        "lr": config.effective_lr,
        "momentum": config.momentum if config.optimizer == "sgd" else None,
        "model": runs[0].model.describe() if runs else None,
        "epochs": config.epochs,
        "batch_size": config.batch_size,
        "init": config.init if config.lns else "usual",
        "sigma_scale": config.sigma_scale,
        "schedule": {"kind": config.schedule, "patience": config.patience, "decay_factor": config.decay_factor,
                     "threshold": config.threshold},
        "seeds": list(config.seeds),
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
        "spec": tables.spec_summary(spec) if config.optimizer in ("lns-madam", "madam") else None,
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


def format_table(summary: dict) -> str:
    """A plain-text table: one row per seed, then the mean and standard deviation."""
    s = summary
    lines = [f"{s['optimizer']} on {s['data'][0] if s['data'] else s['dataset']}"]
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
    if ta["mean"] is not None:
        lines.append(f"test accuracy {100 * ta['mean']:.2f}% +- {100 * ta['std']:.2f} (mean +- std over "
                     f"{len(s['seeds'])} seed{'s' if len(s['seeds']) > 1 else ''}); {s['seconds']:.1f} s")
    if sat is not None:
        lines.append(f"saturated codes after training: k=0 {sum(sat['k0'])}, k=2**B-1 {sum(sat['kmax'])} "
                     f"(of {sat['weights']} weights per seed)")
    return "\n".join(lines)
