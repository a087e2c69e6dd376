"""``lnsim synth``: the command line of :mod:`lnsim.fpga` (synthesise and place-and-route a unit on an FPGA,
report its cost; see docs/hardware.md).

A tool failure is a :class:`lnsim.fpga.SynthError`, which :func:`run` prints as one line ``lnsim: error: ...``
naming the log file, and returns 1. A failed placement (:class:`lnsim.fpga.PlacementError`) prints the
synthesis-level report first (and writes it to ``--json``), its error line saying what does not fit.
"""

from __future__ import annotations

import io
import sys

from lnsim.cli.options import add_option, int_or_raw, spec_from_args, spec_parent, spec_values
from lnsim.cli.output import check_outputs, check_plot_path, text_stream, warn_spec, write_json
from lnsim.files import atomic_write
from lnsim.fpga import (SWEEP_BITS, SYNTH_OPTIONS, PlacementError, SynthError, check_sweep_jobs, check_synth_options,
                        format_report, format_sweep_row, plot_sweep, run_sweep, synthesize, write_sweep_csv)
from lnsim.spec import DEPTH, Spec
from lnsim.validation import SpecError

__all__ = ["add_parser", "run"]


_DESCRIPTION = """\
Synthesise (Yosys) and place-and-route (nextpnr) the update unit, or the fixed-point linear baseline
(--unit linear: w <- sat(w - lr*g), B bits), or the update engine (--unit engine --depth N: the unit beside
N rows of weights in block RAM, AXI4-Stream in and out), for an FPGA, in a temporary directory, and report the unit's
LUTs, flip-flops, block RAMs and DSPs, Fmax, the critical path, the placement seed and the tool versions.
--no-place stops after nextpnr's packing (seconds): the cells and whether the unit fits the device, no Fmax.
--sweep runs both units over bits {8, 10, 12, 16} x lanes {1, 4} (--jobs at a time) and writes a CSV and a PNG."""


def add_parser(sub) -> None:
    """Register ``synth`` on ``sub`` (from ``add_subparsers``): the spec's flags, ``--lanes``, the flow's options."""
    p = sub.add_parser("synth", parents=[spec_parent(hardware=True)], description=_DESCRIPTION,
                              help="synthesise and place-and-route the update unit, report LUTs, FFs and Fmax")
    g = p.add_argument_group("synthesis")
    options = {o.name: o for o in SYNTH_OPTIONS}
    for name in ("target", "unit", "seed", "freq"):
        add_option(g, options[name], default=options[name].default)
    add_option(g, DEPTH)
    g.add_argument("--no-pack-mult", dest="pack_mult", action="store_false",
                   help="ECP5: leave the registers after each multiplier in the fabric (synth_ecp5's netlist as is)")
    g.add_argument("--no-place", dest="place", action="store_false",
                   help="synthesis and nextpnr's packing only: the cells and whether the unit fits, no Fmax")
    g.add_argument("--keep", action="store_true", help="keep the work directory (always kept after a failure)")
    add_option(g, options["timeout"], default=options["timeout"].default)
    o = p.add_argument_group("output")
    o.add_argument("--json", metavar="FILE",
                   help="write the report (or the sweep's reports) as JSON (- for stdout; the table then goes to stderr)")
    o.add_argument("--sweep", action="store_true",
                   help="both units over bits {8,10,12,16} x lanes {1,4} (ignores --bits, --lanes, --unit)")
    o.add_argument("--jobs", type=int_or_raw, default=1, metavar="N",
                   help="--sweep: configurations synthesised at a time, 1..16 (default 1)")
    o.add_argument("--csv", metavar="FILE", default="synth-sweep.csv", help="sweep table (default synth-sweep.csv)")
    o.add_argument("--plot", metavar="FILE.png", default="synth-sweep.png",
                   help="sweep plot, LUTs and Fmax vs bits (default synth-sweep.png)")
    p.set_defaults(func=run)


def _progress(message: str) -> None:
    print(f"lnsim synth: {message}", file=sys.stderr, flush=True)


def _write(path: str, writer, option: str) -> None:
    """Write what ``writer(text_file)`` writes to ``path``, atomically (a cut-short sweep keeps its last table)."""
    text = io.StringIO(newline="")
    writer(text)
    try:
        atomic_write(path, text.getvalue(), option=option)
    except OSError as e:
        raise SpecError(f"{option} must be a writable file path, not {path!r} ({e.strerror})") from None
    except ValueError as e:
        raise SpecError(str(e)) from None


def run(args) -> int:
    """Run ``lnsim synth`` for parsed arguments; returns the exit status (1 when a tool fails)."""
    # The options before the spec, and --lanes and --unit even for the sweep, which ignores them.
    check_synth_options(target=args.target, unit=args.unit, lanes=args.lanes, seed=args.seed, freq_mhz=args.freq,
                        timeout=args.timeout, depth=args.depth)
    jobs = check_sweep_jobs(args.jobs)
    spec = spec_from_args(args)
    if args.sweep:
        check_plot_path(args.plot)
    check_outputs(json=args.json, **({"csv": args.csv, "plot": args.plot} if args.sweep else {}))
    out = text_stream(args.json)
    opts = dict(target=args.target, seed=args.seed, freq_mhz=args.freq, keep=args.keep, timeout=args.timeout,
                pack_mult=args.pack_mult, place=args.place)
    try:
        if not args.sweep:
            warn_spec(spec)
            try:
                r = synthesize(spec, lanes=args.lanes, unit=args.unit, depth=args.depth, progress=_progress, **opts)
            except PlacementError as e:  # the synthesis-level report, then the error line
                print(format_report(e.report), file=out, flush=True)
                if args.json:
                    write_json(args.json, e.report)
                raise
            print(format_report(r), file=out)
            if args.json:
                write_json(args.json, r)
            return 0
        specs = {bits: Spec.from_options(**{**spec_values(args), "bits": bits}) for bits in SWEEP_BITS}
        for bits, s in specs.items():
            warn_spec(s, prefix=f"B={bits}: ")

        def on_row(row, done):
            print(format_sweep_row(row), file=out, flush=True)
            # After every row: a long sweep cut short keeps what it has (in sweep order, from the finished rows).
            _write(args.csv, lambda f: write_sweep_csv(f, done), "csv")

        rows = run_sweep(specs, jobs=jobs, progress=_progress, on_row=on_row, **opts)
        plot_sweep(rows, args.plot, args.target)
        if args.json:
            write_json(args.json, rows)
        _progress(f"wrote {args.csv} and {args.plot}")
        return 0
    except SynthError as e:
        print(f"lnsim: error: {e}", file=sys.stderr)
        return 1
