"""``lnsim prove``: formal proofs of the update unit's stream safety and datapath with SymbiYosys."""

from __future__ import annotations

import sys
from pathlib import Path

from lnsim.cli.options import spec_parent
from lnsim.cli.output import warn_spec
from lnsim.cli.verilog import hardware_spec
from lnsim.validation import SpecError

__all__ = ["add_parser", "run"]

_DESCRIPTION = ("Prove properties of the update unit with yowasp-sby (smtbmc, boolector), in three groups, one job "
                "each. stream (k-induction, so every cycle of every run, under any valid/ready behaviour and any "
                "reset; or with --bmc bounded from reset): no output without an input in flight, and a beat of the "
                "solver's choice leaves once, after exactly the beats accepted before it and exactly latency "
                "advancing cycles. hold (k-induction): a stall changes no pipeline data register. datapath "
                "(bounded, no stalls): every output equals the stages chained combinationally applied to its input, "
                "for every input, and a NaN gradient keeps k and state. Prints PASS/FAIL per property; exits 1 on a "
                "failure, naming the counterexample trace (VCD).")


def add_parser(sub) -> None:
    """Register ``prove`` on ``sub`` (from ``add_subparsers``)."""
    p = sub.add_parser("prove", parents=[spec_parent(hardware=True)],
                       help="formal proofs of the update unit (yowasp-sby)", description=_DESCRIPTION)
    p.add_argument("--depth", type=int, default=None,
                   help="steps of induction (stream, hold; default 1) or cycles checked from reset (stream with "
                        "--bmc: at least latency + 2, default latency + 4, so beats accepted in the first cycles "
                        "are followed out; datapath: at least latency + 1, default latency + 3, three beats); at "
                        "most 1000")
    p.add_argument("--bmc", action="store_true",
                   help="prove the stream group by bounded model checking from reset (--depth cycles; a failure "
                        "comes with a counterexample trace from reset) instead of k-induction (every cycle of "
                        "every run; a failed induction step is UNKNOWN)")
    p.add_argument("--group", choices=("stream", "hold", "datapath", "all"), default="stream",
                   help="stream (default): no_phantom and order; hold: hold; datapath: equivalence and nan_keeps "
                        "(about 15-35 s at one lane); all: the three, one job each")
    p.add_argument("--unit", choices=("update", "engine"), default="update",
                   help="update (default): the update unit; engine: the update engine's streams "
                        "(lnsim_testbenches.formal_engine: no_phantom, order, tlast, raw, one job each) on an "
                        "engine of --addresses rows, --depth cycles from reset (then at least the engine's "
                        "latency + 2; default: enough that a beat of a second step is followed out)")
    p.add_argument("--addresses", type=int, default=None,
                   help="rows of the engine's memory, 1 to 64 (--unit engine only; default 2, which already "
                        "sees every length: 0, 1, 2 and 3 > 2)")
    p.add_argument("--workdir", metavar="DIR", default="lnsim-prove",
                   help="where the SymbiYosys job and any counterexample go (default ./lnsim-prove)")
    # No choices= here: the faults are lnsim_testbenches.formal.FAULTS, which imports Amaranth, and lnsim's
    # parser is built without it; the wrapper refuses another name in one line.
    p.add_argument("--fault", metavar="FAULT", default=None,
                   help="fault injection: stall ties the unit's o.ready (--unit engine: the engine's "
                        "m_axis_tready) high, so it ignores back-pressure, which the proof must catch")
    p.set_defaults(func=run)


def run(args) -> int:
    """Run the proofs and print one line per property; exit 0 only if every property holds, 1 otherwise."""
    spec, lanes = hardware_spec(args)
    if args.unit == "engine":
        return _run_engine(args, spec, lanes)
    if args.addresses is not None:
        raise SpecError("addresses is for --unit engine only (the rows of the engine's memory)")
    warn_spec(spec)
    from lnsim_testbenches.formal import GROUPS, prove

    groups = list(GROUPS) if args.group == "all" else [args.group]
    ok = True
    for group in groups:
        try:
            mode = "bmc" if args.bmc and group == "stream" else None
            result = prove(spec, lanes=lanes, depth=args.depth, mode=mode, fault=args.fault,
                           properties=GROUPS[group], workdir=Path(args.workdir) / group)
        except RuntimeError as e:
            raise SpecError(str(e)) from None
        ok = _report(group, GROUPS[group], result) and ok
    return 0 if ok else 1


def _run_engine(args, spec, lanes) -> int:
    """The engine's stream properties, one SymbiYosys job each (together they take longer than apart)."""
    if args.group != "stream":
        raise SpecError(f"group must be stream with --unit engine (its proof reads no payload), not {args.group!r}")
    warn_spec(spec)
    from lnsim_testbenches.formal_engine import PROPERTIES, prove_engine

    size = {} if args.addresses is None else {"addresses": args.addresses}
    ok = True
    for prop in PROPERTIES:
        try:
            result = prove_engine(spec, lanes=lanes, depth=args.depth, fault=args.fault, properties=(prop,),
                                  workdir=Path(args.workdir) / "engine" / prop, **size)
        except RuntimeError as e:
            raise SpecError(str(e)) from None
        ok = _report(prop, (prop,), result) and ok
    return 0 if ok else 1


def _report(job: str, properties, result) -> bool:
    """Print the verdict of each of ``properties``, proved together in ``result``, and the job's bound, time,
    work directory and counterexample; True if the job passed."""
    for prop in properties:
        if result.status == "PASS":
            verdict = "PASS"
        elif prop in result.failed:
            verdict = "UNKNOWN (the induction step failed; --bmc looks for a trace)" if result.status == "UNKNOWN" else "FAIL"
        else:
            verdict = "UNKNOWN (the job stopped at the first failure)" if result.failed else result.status
        print(f"{prop:<12} {verdict}")
    print(f"  {job}: {result.mode} depth {result.depth}, {result.seconds:.1f} s, job in {result.workdir}")
    if result.trace is not None:
        print(f"  counterexample: {result.trace}")
    if result.status == "ERROR":  # a tool failed: its last words say why
        print("\n".join(result.log.splitlines()[-15:]), file=sys.stderr)
    return result.status == "PASS"
