"""``lnsim vectors``: golden vectors of the update unit as ``$readmemh`` files, with a plain Verilog testbench."""

from __future__ import annotations

import sys

from lnsim_testbenches.vectors import VECTORS_OPTIONS

from lnsim.cli.options import add_option, spec_parent
from lnsim.cli.output import warn_spec
from lnsim.cli.verilog import hardware_spec

__all__ = ["add_parser", "run"]


def add_parser(sub) -> None:
    """Register ``vectors`` on ``sub`` (from ``add_subparsers``)."""
    p = sub.add_parser(
        "vectors", parents=[spec_parent(hardware=True)],
        help="write golden vectors and a plain Verilog testbench of the update unit, for any simulator",
        description="Write random update vectors with evolving state (inputs.hex) and the golden model's outputs "
                    "(expected.hex) as $readmemh files, the unit's Verilog (update_unit.v) and a Verilog-2005 "
                    "testbench (tb_update_unit.v) streaming them through it with random valid/ready stalls; "
                    "README.txt there gives the commands for Verilator, Icarus Verilog and xsim.",
    )
    for opt in VECTORS_OPTIONS:
        add_option(p, opt, default=opt.default)
    p.add_argument("--out", metavar="DIR", default="lnsim-vectors", help="output directory (default ./lnsim-vectors)")
    p.add_argument("--no-stalls", action="store_true", help="the testbench holds valid and ready high")
    p.set_defaults(func=run)


def run(args) -> int:
    """Write the files into ``--out`` and name them on stderr."""
    from lnsim_testbenches.vectors import write_vectors

    spec, lanes = hardware_spec(args)
    warn_spec(spec)
    paths = write_vectors(spec, args.out, lanes=lanes, vectors=args.vectors, seed=args.seed,
                          stalls=not args.no_stalls)
    beats = len(paths["inputs.hex"].read_text().splitlines())
    print(f"wrote {args.out}: {beats * lanes} vectors ({beats} beats of {lanes} lane(s)), {spec.fmt.describe()}; "
          f"{', '.join(paths)}", file=sys.stderr)
    return 0
