"""``lnsim sweep``: train (or measure the fidelity of) every point of a grid of specs, in parallel, resumable.

Every spec flag takes a list or a range (:func:`lnsim.sweep.grid.parse_axis`); the training flags are
``lnsim train``'s (:data:`lnsim.train.config.TRAIN_OPTIONS`); a grid file may set any of them.
"""

from __future__ import annotations

import os
import sys

from lnsim.cli.options import add_option, int_or_raw, spec_parent
from lnsim.spec import DYNAMIC_RANGE
from lnsim.sweep.grid import AXES, Grid, read_grid_file
from lnsim.sweep.runner import BACKENDS
from lnsim.sweep.tasks import SWEEP_OPTIONS
from lnsim.train.config import MAX_SEEDS, TRAIN_OPTIONS
from lnsim.validation import check_bool, check_int

__all__ = ["add_parser", "run", "SWEEP_TRAINING"]

#: The training options a sweep passes to every run (the others are fixed: lns-madam and its FP32 reference).
SWEEP_TRAINING = tuple(o for o in TRAIN_OPTIONS if o.name not in ("optimizer", "lr", "momentum"))

_DESCRIPTION = """\
Train B-bit Madam (lnsim train's model, the MLP unless --model or --task says otherwise, and its defaults) at every point of a grid of specs and every seed, plus FP32
Madam once per seed (and per beta/bias correction) as the reference, in parallel worker processes (joblib; --backend dask for a cluster).
Every spec option takes a list (--eta0 0.001,0.004) or an inclusive integer range (--bits 6:12, --bits 4:16:2);
--dynamic-range R derives eta0 per bit width as ln(R)/(2**bits - 1). Unless given, eta is the whole number of
rungs nearest 0.01 and eta_star 8 x eta, both capped at the ladder. The whole grid is validated before any work.
Each finished run is saved at once under OUT/points/<key>; running the same command again skips finished runs.
Writes results.csv, results.json, summary.md and PNG plots into --out. --fidelity instead measures each spec's
integer update against float64 Madam (no training), into fidelity.csv/.json/.md/.png."""


def add_parser(sub) -> None:
    """Register ``sweep`` on ``sub`` (from ``add_subparsers``). Every option the command line does not give is
    None, so a grid file can fill it in (see :func:`options`)."""
    p = sub.add_parser("sweep", parents=[spec_parent()], description=_DESCRIPTION,
                       help="train or measure every point of a grid of specs (parallel, resumable)")
    g = p.add_argument_group("grid")
    add_option(g, DYNAMIC_RANGE)
    g.add_argument("--grid", metavar="FILE", help="options from a .toml, .yaml or .json file (one table: option = value "
                   "or list); options on the command line take precedence")
    g.add_argument("--skip-invalid", action="store_true", help="leave out invalid grid points instead of stopping")
    t = p.add_argument_group("training (as lnsim train)")
    for opt in SWEEP_TRAINING:
        add_option(t, opt)
    by_name = {o.name: o for o in SWEEP_OPTIONS}
    add_option(t, by_name["reference"])
    f = p.add_argument_group("fidelity")
    f.add_argument("--fidelity", action="store_true", help="measure golden vs float64 Madam rung steps, no training")
    add_option(f, by_name["elements"])
    add_option(f, by_name["steps"])
    r = p.add_argument_group("running and output")
    r.add_argument("--out", default="lnsim-sweep", help="output directory (default ./lnsim-sweep)")
    r.add_argument("--jobs", type=int_or_raw, default=1, help="worker processes, -1 for one per core (default 1)")
    r.add_argument("--backend", default="loky", help=f"{' | '.join(BACKENDS)} (default loky: local processes)")
    r.add_argument("--scheduler", metavar="ADDRESS", help="Dask scheduler address for --backend dask")
    r.add_argument("--quiet", action="store_true", help="no progress bar or messages on stderr")
    p.set_defaults(func=run)


def options(args) -> dict:
    """Every option by name: the command line's, else the grid file's, else None (the option's default)."""
    known = {*AXES, *(o.name for o in SWEEP_TRAINING), *(o.name for o in SWEEP_OPTIONS)}
    from_file = read_grid_file(args.grid, known) if args.grid else {}
    out = {}
    for name in known:
        given = getattr(args, name, None)
        out[name] = given if given is not None else from_file.get(name)
    return out


def run(args, *, on_record=None) -> int:
    """Run ``lnsim sweep``; return the exit status (0 done, 130 interrupted, 1 a worker died or a run failed).

    ``on_record(record)`` is called after each finished run is saved (tests interrupt a sweep with it).
    Raises ``SpecError``/``ValueError`` for invalid options, before any run starts.
    """
    from joblib.externals.loky.process_executor import TerminatedWorkerError

    from lnsim.files import atomic_write
    from lnsim.sweep import outputs, plots
    from lnsim.sweep.runner import TaskFailed, check_backend, run_tasks
    from lnsim.sweep.store import PointStore
    from lnsim.sweep.tasks import is_reference, plan_fidelity, plan_training

    o = options(args)
    defaults = {opt.name: opt.default for opt in (*SWEEP_TRAINING, *SWEEP_OPTIONS)}
    value = {name: defaults[name] if o[name] is None else o[name] for name in defaults}
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
        tasks = plan_fidelity(points, elements=value["elements"], steps=value["steps"], seed=value["seed"])
        what = f"{len(tasks)} fidelity runs ({value['elements']:,} elements x {value['steps']} steps)"
    else:
        n_seeds = check_int("seeds", value["seeds"], 1, MAX_SEEDS)
        first = check_int("seed", value["seed"], 0, 2**63 - MAX_SEEDS)
        reference = check_bool("reference", value["reference"])
        train_options = {opt.name: o[opt.name] for opt in SWEEP_TRAINING if opt.name not in ("seeds", "seed")}
        tasks = plan_training(points, train_options, tuple(range(first, first + n_seeds)), reference=reference)
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
        head = table[0]
        title = (f"B-bit Madam on {head['dataset']} ({outputs.model_label(head['model'])}, {head['epochs']} epochs, "
                 f"{len({r['seed'] for r in table})} seeds)")
        text = outputs.training_summary(table, title=title)
        files = [*outputs.write_rows(args.out, "results", table, outputs.TRAIN_FIELDS),
                 *plots.write_training_plots(args.out, table, title=title)]
        md = os.path.join(args.out, "summary.md")
    atomic_write(md, text)
    print(text, end="")
    log(f"wrote {', '.join(os.path.basename(f) for f in [md, *files])} in {args.out}")
    return 0
