"""The ``lnsim train`` subcommand: train the MLP with B-bit Madam or a float baseline, report, save, plot.

``lnsim.cli`` registers it with :func:`add_train_parser` and calls :func:`run_train`; both raise
:class:`lnsim.SpecError` or :class:`ValueError` for invalid input, which the caller prints as one line
``lnsim: error: ...`` and exits with status 2. :func:`main` runs the subcommand on its own
(``python -m lnsim.train.cli``) with the same behaviour.
"""

from __future__ import annotations

import argparse
import json
import math
import sys

from lnsim.cli import float_or_raw, int_or_raw
from lnsim.spec import check_int
from lnsim.train.data import BUNDLED, DEFAULT_TEST_SIZE
from lnsim.train.optim import INITS, OPTIMIZERS

__all__ = ["add_train_parser", "run_train", "main"]

_DESCRIPTION = """\
Train a NumPy MLP (float32 forward and backward, ReLU, softmax cross-entropy) on a bundled scikit-learn data
set or an .npz file. lns-madam holds every weight and bias only as frozen signs and B-bit codes (per-tensor
sigma_star), decoded for the forward pass by the bit-true decoder and updated only by the golden integer
datapath; madam (float Madam with the spec's eta, eta_star and beta), adam and sgd are the float baselines on
the same model, split and seeds. eta decays toward eta0 in whole rungs when the training loss plateaus.
Prints a table per seed; optional JSON, PNG and checkpoints (resume with the same options plus --resume)."""


def add_train_parser(subparsers, spec_options_parent: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Register ``train`` on ``subparsers`` (from ``add_subparsers``) with the spec options of ``spec_options_parent``.

    The parsed arguments carry ``func=run_train``.
    """
    p = subparsers.add_parser("train", parents=[spec_options_parent], help="train an MLP with B-bit Madam or a baseline",
                              description=_DESCRIPTION)
    g = p.add_argument_group("training")
    g.add_argument("--optimizer", default="lns-madam", help=f"{' | '.join(OPTIMIZERS)} (default lns-madam)")
    g.add_argument("--dataset", default=None, help=f"bundled data set: {', '.join(BUNDLED)} (default digits)")
    g.add_argument("--data", metavar="FILE.npz", default=None,
                   help="your data instead: arrays X (samples x features), integer y, optional X_test, y_test")
    g.add_argument("--hidden", default="128", help="hidden layer widths, comma-separated; '' for none (default 128)")
    g.add_argument("--epochs", type=int_or_raw, default=100, help="epochs (default 100)")
    g.add_argument("--batch-size", type=int_or_raw, default=32, help="minibatch size (default 32)")
    g.add_argument("--seeds", type=int_or_raw, default=1, help="number of seeds (default 1)")
    g.add_argument("--seed", type=int_or_raw, default=0, help="first seed (default 0)")
    g.add_argument("--init", default="quantized", help=f"codes: {' | '.join(INITS)} (default quantized)")
    g.add_argument("--sigma-scale", type=float_or_raw, default=3.0,
                   help="sigma_star as a multiple of the usual init scale 1/sqrt(3 fan_in) (default 3)")
    g.add_argument("--schedule", default="plateau", help="plateau | constant (default plateau)")
    g.add_argument("--patience", type=int_or_raw, default=10, help="epochs without progress before a decay (default 10)")
    g.add_argument("--decay-factor", type=int_or_raw, default=2, help="divide eta in rungs by this (default 2)")
    g.add_argument("--threshold", type=float_or_raw, default=1e-3,
                   help="relative fall of the training loss that counts as progress (default 0.001)")
    g.add_argument("--lr", type=float_or_raw, default=None, help="learning rate of adam (default 0.001) and sgd (0.01)")
    g.add_argument("--momentum", type=float_or_raw, default=0.9, help="sgd momentum (default 0.9)")
    g.add_argument("--test-size", type=float_or_raw, default=DEFAULT_TEST_SIZE,
                   help=f"held-out share when the data has no test set (default {DEFAULT_TEST_SIZE})")
    g.add_argument("--threads", type=int_or_raw, default=1, help="threads for the kernels and BLAS (default 1)")
    o = p.add_argument_group("output")
    o.add_argument("--json", metavar="FILE", help="write the results as JSON")
    o.add_argument("--plot", metavar="FILE.png", help="write loss/accuracy curves and code histograms")
    o.add_argument("--save", metavar="FILE.npz", help="checkpoint after every epoch")
    o.add_argument("--resume", metavar="FILE.npz", help="continue from a checkpoint (give the original options)")
    o.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run_train)
    return p


def _hidden(text) -> tuple:
    parts = [t.strip() for t in str(text).split(",") if t.strip()]
    try:
        sizes = tuple(int(t) for t in parts)
    except ValueError:
        raise ValueError(f"hidden must be comma-separated integers, not {text!r}") from None
    return sizes


def _number(name, value, kind):
    ok = isinstance(value, kind) and not isinstance(value, bool)
    if kind is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not ok:
        raise ValueError(f"{name} must be {'an integer' if kind is int else 'a number'}, not {value!r}")
    return float(value) if kind is float else value


def config_from_args(args):
    """The :class:`~lnsim.train.runner.TrainConfig` named by parsed arguments (validated)."""
    from lnsim.cli import spec_from_args
    from lnsim.train.runner import TrainConfig

    a = argparse.Namespace(**vars(args))
    spec = spec_from_args(a)
    if a.dataset is not None and a.data is not None:
        raise ValueError("give --dataset or --data, not both")
    dataset = a.data if a.data is not None else (a.dataset or "digits")
    if a.data is None and dataset not in BUNDLED:
        raise ValueError(f"dataset must be one of {', '.join(BUNDLED)}, not {dataset!r} (use --data FILE.npz for files)")
    n_seeds = _number("seeds", a.seeds, int)
    first = _number("seed", a.seed, int)
    check_int("seeds", n_seeds, 1, 1000)
    check_int("seed", first, 0)
    return TrainConfig(
        spec=spec, optimizer=a.optimizer, dataset=dataset, hidden=_hidden(a.hidden),
        epochs=_number("epochs", a.epochs, int), batch_size=_number("batch_size", a.batch_size, int),
        seeds=tuple(range(first, first + n_seeds)), init=a.init, sigma_scale=_number("sigma_scale", a.sigma_scale, float),
        schedule=a.schedule, patience=_number("patience", a.patience, int),
        decay_factor=_number("decay_factor", a.decay_factor, int), threshold=_number("threshold", a.threshold, float),
        lr=None if a.lr is None else _number("lr", a.lr, float), momentum=_number("momentum", a.momentum, float),
        test_size=_number("test_size", a.test_size, float),
    )


def run_train(args) -> int:
    """Run ``lnsim train`` with parsed arguments; print the table; return the exit status (0).

    Raises
    ------
    SpecError, ValueError
        For invalid options or data (the caller prints ``lnsim: error: <message>`` and exits 2).
    """
    from lnsim.train import checkpoint
    from lnsim.train.report import format_table, summarise
    from lnsim.train.runner import train

    config = config_from_args(args)
    threads = check_int("threads", _number("threads", args.threads, int), 1, 256)
    resume = checkpoint.load(args.resume) if args.resume else None
    result = train(config, resume=resume, save=args.save, progress=not args.no_progress, threads=threads)
    summary = summarise(result)
    print(format_table(summary))
    if args.json:
        try:
            with open(args.json, "w") as f:
                json.dump(summary, f, indent=1)
                f.write("\n")
        except OSError as e:
            raise ValueError(f"json must be a writable file path, not {args.json!r} ({e.strerror})") from None
    if args.plot:
        from lnsim.train.plots import plot_run

        plot_run(result, summary, args.plot)
    return 0


def main(argv=None) -> int:
    """``lnsim train`` on its own: parse ``argv``, run, print errors as ``lnsim: error: ...`` (status 2)."""
    from lnsim.cli import spec_options

    class _Parser(argparse.ArgumentParser):
        def error(self, message):
            self.exit(2, f"lnsim: error: {message}\n")

    parser = _Parser(prog="lnsim")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    add_train_parser(sub, spec_options())
    args = parser.parse_args(["train", *(sys.argv[1:] if argv is None else argv)])
    try:
        return args.func(args)
    except ValueError as e:  # SpecError is a ValueError
        print(f"lnsim: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
