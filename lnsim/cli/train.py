"""``lnsim train``: train the MLP, a CNN or a task's PyTorch model with B-bit Madam or a float baseline, report, save, plot."""

from __future__ import annotations

import sys

from lnsim.cli.options import add_option, spec_from_args, spec_parent
from lnsim.cli.output import write_json
from lnsim.train.config import THREADS, TRAIN_OPTIONS, TrainConfig, check_threads

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
    o.add_argument("--plot", metavar="FILE.png", help="write loss/accuracy curves and code histograms")
    o.add_argument("--save", metavar="FILE.npz", help="checkpoint after every epoch")
    o.add_argument("--resume", metavar="FILE.npz", help="continue from a checkpoint (give the original options)")
    o.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def config_from_args(args) -> TrainConfig:
    """The validated :class:`~lnsim.train.config.TrainConfig` of parsed ``train`` arguments."""
    spec = spec_from_args(args)
    return TrainConfig.from_options(spec, **{opt.name: getattr(args, opt.name) for opt in TRAIN_OPTIONS})


def run(args) -> int:
    """Train, print the table, write ``--json`` / ``--plot``; return the exit status (0)."""
    from lnsim.train import checkpoint
    from lnsim.train.report import format_table, summarise
    from lnsim.train.runner import train

    config = config_from_args(args)
    threads = check_threads(args.threads)
    resume = checkpoint.load(args.resume) if args.resume else None
    result = train(config, resume=resume, save=args.save, progress=not args.no_progress, threads=threads,
                   log=lambda message: print(f"lnsim train: {message}", file=sys.stderr))
    summary = summarise(result)
    print(format_table(summary))
    if args.json:
        write_json(args.json, summary, indent=1)
    if args.plot:
        from lnsim.train.plots import plot_run

        plot_run(result, summary, args.plot)
    return 0
