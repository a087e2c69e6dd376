"""PNG figures of a training sweep: test accuracy against bits (one line per series, error bars over seeds, the
FP32 Madam reference as a horizontal band), a bits x series heatmap of the mean accuracy, and the share of
saturated codes; and the fidelity sweep's exact-step share against bits."""

from __future__ import annotations

import os

import numpy as np

from lnsim.files import atomic_write
from lnsim.sweep.tasks import is_reference
from lnsim.train.report import mean_std

__all__ = ["write_training_plots", "write_fidelity_plot"]


def _series_table(table: list[dict], field: str, scale: float = 100.0) -> dict:
    """``{series: (bits, mean, std)}`` of ``field`` x ``scale`` over seeds, bits ascending, for B-bit rows."""
    acc = {}
    for row in table:
        if not is_reference(row) and row[field] is not None:
            acc.setdefault(row["series"], {}).setdefault(row["bits"], []).append(scale * row[field])
    out = {}
    for series, by_bits in acc.items():
        bits = sorted(by_bits)
        stats = np.array([mean_std(by_bits[b]) for b in bits])
        out[series] = (np.array(bits), stats[:, 0], stats[:, 1])
    return out


def _save(fig, path: str) -> str:
    import io

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    atomic_write(path, buffer.getvalue())
    return path


def _bits_axis(ax) -> None:
    """Label the x axis as code width, with whole-bit ticks only."""
    from matplotlib.ticker import MaxNLocator

    ax.set_xlabel("code width B (bits)")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def _figure(width: float = 6.4, height: float = 4.2):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def _accuracy_vs_bits(table, title, path):
    fig = _figure()
    ax = fig.add_subplot()
    references = {}
    for r in table:
        if is_reference(r):
            references.setdefault(r["series"], []).append(100 * r["test_accuracy"])
    for (series, ref), color in zip(references.items(), ("black", "dimgray", "gray", "darkgray")):
        mean, std = mean_std(ref)
        ax.axhline(mean, color=color, linestyle="--", linewidth=1, label=f"{series} {mean:.2f}%")
        ax.axhspan(mean - std, mean + std, color=color, alpha=0.08, linewidth=0)
    for series, (bits, mean, std) in _series_table(table, "test_accuracy").items():
        ax.errorbar(bits, mean, yerr=std, marker="o", markersize=4, capsize=3, label=series)
    _bits_axis(ax)
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)


def _heatmap(table, title, path):
    series_table = _series_table(table, "test_accuracy")
    names = list(series_table)
    bits = sorted({int(x) for b, _, _ in series_table.values() for x in b})
    grid = np.full((len(names), len(bits)), np.nan)
    for i, name in enumerate(names):
        for b, m in zip(*series_table[name][:2]):
            grid[i, bits.index(int(b))] = m
    fig = _figure(max(4.0, 1.0 + 0.75 * len(bits)), max(2.4, 1.4 + 0.5 * len(names)))
    ax = fig.add_subplot()
    image = ax.imshow(np.ma.masked_invalid(grid), aspect="auto", cmap="viridis")
    for i in range(len(names)):
        for j in range(len(bits)):
            if np.isfinite(grid[i, j]):
                light = grid[i, j] < np.nanmin(grid) + 0.5 * (np.nanmax(grid) - np.nanmin(grid))
                ax.text(j, i, f"{grid[i, j]:.1f}", ha="center", va="center", fontsize=8,
                        color="white" if light else "black")
    ax.set_xticks(range(len(bits)), [str(b) for b in bits])
    ax.set_yticks(range(len(names)), names)
    ax.set_xlabel("code width B (bits)")  # heatmap: one labelled column per width
    ax.set_ylabel("base precision")
    ax.set_title(title, fontsize=10)
    fig.colorbar(image, ax=ax, label="mean test accuracy (%)")
    return _save(fig, path)


def _saturation(table, title, path):
    fig = _figure(9.0, 3.8)
    axes = fig.subplots(1, 2, sharey=True)
    for ax, field, label in ((axes[0], "saturated_k0", "at k = 0 (largest magnitude, sigma_star)"),
                             (axes[1], "saturated_kmax", "at k = 2**B - 1 (smallest magnitude)")):
        share = [dict(r, share=r[field] / r["weights"]) for r in table if r["weights"]]
        for series, (bits, mean, std) in _series_table(share, "share").items():
            ax.errorbar(bits, mean, yerr=std, marker="o", markersize=4, capsize=3, label=series)
        _bits_axis(ax)
        ax.set_title(f"codes {label}", fontsize=9)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("saturated codes after training (% of weights)")
    axes[1].legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    return _save(fig, path)


def write_training_plots(out: str, table: list[dict], *, title: str) -> list[str]:
    """Write ``accuracy_vs_bits.png``, ``accuracy_heatmap.png`` and ``saturation.png`` into ``out``; returns paths."""
    return [_accuracy_vs_bits(table, title, os.path.join(out, "accuracy_vs_bits.png")),
            _heatmap(table, title, os.path.join(out, "accuracy_heatmap.png")),
            _saturation(table, title, os.path.join(out, "saturation.png"))]


def write_fidelity_plot(out: str, table: list[dict], *, title: str) -> list[str]:
    """Write ``fidelity.png`` (share of golden rung steps equal to float Madam's, in %, against bits)."""
    fig = _figure()
    ax = fig.add_subplot()
    for series, (bits, mean, _) in _series_table(table, "exact").items():
        ax.plot(bits, mean, marker="o", markersize=4, label=series)
    _bits_axis(ax)
    ax.set_ylabel("rung steps equal to float64 Madam's (%)")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return [_save(fig, os.path.join(out, "fidelity.png"))]
