"""The ``lnsim`` command line: one command, one subcommand per job, the same spec options everywhere."""

from __future__ import annotations

import argparse
import json
import math
import sys

from lnsim.files import atomic_write
from lnsim.spec import ONE_RUNG_BUDGET, Base, LNSFormat, MadamConfig, Spec, SpecError, check_int

__all__ = ["main", "spec_options", "spec_from_args", "int_or_raw", "float_or_raw", "default_eta_rungs",
           "default_eta_star_rungs", "DEFAULT_ETA0", "DEFAULT_ETA", "DEFAULT_STAR_FACTOR"]

#: Defaults of every subcommand: eta0 of the natural base, the learning rate eta aims at, eta_star / eta.
DEFAULT_ETA0 = 0.001
DEFAULT_ETA = 0.01
DEFAULT_STAR_FACTOR = 8
#: Most lanes the hardware subcommands accept.
_MAX_LANES = 64


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors: ``lnsim: error: <message>``, exit status 2, no usage dump."""

    def error(self, message):
        self.exit(2, f"lnsim: error: {message}\n")


def int_or_raw(text: str):
    """Parse an int, or pass the raw text on so the spec names it in its own message."""
    try:
        return int(text)
    except ValueError:
        return text


def float_or_raw(text: str):
    """Parse a float, or pass the raw text on so the spec names it in its own message."""
    try:
        return float(text)
    except ValueError:
        return text


def default_eta_rungs(fmt: LNSFormat, limit: int | None = None) -> int:
    """eta when none is given, in rungs: the whole number nearest DEFAULT_ETA / eta0, at least 1, at most
    ``limit`` (default the ladder, 2**B - 1)."""
    limit = fmt.code_max if limit is None else limit
    return min(max(1, math.floor(DEFAULT_ETA / fmt.eta0 + 0.5)), limit)


def default_eta_star_rungs(eta_rungs: int, fmt: LNSFormat, limit: int | None = None) -> int:
    """eta_star when none is given, in rungs: DEFAULT_STAR_FACTOR x eta, at most ``limit`` (default the
    ladder) but never below eta."""
    limit = fmt.code_max if limit is None else limit
    return max(eta_rungs, min(DEFAULT_STAR_FACTOR * eta_rungs, limit))


def spec_options(hardware: bool = False) -> argparse.ArgumentParser:
    """A parent parser with the spec's options, named identically in every subcommand."""
    p = argparse.ArgumentParser(add_help=False)
    g = p.add_argument_group("spec")
    g.add_argument("--bits", type=int_or_raw, default=12, help="code width B, 2..24 (default 12)")
    g.add_argument("--base", default="natural", help="'natural' (eta0) or 'pow2' (eta0 = ln2/2**frac-bits)")
    g.add_argument("--eta0", type=float_or_raw, default=None, help=f"base precision, natural base (default {DEFAULT_ETA0})")
    g.add_argument("--frac-bits", type=int_or_raw, default=None, help="m for --base pow2, 0..16")
    g.add_argument("--eta", type=float_or_raw, default=None, help=f"learning rate, a multiple of eta0 (default: the whole rungs nearest {DEFAULT_ETA})")
    g.add_argument("--eta-star", type=float_or_raw, default=None, help=f"largest step, a multiple of eta0 (default {DEFAULT_STAR_FACTOR} x eta, at most the ladder)")
    g.add_argument("--eta-rungs", type=int_or_raw, default=None, help="learning rate in rungs (instead of --eta)")
    g.add_argument("--eta-star-rungs", type=int_or_raw, default=None, help="largest step in rungs (instead of --eta-star)")
    g.add_argument("--beta-shift", type=int_or_raw, default=10, help="s, beta = 1 - 2**-s, 1..16 (default 10)")
    g.add_argument("--no-bias-correction", action="store_true", help="do not divide the EMA by 1 - beta**t")
    g.add_argument("--grad-format", default="bfloat16", help="bfloat16 (default), float16 or float32")
    g.add_argument("--state-bits", type=int_or_raw, default=32, help="second-moment state width (default 32)")
    g.add_argument("--log-frac-bits", type=int_or_raw, default=16, help="F, log-domain fraction bits (default 16)")
    g.add_argument("--table-index-bits", type=int_or_raw, default=7, help="a, log/antilog table index bits (default 7)")
    if hardware:
        g.add_argument("--lanes", type=int_or_raw, default=1, help="elements per clock (default 1)")
    return p


def spec_from_args(args) -> Spec:
    """Build and validate the :class:`Spec` named by parsed :func:`spec_options` arguments."""
    base = args.base
    if base == Base.POW2.value:
        fmt = LNSFormat(bits=args.bits, base=base, frac_bits=args.frac_bits, eta0=args.eta0)
    else:
        eta0 = DEFAULT_ETA0 if args.eta0 is None else args.eta0
        fmt = LNSFormat(bits=args.bits, base=base, frac_bits=args.frac_bits, eta0=eta0)
    if args.eta is not None and args.eta_rungs is not None:
        raise SpecError("give eta or eta_rungs, not both")
    if args.eta_star is not None and args.eta_star_rungs is not None:
        raise SpecError("give eta_star or eta_star_rungs, not both")
    if args.eta_rungs is not None:
        eta = _rungs_to_value("eta_rungs", args.eta_rungs, fmt)
    elif args.eta is not None:
        eta = args.eta
    else:
        eta = _rungs_to_value("eta_rungs", default_eta_rungs(fmt), fmt)
    if args.eta_star_rungs is not None:
        eta_star = _rungs_to_value("eta_star_rungs", args.eta_star_rungs, fmt)
    elif args.eta_star is not None:
        eta_star = args.eta_star
    elif isinstance(eta, float) and eta > 0 and abs(eta / fmt.eta0 - round(eta / fmt.eta0)) < 1e-6:
        eta_star = _rungs_to_value("eta_star_rungs", default_eta_star_rungs(round(eta / fmt.eta0), fmt), fmt)
    else:
        eta_star = DEFAULT_STAR_FACTOR * eta if isinstance(eta, float) else eta  # MadamConfig names what is wrong
    cfg = MadamConfig(
        eta=eta,
        eta_star=eta_star,
        beta_shift=args.beta_shift,
        bias_correction=not args.no_bias_correction,
        grad_format=args.grad_format,
        state_bits=args.state_bits,
        log_frac_bits=args.log_frac_bits,
        table_index_bits=args.table_index_bits,
    )
    return Spec(fmt, cfg)


def _rungs_to_value(name: str, rungs, fmt: LNSFormat) -> float:
    return check_int(name, rungs, 1) * fmt.eta0


def _write_json(path: str, payload: dict) -> None:
    try:
        atomic_write(path, json.dumps(payload, indent=2) + "\n", option="json")
    except OSError as e:
        raise SpecError(f"json must be a writable file path, not {path!r} ({e.strerror})") from None


def _precision_row(spec: Spec) -> str:
    return (f"estimated worst error {spec.precision_budget:.3g} rungs per step (at most {ONE_RUNG_BUDGET}; "
            f"this datapath resolves eta_star up to {spec.cfg.max_step_rungs} rungs)")


def _cmd_info(args) -> int:
    spec = spec_from_args(args)
    s = spec.summary()
    tb = s.pop("table_bits")
    rows = [
        ("format", spec.fmt.describe()),
        ("code k", f"0..{s['code_max']} ({s['code_dtype']}; packed with sign: {s['packed_dtype']})"),
        ("rung ratio", f"exp(-eta0) = {s['rung_ratio']:.9g}"),
        ("dynamic range", f"exp((2**B - 1) * eta0) = {s['dynamic_range']:.6g}"),
        ("eta", f"{s['eta']:.6g} = {s['eta_rungs']} rungs"),
        ("eta_star", f"{s['eta_star']:.6g} = {s['eta_star_rungs']} rungs (clamp |g/gbar| at {s['clamp_ratio']:g})"),
        ("beta", f"1 - 2**-{s['beta_shift']} = {s['beta']:.9g}"),
        ("bias correction", "on" if s["bias_correction"] else "off"),
        ("gradient format", s["grad_format"]),
        ("state", f"{s['state_bits']} bits = {s['state_exp_bits']}-bit exponent + {s['state_man_bits']}-bit mantissa"),
        ("log domain", f"F = {s['log_frac_bits']} fraction bits, tables of 2**{s['table_index_bits']} + 1 entries"),
        ("update tables", f"log {tb['log']} + antilog {tb['antilog']} = {tb['update_total']} bits"),
        ("decoder tables", f"{tb['decoder']} bits"),
        ("step precision", _precision_row(spec)),
    ]
    if getattr(args, "lanes", None) is not None:
        rows.append(("lanes", str(args.lanes)))
    width = max(len(r[0]) for r in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
    if args.json:
        _write_json(args.json, {"spec": s, "table_bits": tb})
    return 0


def _hardware(args) -> tuple[Spec, int]:
    return spec_from_args(args), check_int("lanes", args.lanes, 1, _MAX_LANES)


def _cmd_verilog(args) -> int:
    spec, lanes = _hardware(args)
    if not args.name.isidentifier():
        raise SpecError(f"name must be a Verilog identifier, not {args.name!r}")
    from lnsim_rtl import generate_verilog

    text = generate_verilog(spec, lanes=lanes, name=args.name)
    if args.output in (None, "-"):
        sys.stdout.write(text)
    else:
        try:
            atomic_write(args.output, text)
        except OSError as e:
            raise SpecError(f"output must be a writable file path, not {args.output!r} ({e.strerror})") from None
        print(f"wrote {args.output}: module {args.name}, {spec.fmt.describe()}, {lanes} lane(s)", file=sys.stderr)
    if args.lint:
        if args.output in (None, "-"):
            raise SpecError("lint needs -o FILE")
        from lnsim_testbenches import runner

        status, messages = runner.lint(args.output)
        waived = ", ".join(runner.LINT_WAIVERS)
        if status != 0:
            print(messages, file=sys.stderr)
            print(f"lnsim verilog: Verilator lint (-Wall, waived: {waived}) failed", file=sys.stderr)
            return 1
        print(f"Verilator lint: clean (-Wall, waived: {waived})", file=sys.stderr)
    return 0


class _ProgressLine:
    """Progress of a verify run on stderr: one line per test, rewritten in place on a terminal."""

    def __init__(self, stream=None, period: float = 1.0):
        self._stream = sys.stderr if stream is None else stream
        self._period = period
        self._tty = self._stream.isatty()
        self._last = {}

    def __call__(self, test: str, done: int, total: int) -> None:
        import time

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


def _cmd_verify(args) -> int:
    spec, lanes = _hardware(args)
    vectors = check_int("vectors", args.vectors, 1, 10**9)
    seed = check_int("seed", args.seed, 0, 2**63 - 1)
    from lnsim_testbenches import runner, verify

    if args.inject_fault:
        try:
            runner.fault_tables(spec, args.inject_fault)
        except ValueError as e:
            raise SpecError(str(e)) from None

    def log(message):
        print(f"lnsim verify: {message}", file=sys.stderr)

    try:
        r = verify.verify(spec, lanes=lanes, vectors=vectors, seed=seed, report_dir=args.report_dir,
                          stalls="none" if args.no_stalls else "random", exhaustive=args.exhaustive,
                          fault=args.inject_fault, progress=_ProgressLine(), log=log)
    except runner.BenchError as e:
        print(f"lnsim: error: {str(e).splitlines()[0]}", file=sys.stderr)
        return 2
    print(f"configuration     {spec.fmt.describe()}, {spec.cfg.grad_format.value} gradients, {lanes} lane(s), "
          f"latency {r['latency']} cycles")
    print(f"vectors checked   {r['vectors']:,}")
    print(f"vectors/s         {r['vectors_per_second']:,.0f}")
    print(f"mismatches        {r['mismatches']:,}")
    failed = r["mismatches"] > 0 or bool(r["errors"]) or "report" in r
    for e in r["errors"]:
        print(f"error             {e}")
    if "first_differing_stage" in r:
        print(f"first differing   {r['first_differing_stage']['summary']}")
    if failed:
        if r.get("vcd"):
            print(f"VCD trace         {r['vcd']}")
        if r.get("report"):
            print(f"mismatch report   {r['report']}")
    if args.json:
        _write_json(args.json, {**r, "spec": spec.summary()})
    return 1 if failed else 0


def build_parser() -> argparse.ArgumentParser:
    """The ``lnsim`` argument parser with all subcommands."""
    parser = _Parser(prog="lnsim", description="Bit-accurate B-bit Madam on LNS weights.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    info = sub.add_parser(
        "info", parents=[spec_options()], help="print a spec's derived quantities and table sizes",
        description="Print a spec's derived quantities and table sizes.",
    )
    info.add_argument("--json", metavar="FILE", help="also write them as JSON")
    info.set_defaults(func=_cmd_info)

    from lnsim.sweep.cli import add_sweep_parser
    from lnsim.synth import add_synth_parser
    from lnsim.train.cli import add_train_parser

    add_train_parser(sub, spec_options())
    add_sweep_parser(sub, spec_options())
    add_synth_parser(sub, spec_options(hardware=True))

    verilog = sub.add_parser(
        "verilog", parents=[spec_options(hardware=True)], help="write the update unit as plain Verilog",
        description="Write the update unit (lnsim_rtl.UpdateUnit) as plain Verilog, with a header comment "
                    "giving the configuration and latency.",
    )
    verilog.add_argument("-o", "--output", metavar="FILE", help="output file (default: stdout)")
    verilog.add_argument("--name", default="lnsim_update_unit", help="module name (default lnsim_update_unit)")
    verilog.add_argument("--lint", action="store_true", help="also lint it with Verilator (-Wall, named waivers)")
    verilog.set_defaults(func=_cmd_verilog)

    verify = sub.add_parser(
        "verify", parents=[spec_options(hardware=True)],
        help="co-simulate the generated Verilog (Verilator, cocotb) against the golden model",
        description="Build the update unit's Verilog in Verilator (cached per configuration) and check it bit "
                    "for bit against the golden model: random vectors with evolving state and random stalls, "
                    "directed corners and a reset mid-stream. Exits 1 on any mismatch, after writing a "
                    "report of the first mismatching vectors and a VCD trace, and naming the first pipeline "
                    "stage that differs from the golden model.",
    )
    verify.add_argument("--vectors", type=int_or_raw, default=100_000, help="random vectors (default 100000)")
    verify.add_argument("--seed", type=int_or_raw, default=0, help="random seed (default 0)")
    verify.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    verify.add_argument("--report-dir", metavar="DIR", default="lnsim-verify-report",
                        help="where a mismatch report and VCD go (default ./lnsim-verify-report)")
    verify.add_argument("--exhaustive", action="store_true",
                        help="also run all 2**16 gradient bit patterns (16-bit gradient formats)")
    verify.add_argument("--no-stalls", action="store_true", help="no random valid/ready stalls")
    # Test-only: build the RTL with one table entry changed (e.g. antilog:5), to show the bench fails.
    verify.add_argument("--inject-fault", metavar="TABLE:INDEX", default=None, help=argparse.SUPPRESS)
    verify.set_defaults(func=_cmd_verify)
    return parser


def main(argv=None) -> int:
    """Entry point of the ``lnsim`` command; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except ValueError as e:  # SpecError and the trainer's data errors: one line, no traceback
        print(f"lnsim: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
