"""PNG of a training run: loss and accuracy curves per epoch, and the weight histogram of each layer.

For lns-madam the histograms are of the codes k (0 = sigma_star, 2**B - 1 = the smallest magnitude) after the
last epoch, all seeds together; for the float optimisers, of log10 |w|.
"""

from __future__ import annotations

import numpy as np

__all__ = ["plot_run", "training_figure"]


def plot_run(result: dict, summary: dict, path: str) -> None:
    """Write :func:`training_figure` to ``path`` (PNG).

    Raises
    ------
    ValueError
        If ``path`` cannot be written.
    """
    fig = training_figure(result, summary)
    try:
        fig.savefig(path, dpi=110)
    except OSError as e:
        raise ValueError(f"plot must be a writable file path, not {path!r} ({e.strerror})") from None


def training_figure(result: dict, summary: dict):
    """The run's matplotlib ``Figure``: ``result`` from :func:`lnsim.train.runner.train`, ``summary`` from
    :func:`lnsim.train.report.summarise`. The curves' axes are ``fig.axes[0]`` (loss) and ``fig.axes[1]``."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    runs = result["runs"]
    model = runs[0].model
    n_layers = len(model.sizes) - 1
    cols = max(2, n_layers)
    fig = Figure(figsize=(4.2 * cols, 7.0), layout="constrained")
    grid = fig.add_gridspec(2, cols)
    title = f"{summary['optimizer']}"
    if summary["bits"] is not None:
        title += f" B={summary['bits']} eta0={summary['eta0']:g}"
    title += f" on {summary['dataset']}, {summary['model']} MLP, {len(runs)} seed(s)"
    ta = summary["test_accuracy"]
    if ta["mean"] is not None:
        title += f": test accuracy {100 * ta['mean']:.2f}% +- {100 * ta['std']:.2f}"
    fig.suptitle(title)

    ax_loss = fig.add_subplot(grid[0, : cols // 2])
    ax_acc = fig.add_subplot(grid[0, cols // 2:])
    for r in runs:
        epochs = np.arange(1, len(r.history["train_loss"]) + 1)
        ax_loss.plot(epochs, r.history["train_loss"], lw=0.8, alpha=0.6, label=f"seed {r.seed}")
        ax_acc.plot(epochs, 100 * np.asarray(r.history["test_accuracy"]), lw=0.8, alpha=0.6, label=f"test, seed {r.seed}")
        ax_acc.plot(epochs, 100 * np.asarray(r.history["train_accuracy"]), lw=0.6, ls=":", alpha=0.6, color="grey")
    ax_loss.set(xlabel="epoch", ylabel="training loss (mean over minibatches)", yscale="log", title="training loss")
    ax_acc.set(xlabel="epoch", ylabel="accuracy (%)", title="test accuracy (dotted: training)")
    ax_acc.set_ylim(max(0.0, ax_acc.get_ylim()[0]), 100.5)
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole
    if len(runs) <= 10:
        ax_loss.legend(fontsize="small")

    for layer in range(n_layers):
        ax = fig.add_subplot(grid[1, layer])
        for j, part in enumerate(("W", "b")):
            i = 2 * layer + j
            if summary["optimizer"] == "lns-madam":
                values = np.concatenate([r.params.tensors[i].k.reshape(-1) for r in runs]).astype(np.int64)
                code_max = runs[0].params.tensors[i].spec.fmt.code_max
                bins = np.linspace(0, code_max + 1, min(code_max + 1, 64) + 1)
                xlabel = f"code k (0 = sigma_star, {code_max} = smallest)"
            else:
                values = np.concatenate([np.log10(np.abs(r.params.tensors[i].weights().reshape(-1)) + 1e-30) for r in runs])
                bins = 64
                xlabel = "log10 |w|"
            ax.hist(values, bins=bins, density=True, label=f"{part} ({values.size // len(runs)})",
                    histtype="stepfilled" if part == "W" else "step", alpha=0.6 if part == "W" else 1.0,
                    lw=1.5)
        ax.set(xlabel=xlabel, ylabel="density", title=f"layer {layer} ({model.sizes[layer]} -> {model.sizes[layer + 1]})")
        ax.legend(fontsize="small")
    return fig
