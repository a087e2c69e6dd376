"""``lnsim verify``: co-simulate the generated Verilog (Verilator, cocotb) against the golden model."""

from __future__ import annotations

import sys
import time

from lnsim import tables
from lnsim.cli.options import add_option, spec_parent
from lnsim.cli.output import check_outputs, text_stream, warn_spec, write_json
from lnsim.cli.verilog import hardware_spec
from lnsim.validation import SpecError
from lnsim_testbenches.verify import ENGINES, VERIFY_OPTIONS

__all__ = ["add_parser", "run", "ProgressLine"]

_DESCRIPTION = ("Build the update unit's Verilog in Verilator (cached per configuration) and check it bit for bit "
                "against the golden model: random vectors with evolving state and random stalls, directed corners "
                "and a reset mid-stream. Exits 1 on any mismatch, after writing a report of the first mismatching "
                "vectors and a VCD trace, and naming the first pipeline stage that differs from the golden model.")


def add_parser(sub) -> None:
    """Register ``verify`` on ``sub`` (from ``add_subparsers``)."""
    p = sub.add_parser("verify", parents=[spec_parent(hardware=True)],
                       help="co-simulate the generated Verilog (Verilator, cocotb) against the golden model",
                       description=_DESCRIPTION)
    for opt in VERIFY_OPTIONS:
        add_option(p, opt, default=opt.default)
    p.add_argument("--json", metavar="FILE", help="also write the results as JSON (- for stdout; the table then goes to stderr)")
    p.add_argument("--report-dir", metavar="DIR", default="lnsim-verify-report",
                   help="where a mismatch report and VCD go (default ./lnsim-verify-report)")
    p.add_argument("--exhaustive", action="store_true",
                   help="also run all 2**16 gradient bit patterns (16-bit gradient formats; skipped, with a note, "
                        "for float32)")
    p.add_argument("--no-stalls", action="store_true", help="no random valid/ready stalls")
    p.add_argument("--engine", choices=ENGINES, default=ENGINES[0],
                   help="batch (default): the unit in a compiled C++ harness, checked against the golden model in "
                        "NumPy, some 30 times faster; cocotb: the cocotb bench, a Python loop per cycle. The same "
                        "vectors and report; a mismatch is replayed through cocotb for the VCD either way")
    p.add_argument("--inject-fault", metavar="TABLE:INDEX", default=None,
                   help="build the RTL with one bit of a table entry flipped (log:INDEX or antilog:INDEX; the golden "
                        "model keeps the true table), to see the bench catch it: exits 1 naming the stage")
    p.add_argument("--coverage", action="store_true",
                   help="also count the functional coverage bins over the vectors run (gradient classes, the clamp, "
                        "code saturation, every log/antilog table segment, state and bias-correction regimes, "
                        "back-pressure with --engine cocotb), print them and exit 1 if an applicable bin is never hit")
    p.set_defaults(func=run)


class ProgressLine:
    """Progress of a verify run on stderr: one line per test, rewritten in place on a terminal."""

    def __init__(self, stream=None, period: float = 1.0):
        self._stream = sys.stderr if stream is None else stream
        self._period = period
        self._tty = self._stream.isatty()
        self._last = {}

    def __call__(self, test: str, done: int, total: int) -> None:
        now = time.monotonic()
        finished = done >= total
        if not finished and now - self._last.get(test, -1e9) < self._period:
            return
        self._last[test] = now
        pct = 100.0 * done / total if total else 100.0
        line = f"lnsim verify: {test} {done:,}/{total:,} vectors ({pct:.0f}%)"
        if self._tty:
            self._stream.write("\r" + line + ("\n" if finished else ""))
        else:
            self._stream.write(line + "\n")
        self._stream.flush()


def run(args) -> int:
    """Run the co-simulation and print its report; exit 1 on a mismatch or a bench error (or, with ``--coverage``,
    an applicable coverage bin never hit), 2 on a build error."""
    spec, lanes = hardware_spec(args)
    check_outputs(json=args.json)
    warn_spec(spec)
    from lnsim_testbenches import runner, verify

    if args.inject_fault:
        try:
            runner.fault_tables(spec, args.inject_fault)
        except ValueError as e:
            raise SpecError(str(e)) from None

    def log(message):
        print(f"lnsim verify: {message}", file=sys.stderr)

    try:
        r = verify.verify(spec, lanes=lanes, vectors=args.vectors, seed=args.seed, report_dir=args.report_dir,
                          stalls="none" if args.no_stalls else "random", exhaustive=args.exhaustive,
                          fault=args.inject_fault, progress=ProgressLine(), log=log, engine=args.engine,
                          coverage=args.coverage)
    except runner.BenchError as e:
        print(f"lnsim: error: {str(e).splitlines()[0]}", file=sys.stderr)
        return 2
    out = text_stream(args.json)
    print(f"configuration     {spec.fmt.describe()}, {spec.cfg.grad_format.value} gradients, {lanes} lane(s), "
          f"latency {r['latency']} cycles", file=out)
    print(f"vectors checked   {r['vectors']:,}{_vector_parts(r['tests'], verify.TEST_LABELS)}", file=out)
    print(f"vectors/s         {r['vectors_per_second']:,.0f} ({r['engine']} engine)", file=out)
    print(f"mismatches        {r['mismatches']:,}", file=out)
    for name, reason in r["skipped"].items():
        print(f"skipped           {verify.TEST_LABELS[name]}: {reason}", file=out)
    failed = r["mismatches"] > 0 or bool(r["errors"]) or "report" in r
    for e in r["errors"]:
        print(f"error             {e}", file=out)
    if "first_differing_stage" in r:
        print(f"first differing   {r['first_differing_stage']['summary']}", file=out)
    if failed:
        if r.get("vcd"):
            print(f"VCD trace         {r['vcd']}", file=out)
        if r.get("report"):
            print(f"mismatch report   {r['report']}", file=out)
    if args.coverage:
        _print_coverage(r["coverage"], r["coverage_never_hit"], out)
        failed = failed or bool(r["coverage_never_hit"])
    if args.json:
        write_json(args.json, {**r, "spec": tables.spec_summary(spec)})
    return 1 if failed else 0


def _print_coverage(counts: dict, unhit: list, out) -> None:
    """The coverage table (bin, hits; ``n/a`` where not applicable) and the line naming the bins never hit."""
    print("\ncoverage bin                hits", file=out)
    for name, hits in counts.items():
        print(f"{name:<26}  {'n/a' if hits is None else f'{hits:,}'}", file=out)
    na = sum(h is None for h in counts.values())
    applicable = len(counts) - na
    if unhit:
        print(f"{len(unhit)} bins never hit: {', '.join(unhit)}", file=out)
    else:
        print(f"all {applicable} applicable bins hit" + (f" ({na} not applicable)" if na else ""), file=out)


def _vector_parts(tests: dict, labels: dict) -> str:
    """`` = 2,000 random + 31,200 directed corners + ...``: why more vectors are checked than ``--vectors`` asks
    for (the directed and reset tests come on top of the random ones); "" for a single test."""
    parts = [f"{t['vectors']:,} {labels.get(name, name)}" for name, t in tests.items() if t.get("vectors")]
    return f" = {' + '.join(parts)}" if len(parts) > 1 else ""
