"""``lnsim prove``: formal proofs of the update unit's stream safety and datapath with SymbiYosys."""

from __future__ import annotations

import sys
from pathlib import Path

from lnsim.cli.options import spec_parent
from lnsim.cli.output import warn_spec
from lnsim.cli.verilog import hardware_spec
from lnsim.validation import SpecError

__all__ = ["add_parser", "run"]

_DESCRIPTION = ("Prove properties of the update unit's valid/ready handshake with yowasp-sby (smtbmc, boolector), "
                "bounded to --depth cycles from reset, under any valid/ready behaviour of its environment and any "
                "reset: no output without an input in flight, and a beat of the solver's choice, accepted in the "
                "first depth - latency cycles, leaves once, after exactly the beats accepted before it and exactly "
                "latency advancing cycles (counts and timing: payloads are not compared). --group datapath adds "
                "that the output equals the stages chained combinationally and that a NaN gradient keeps k and "
                "state; those are not yet proved (the solver does not finish). Prints PASS/FAIL per property; "
                "exits 1 on a failure, naming the counterexample trace (VCD).")


def add_parser(sub) -> None:
    """Register ``prove`` on ``sub`` (from ``add_subparsers``)."""
    p = sub.add_parser("prove", parents=[spec_parent(hardware=True)],
                       help="formal proofs of the update unit (yowasp-sby)", description=_DESCRIPTION)
    p.add_argument("--depth", type=int, default=None,
                   help="cycles checked, latency + 2 to 1000 (default latency + 4: beats accepted in the first "
                        "cycles are followed to their output)")
    p.add_argument("--group", choices=("stream", "datapath", "all"), default="stream",
                   help="stream (default): no_phantom and order, seconds; datapath: equivalence and nan_keeps, "
                        "the whole datapath in the solver (did not finish within 10 minutes at --bits 4); all: "
                        "both, one job each")
    p.add_argument("--workdir", metavar="DIR", default="lnsim-prove",
                   help="where the SymbiYosys job and any counterexample go (default ./lnsim-prove)")
    # No choices= here: the faults are lnsim_testbenches.formal.FAULTS, which imports Amaranth, and lnsim's
    # parser is built without it; the wrapper refuses another name in one line.
    p.add_argument("--fault", metavar="FAULT", default=None,
                   help="fault injection: stall ties the unit's o.ready high (it ignores back-pressure), "
                        "which the proof must catch")
    p.set_defaults(func=run)


def run(args) -> int:
    """Run the proofs and print one line per property; exit 0 only if every property holds, 1 otherwise."""
    spec, lanes = hardware_spec(args)
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
