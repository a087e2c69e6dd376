"""``lnsim prove``: formal proofs of the update unit's stream safety and datapath with SymbiYosys."""

from __future__ import annotations

import sys
from pathlib import Path

from lnsim.cli.options import spec_parent
from lnsim.cli.output import warn_spec
from lnsim.cli.verilog import hardware_spec
from lnsim.validation import SpecError, check_int

__all__ = ["add_parser", "run"]

_DESCRIPTION = ("Prove properties of the update unit with yowasp-sby (smtbmc, boolector) under any valid/ready "
                "behaviour of its environment and any reset: no output without an input in flight, every "
                "accepted beat leaves once, in order, after exactly latency advancing cycles, with the output of "
                "the stages chained combinationally, and a NaN gradient keeps k and state. Prints PASS/FAIL per "
                "property; exits 1 on a failure, naming the counterexample trace (VCD). Small formats (--bits 4) "
                "keep the solver fast.")


def add_parser(sub) -> None:
    """Register ``prove`` on ``sub`` (from ``add_subparsers``)."""
    from lnsim_testbenches.formal import FAULTS

    p = sub.add_parser("prove", parents=[spec_parent(hardware=True)],
                       help="formal proofs of the update unit (yowasp-sby)", description=_DESCRIPTION)
    p.add_argument("--depth", type=int, default=None,
                   help="cycles checked (default latency + 4, so a beat accepted in the first cycles leaves)")
    p.add_argument("--group", choices=("stream", "datapath", "all"), default="stream",
                   help="stream (default): no_phantom and order, seconds; datapath: equivalence and nan_keeps, "
                        "the whole datapath in the solver (did not finish within 10 minutes at --bits 4); all: "
                        "both, one job each")
    p.add_argument("--workdir", metavar="DIR", default="lnsim-prove",
                   help="where the SymbiYosys job and any counterexample go (default ./lnsim-prove)")
    p.add_argument("--fault", choices=FAULTS, default=None,
                   help="fault injection: stall ties the unit's o.ready high (it ignores back-pressure), "
                        "which the proof must catch")
    p.set_defaults(func=run)


def run(args) -> int:
    """Run the proofs and print one line per property; exit 0 only if every property holds, 1 otherwise."""
    spec, lanes = hardware_spec(args)
    if args.depth is not None:
        check_int("depth", args.depth, 1, 1000)
    warn_spec(spec)
    from lnsim_testbenches.formal import GROUPS, prove

    groups = list(GROUPS) if args.group == "all" else [args.group]
    ok = True
    for group in groups:
        try:
            result = prove(spec, lanes=lanes, depth=args.depth, fault=args.fault, properties=GROUPS[group],
                           workdir=Path(args.workdir) / group)
        except RuntimeError as e:
            raise SpecError(str(e)) from None
        for prop in GROUPS[group]:
            if result.status == "PASS":
                verdict = "PASS"
            elif prop in result.failed:
                verdict = "FAIL"
            else:
                verdict = "UNKNOWN (the job stopped at the first failure)" if result.failed else result.status
            print(f"{prop:<12} {verdict}")
        print(f"  {group}: bmc depth {result.depth}, {result.seconds:.1f} s, job in {result.workdir}")
        if result.trace is not None:
            print(f"  counterexample: {result.trace}")
        if result.status == "ERROR":  # a tool failed: its last words say why
            print("\n".join(result.log.splitlines()[-15:]), file=sys.stderr)
        ok = ok and result.status == "PASS"
    return 0 if ok else 1
