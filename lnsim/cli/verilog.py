"""``lnsim verilog``: the update unit as plain Verilog, optionally linted with Verilator."""

from __future__ import annotations

import sys

from lnsim.cli.options import add_option, spec_from_args, spec_parent
from lnsim.cli.output import STDOUT, check_outputs, warn_spec
from lnsim.files import atomic_write
from lnsim.spec import DEPTH, LANES, engine_depth
from lnsim.validation import SpecError, check_int

__all__ = ["add_parser", "hardware_spec", "run"]


def add_parser(sub) -> None:
    """Register ``verilog`` on ``sub`` (from ``add_subparsers``)."""
    p = sub.add_parser(
        "verilog", parents=[spec_parent(hardware=True)], help="write the update unit as plain Verilog",
        description="Write the update unit (lnsim_rtl.UpdateUnit) as plain Verilog, with a header comment "
                    "giving the configuration and latency.",
    )
    p.add_argument("-o", "--output", metavar="FILE", help="output file (default: stdout)")
    p.add_argument("--name", default=None, help="module name (default lnsim_update_unit, or lnsim_update_engine)")
    p.add_argument("--unit", choices=("update", "engine"), default="update",
                   help="update: the update unit; engine: the update engine (the unit beside a memory of "
                        "--depth rows, AXI4-Stream ports; docs/rtl.md)")
    add_option(p, DEPTH)
    p.add_argument("--lint", action="store_true", help="also lint it with Verilator (-Wall, named waivers)")
    p.set_defaults(func=run)


def hardware_spec(args):
    """The spec and the lane count of parsed hardware arguments (spec options and ``--lanes``)."""
    return spec_from_args(args), check_int("lanes", args.lanes, *LANES.bounds)


def run(args) -> int:
    """Write the Verilog to ``-o`` (or stdout); with ``--lint``, exit 1 unless Verilator finds it clean."""
    from lnsim_rtl.verilog import PLAIN_NAME

    spec, lanes = hardware_spec(args)
    engine = args.unit == "engine"
    depth = engine_depth(engine, args.depth)
    if args.name is None:
        args.name = "lnsim_update_engine" if engine else "lnsim_update_unit"
    if not PLAIN_NAME.fullmatch(args.name):
        raise SpecError(f"name must be a plain Verilog identifier (letters, digits, _; not a digit first), "
                        f"not {args.name!r}")
    to_stdout = args.output in (None, STDOUT)
    if args.lint and to_stdout:
        raise SpecError("lint needs -o FILE")
    check_outputs(output=args.output, stdout_ok=("output",))
    warn_spec(spec)
    if args.lint:
        from lnsim_testbenches.simulator import BenchError, check_tools

        try:
            check_tools(("perl",))  # before the Verilog is generated
        except BenchError as e:
            raise SpecError(str(e)) from None
    if engine:
        from lnsim_rtl.verilog import generate_engine_verilog

        text = generate_engine_verilog(spec, depth, lanes=lanes, name=args.name)
    else:
        from lnsim_rtl import generate_verilog

        text = generate_verilog(spec, lanes=lanes, name=args.name)
    if to_stdout:
        sys.stdout.write(text)
    else:
        try:
            atomic_write(args.output, text)
        except OSError as e:
            raise SpecError(f"output must be a writable file path, not {args.output!r} ({e.strerror})") from None
        print(f"wrote {args.output}: module {args.name}, {spec.fmt.describe()}, {lanes} lane(s)"
              + (f", {depth} rows" if engine else ""), file=sys.stderr)
    if args.lint:
        from lnsim_testbenches import runner

        status, messages = runner.lint(args.output)
        waived = ", ".join(runner.LINT_WAIVERS)
        if status != 0:
            print(messages, file=sys.stderr)
            print(f"lnsim verilog: Verilator lint (-Wall, waived: {waived}) failed", file=sys.stderr)
            return 1
        print(f"Verilator lint: clean (-Wall, waived: {waived})", file=sys.stderr)
    return 0
