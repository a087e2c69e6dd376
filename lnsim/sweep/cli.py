"""The ``lnsim sweep`` subcommand: train (or measure the fidelity of) every point of a grid of specs.

``lnsim.cli`` registers it with :func:`add_sweep_parser` and calls :func:`run_sweep`, which raises
:class:`lnsim.SpecError` or ``ValueError`` for invalid input (printed as one line ``lnsim: error: ...``, exit 2).
"""

from __future__ import annotations

import argparse
import os
import sys

from lnsim.cli import float_or_raw, int_or_raw
from lnsim.spec import check_int
from lnsim.sweep.grid import AXES, Grid, read_grid_file
from lnsim.sweep.runner import BACKENDS

__all__ = ["add_sweep_parser", "run_sweep", "TRAIN_DEFAULTS", "SWEEP_DEFAULTS"]

#: Training options a sweep passes to every run, with ``lnsim train``'s defaults.
TRAIN_DEFAULTS = {"dataset": None, "data": None, "hidden": "128", "epochs": 100, "batch_size": 32, "init": "quantized",
                  "sigma_scale": 3.0, "schedule": "plateau", "patience": 10, "decay_factor": 2, "threshold": 1e-3,
                  "test_size": 0.25}

#: The sweep's own options that a grid file may also set.
SWEEP_DEFAULTS = {"seeds": 1, "seed": 0, "reference": True, "elements": 100_000, "steps": 30}

_DESCRIPTION = """\
Train B-bit Madam (lnsim train's MLP and defaults) at every point of a grid of specs and every seed, plus FP32
Madam once per seed (and per beta/bias correction) as the reference, in parallel worker processes (joblib; --backend dask for a cluster).
Every spec option takes a list (--eta0 0.001,0.004) or an inclusive integer range (--bits 6:12, --bits 4:16:2);
--dynamic-range R derives eta0 per bit width as ln(R)/(2**bits - 1). Unless given, eta is the whole number of
rungs nearest 0.01 and eta_star 8 x eta, both capped at the ladder. The whole grid is validated before any work.
Each finished run is saved at once under OUT/points/<key>; running the same command again skips finished runs.
Writes results.csv, results.json, summary.md and PNG plots into --out. --fidelity instead measures each spec's
integer update against float64 Madam (no training), into fidelity.csv/.json/.md/.png."""


def add_sweep_parser(subparsers, spec_options_parent: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Register ``sweep`` on ``subparsers`` (from ``add_subparsers``) with the spec options of
    ``spec_options_parent``, each of which then takes a list or range. The parsed arguments carry
    ``func=run_sweep``."""
    p = subparsers.add_parser("sweep", parents=[spec_options_parent], description=_DESCRIPTION,
                              help="train or measure every point of a grid of specs (parallel, resumable)")
    g = p.add_argument_group("grid")
    g.add_argument("--dynamic-range", metavar="R", help="derive eta0 per bit width from the dynamic range R "
                   "(instead of --eta0; base pow2: the finest frac_bits spanning R)")
    g.add_argument("--grid", metavar="FILE", help="options from a .toml, .yaml or .json file (one table: option = value "
                   "or list); options on the command line take precedence")
    g.add_argument("--skip-invalid", action="store_true", help="leave out invalid grid points instead of stopping")
    t = p.add_argument_group("training (as lnsim train)")
    t.add_argument("--dataset", help="digits | iris | wine | breast_cancer (default digits)")
    t.add_argument("--data", metavar="FILE.npz", help="your data instead (see lnsim train)")
    t.add_argument("--hidden", help="hidden layer widths, comma-separated (default 128)")
    for name, kind in (("epochs", int_or_raw), ("batch-size", int_or_raw), ("sigma-scale", float_or_raw),
                       ("patience", int_or_raw), ("decay-factor", int_or_raw), ("threshold", float_or_raw),
                       ("test-size", float_or_raw)):
        t.add_argument(f"--{name}", type=kind, help=f"(default {TRAIN_DEFAULTS[name.replace('-', '_')]})")
    t.add_argument("--init", help="quantized | uniform-rungs (default quantized)")
    t.add_argument("--schedule", help="plateau | constant (default plateau)")
    t.add_argument("--seeds", type=int_or_raw, help="seeds per point (default 1)")
    t.add_argument("--seed", type=int_or_raw, help="first seed (default 0)")
    t.add_argument("--no-reference", dest="reference", action="store_false", default=None,
                   help="do not train the FP32 Madam reference")
    f = p.add_argument_group("fidelity")
    f.add_argument("--fidelity", action="store_true", help="measure golden vs float64 Madam rung steps, no training")
    f.add_argument("--elements", type=int_or_raw, help=f"elements per fidelity run (default {SWEEP_DEFAULTS['elements']})")
    f.add_argument("--steps", type=int_or_raw, help=f"steps per fidelity run (default {SWEEP_DEFAULTS['steps']})")
    r = p.add_argument_group("running and output")
    r.add_argument("--out", default="lnsim-sweep", help="output directory (default ./lnsim-sweep)")
    r.add_argument("--jobs", type=int_or_raw, default=1, help="worker processes, -1 for one per core (default 1)")
    r.add_argument("--backend", default="loky", help=f"{' | '.join(BACKENDS)} (default loky: local processes)")
    r.add_argument("--scheduler", metavar="ADDRESS", help="Dask scheduler address for --backend dask")
    r.add_argument("--quiet", action="store_true", help="no progress bar or messages on stderr")
    # None marks "not given on the command line", so a grid file can fill it in (see _options).
    p.set_defaults(**{name: None for name in (*AXES, "no_bias_correction")}, func=run_sweep)
    return p


def _options(args) -> dict:
    """Every option by name: the command line's, else the grid file's, else the default."""
    known = {*AXES, *TRAIN_DEFAULTS, *SWEEP_DEFAULTS}
    from_file = read_grid_file(args.grid, known) if args.grid else {}
    given = {name: getattr(args, name, None) for name in known}
    if args.no_bias_correction:
        given["bias_correction"] = False
    options = {**TRAIN_DEFAULTS, **SWEEP_DEFAULTS}
    for name in known:
        if given.get(name) is not None:
            options[name] = given[name]
        elif name in from_file:
            options[name] = from_file[name]
        elif name in AXES:
            options[name] = None
    hidden = options["hidden"]
    if isinstance(hidden, (list, tuple)):
        options["hidden"] = ",".join(str(h) for h in hidden)
    elif isinstance(hidden, int):
        options["hidden"] = str(hidden)
    return options


def run_sweep(args, *, on_record=None) -> int:
    """Run ``lnsim sweep`` with parsed arguments; return the exit status (0 done, 130 interrupted, 1 a worker died).

    ``on_record(record)`` is called after each finished run is saved (tests interrupt a sweep with it).
    Raises ``SpecError``/``ValueError`` for invalid options, before any run starts.
    """
    from joblib.externals.loky.process_executor import TerminatedWorkerError

    from lnsim.sweep import outputs, plots
    from lnsim.sweep.runner import TaskFailed, check_backend, run_tasks
    from lnsim.files import atomic_write
    from lnsim.sweep.store import PointStore
    from lnsim.sweep.tasks import is_reference, plan_fidelity, plan_training

    o = _options(args)
    quiet = args.quiet

    def log(message):
        if not quiet or message.startswith("warning:"):
            print(f"lnsim sweep: {message}", file=sys.stderr)

    check_backend(args.backend, args.scheduler, args.jobs)
    grid = Grid.from_options({name: o[name] for name in AXES})
    points, skipped = grid.points(step_limit="half" if args.fidelity else "ladder", skip_invalid=args.skip_invalid)
    for message in skipped:
        log(f"skipped {message}")
    if args.fidelity:
        tasks = plan_fidelity(points, elements=o["elements"], steps=o["steps"], seed=o["seed"])
        what = f"{len(tasks)} fidelity runs ({o['elements']:,} elements x {o['steps']} steps)"
    else:
        n_seeds = check_int("seeds", o["seeds"], 1, 1000)
        first = check_int("seed", o["seed"], 0, 2**63 - 1000)
        if not isinstance(o["reference"], bool):
            raise ValueError(f"reference must be true or false, not {o['reference']!r}")
        train_options = {name: o[name] for name in TRAIN_DEFAULTS}
        tasks = plan_training(points, train_options, tuple(range(first, first + n_seeds)), reference=o["reference"])
        n_ref = sum(is_reference(t.meta) for t in tasks)
        what = f"{len(tasks)} training runs ({len(points)} points x {n_seeds} seeds + {n_ref} FP32 Madam)"
    store = PointStore(args.out)
    log(f"{what}; results in {args.out}")
    try:
        records = run_tasks(tasks, store, jobs=args.jobs, backend=args.backend, scheduler=args.scheduler,
                            progress=not quiet, log=log, on_record=on_record)
    except KeyboardInterrupt:
        print(f"lnsim sweep: interrupted; finished runs are saved in {store.directory}; run the same command "
              f"again to complete the sweep", file=sys.stderr)
        return 130
    except TerminatedWorkerError as e:
        print(f"lnsim sweep: a worker process died ({str(e).splitlines()[0]}); finished runs are saved in "
              f"{store.directory}; run the same command again to complete the sweep", file=sys.stderr)
        return 1
    except Exception as e:  # TaskFailed (a run raised), or the backend lost a worker (dask's KilledWorker, ...)
        reason = (str(e) if isinstance(e, TaskFailed) else f"{type(e).__name__}: {e}").splitlines()[0]
        print(f"lnsim sweep: a run failed ({reason}); finished runs are saved in {store.directory}",
              file=sys.stderr)
        return 1
    if args.fidelity:
        table = outputs.rows(tasks, records, outputs.FIDELITY_FIELDS)
        title = "lnsim sweep --fidelity: golden vs float64 Madam rung steps"
        text = outputs.fidelity_summary(table, title=title)
        files = [*outputs.write_rows(args.out, "fidelity", table, outputs.FIDELITY_FIELDS),
                 *plots.write_fidelity_plot(args.out, table, title=title)]
        md = os.path.join(args.out, "fidelity.md")
    else:
        table = outputs.rows(tasks, records, outputs.TRAIN_FIELDS)
        first = table[0]
        title = (f"B-bit Madam on {first['dataset']} ({first['model']} MLP, {first['epochs']} epochs, "
                 f"{len({r['seed'] for r in table})} seeds)")
        text = outputs.training_summary(table, title=title)
        files = [*outputs.write_rows(args.out, "results", table, outputs.TRAIN_FIELDS),
                 *plots.write_training_plots(args.out, table, title=title)]
        md = os.path.join(args.out, "summary.md")
    atomic_write(md, text)
    print(text, end="")
    log(f"wrote {', '.join(os.path.basename(f) for f in [md, *files])} in {args.out}")
    return 0
