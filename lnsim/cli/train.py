"""``lnsim train``: train the MLP, a CNN or a task's PyTorch model with B-bit Madam or a float baseline, report, save, plot."""

from __future__ import annotations

import sys

from lnsim.cli.options import add_option, spec_from_args, spec_parent, spec_values
from lnsim.cli.output import STDOUT, check_outputs, check_plot_path, text_stream, warn_spec, write_json, wrote
from lnsim.train.config import THREADS, TRAIN_OPTIONS, TrainConfig, check_threads, ignored_spec_options

__all__ = ["add_parser", "run", "config_from_args"]

_DESCRIPTION = """\
Train a NumPy MLP (float32 forward and backward, ReLU, softmax cross-entropy) on a bundled data set or an
.npz file; or, with PyTorch, a small CNN (--model cnn1d, e.g. on --dataset mnist1d; --model cnn2d on digits as
8x8 images) or your own model and data (--task module:function, see docs/torch.md). lns-madam holds every
weight and bias only as frozen signs and B-bit codes (per-tensor
sigma_star), decoded for the forward pass by the bit-true decoder and updated only by the golden integer
datapath; madam (float Madam with the spec's eta, eta_star and beta), adam and sgd are the float baselines on
the same model, split and seeds. eta decays toward eta0 in whole rungs when the training loss plateaus.
Prints a table per seed; optional JSON, PNG and checkpoints (resume with the same options plus --resume)."""


def add_parser(sub) -> None:
    """Register ``train`` on ``sub`` (from ``add_subparsers``): the spec's flags, :data:`TRAIN_OPTIONS`, output."""
    p = sub.add_parser("train", parents=[spec_parent()], help="train an MLP, a CNN or your PyTorch model with B-bit Madam or a baseline",
                       description=_DESCRIPTION)
    g = p.add_argument_group("training")
    for opt in TRAIN_OPTIONS:
        add_option(g, opt)
    add_option(g, THREADS, default=THREADS.default)
    o = p.add_argument_group("output")
    o.add_argument("--json", metavar="FILE", help="write the results as JSON")
    o.add_argument("--plot", metavar="FILE.png", help="write loss/accuracy curves and code histograms (.png, .pdf or .svg)")
    o.add_argument("--save", metavar="FILE.npz", help="checkpoint after every epoch")
    o.add_argument("--resume", metavar="FILE.npz", help="continue from a checkpoint (give the original options)")
    o.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def config_from_args(args) -> TrainConfig:
    """The validated :class:`~lnsim.train.config.TrainConfig` of parsed ``train`` arguments."""
    spec = spec_from_args(args)
    return TrainConfig.from_options(spec, **{opt.name: getattr(args, opt.name) for opt in TRAIN_OPTIONS})


def run(args) -> int:
    """Check the outputs, warn about the spec, print the header, train, print the table, write ``--json`` /
    ``--plot`` (one ``wrote`` line each on stderr); return the exit status (0)."""
    from lnsim.train import checkpoint
    from lnsim.train.report import format_header, format_table, header_fields, summarise
    from lnsim.train.runner import train

    config = config_from_args(args)
    threads = check_threads(args.threads)
    check_plot_path(args.plot)
    check_outputs(json=args.json, plot=args.plot, save=args.save)
    resume = checkpoint.load(args.resume) if args.resume else None
    out = text_stream(args.json)

    def started(data: str, model: str) -> None:  # before the progress bars: a pipe sees what runs at once
        _warn_options(args, config)  # here, after train() checked a --resume: a refused run prints its error alone
        print(format_header(header_fields(config, model), data), file=out, flush=True)

    result = train(config, resume=resume, save=args.save, progress=not args.no_progress, threads=threads,
                   log=lambda message: print(f"lnsim train: {message}", file=sys.stderr), started=started)
    summary = summarise(result)
    print(format_table(summary, header=False), file=out, flush=True)
    seeds = f"{len(config.seeds)} seed{'s' if len(config.seeds) > 1 else ''}"
    if args.save:
        wrote(args.save, f"checkpoint of {seeds} at epoch {config.epochs}")
    if args.json:
        write_json(args.json, summary, indent=1)
        if args.json != STDOUT:
            wrote(args.json, f"results of {seeds}")
    if args.plot:
        from lnsim.train.plots import plot_run

        plot_run(result, summary, args.plot)
        wrote(args.plot, "loss and accuracy curves" + (", code histograms" if config.lns else ""))
    return 0


def _warn_options(args, config: TrainConfig) -> None:
    """One warning line for the spec options the optimiser does not read, or the spec's own warnings
    (:func:`lnsim.cli.output.warn_spec`) for B-bit Madam."""
    given = [name for name, value in spec_values(args).items() if value is not None]
    ignored = ignored_spec_options(config.optimizer, given)
    if ignored:
        flags = ", ".join("--" + name.replace("_", "-") for name in ignored)
        reads = "--lr" + (" and --momentum" if config.optimizer == "sgd" else "")
        why = (f"{config.optimizer} reads {reads}, not the spec" if config.optimizer in ("adam", "sgd") else
               "float Madam does not round gradients, state or logarithms as the datapath does")
        print(f"lnsim: warning: {flags} {'has' if len(ignored) == 1 else 'have'} no effect with --optimizer "
              f"{config.optimizer}: {why}", file=sys.stderr)
    if config.lns:
        warn_spec(config.spec)
