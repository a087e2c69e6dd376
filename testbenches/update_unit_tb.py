"""cocotb bench: the update unit's generated Verilog in Verilator against the golden model, bit for bit.

Simulator side (run through :mod:`lnsim_testbenches.runner`; parameters in ``$LNSIM_TB_PARAMS``). Tests:

* ``random_vectors``: a population of elements updated step after step (each step's ``log_eta`` and
  ``log_bc`` from :mod:`lnsim.tables`, the state and code fed back from the golden model), gradients with
  drifting log-uniform scales, jumps (the largest ratios), raw random bit patterns and special values;
  random valid/ready stalls on both sides. Populations restart from empty state (first step) or from random
  valid states.
* ``reset_mid_stream``: random vectors with resets asserted mid-stream; afterwards the driver resends
  every beat not yet received and the in-order checker sees each exactly once.
* ``directed_corners``: every special gradient class (both zeros, each subnormal normalisation shift,
  smallest/largest normal, Inf, NaN payloads, both signs) against fresh, decayed, smallest, largest and
  ratio-matched states, k at 0 and at 2**B - 1, and extreme step scalars.
* ``exhaustive_grad``: all 2**16 gradient bit patterns (bfloat16 or float16) for a few states.

Every output payload is compared as raw bits with the golden model (:func:`lnsim.golden.update_inplace`,
computed in bulk per step); the NaN and Inf flags are the golden model's stage-1 classification
(:func:`lnsim.golden.update_trace` names them ``nan``, ``inf``), checked against its NaN count.
"""

from __future__ import annotations

import time

import cocotb
import numpy as np
from cocotb.triggers import RisingEdge

from lnsim.spec import Spec
from lnsim_rtl.widths import Widths
from lnsim_testbenches.common import bench_params, write_results
from lnsim_testbenches.coverage import FunctionalCoverage
from lnsim_testbenches.expected import STALL_PROFILES, Coverage, GoldenModel, decoded
from lnsim_testbenches.stimulus import Stimulus
from lnsim_testbenches.streams import (Beat, InOrderChecker, Pending, Progress, StallPattern, StreamDriver,
                                       StreamMonitor, run_stream, start_in_reset)

_RESULTS: dict = {"tests": {}}


class UnitLayout:
    """Payload packing of docs/rtl.md by the unit's own lane layouts (:class:`lnsim_rtl.stages.Widths`): per lane
    ``sw, k, g, st`` in and ``k, st, nan, inf`` out, from the LSB; lane ``j`` of a beat at ``j * L_in`` (``L_out``)."""

    def __init__(self, spec: Spec, lanes: int):
        w = Widths(spec)
        self.lanes, self._in, self._out = lanes, w.lane_in, w.lane_out
        self.L_in, self.L_out = w.lane_in.size, w.lane_out.size

    def _pack(self, layout, columns: dict) -> list:
        """One payload word per beat of ``lanes`` elements (the fields in the low 64 bits packed in NumPy)."""
        n = self.lanes
        low, high = np.zeros(len(columns["k"]) // n, np.uint64), []
        for j in range(n):
            for name, f in layout:
                col, offset = columns[name][j::n], j * layout.size + f.offset
                if offset + f.width <= 64:
                    low |= col.astype(np.uint64) << np.uint64(offset)
                else:
                    high.append((offset, col.tolist()))
        words = low.tolist()
        for offset, values in high:
            words = [w | (v << offset) for w, v in zip(words, values)]
        return words

    def pack_inputs(self, sw, k, g, st) -> list:
        return self._pack(self._in, {"sw": sw, "k": k, "g": g, "st": st})

    def pack_outputs(self, k, st, nan, inf) -> list:
        return self._pack(self._out, {"k": k, "st": st, "nan": nan, "inf": inf})

    def lane_in(self, word: int, j: int) -> dict:
        return _lane_fields(self._in, word, j)

    def lane_out(self, word: int, j: int) -> dict:
        return _lane_fields(self._out, word, j)


def _lane_fields(layout, word: int, j: int) -> dict:
    """Lane ``j`` of a payload word, ``{field: value}`` in the layout's order."""
    x = word >> (j * layout.size)
    return {name: (x >> f.offset) & (2**f.width - 1) for name, f in layout}


class Bench:
    """Joins stimulus, golden model, driver, monitor and checker for one test on ``dut``."""

    def __init__(self, dut, params: dict, name: str):
        self.dut, self.params, self.name = dut, params, name
        self.spec = Spec.from_dict(params["spec"])
        self.lanes = int(params.get("lanes", 1))
        self.layout = UnitLayout(self.spec, self.lanes)
        self.model = GoldenModel(self.spec)
        seed = int(params.get("seed", 0))
        salt = sum(map(ord, name))
        self.rng = np.random.default_rng([seed, salt])
        self.stim = Stimulus(self.spec, self.lanes, np.random.default_rng([seed, salt, 1]), self.model)
        self.coverage = Coverage(self.spec)
        self.functional = FunctionalCoverage(self.spec, backpressure=True) if params.get("coverage") else None

    def beats(self, groups):
        """Batches of :class:`Beat` for ``groups``, the golden model run on each group in bulk."""
        index = 0
        for group in groups:
            sw, k, g, st, log_eta, log_bc = group[:6]
            expected = group[6] if len(group) > 6 else self.model.update(sw, k, g, st, log_eta, log_bc)
            k_new, st_new, nan, inf = expected
            self.coverage.add(k, g, st, k_new, nan, inf)
            if self.functional is not None:
                self.functional.add(sw, k, g, st, log_eta, log_bc)
            ins = self.layout.pack_inputs(sw, k, g, st)
            outs = self.layout.pack_outputs(k_new, st_new, nan, inf)
            scalars = (log_eta, log_bc)
            batch = [Beat(p, scalars, e, index + i * self.lanes) for i, (p, e) in enumerate(zip(ins, outs))]
            index += len(sw)
            yield batch

    def describe(self, beat: Beat, got: int) -> list:
        """Per-lane mismatch reports: inputs, RTL bits, golden bits, decoded values."""
        reports = []
        for j in range(self.lanes):
            rtl, gold = self.layout.lane_out(got, j), self.layout.lane_out(beat.expected, j)
            if rtl == gold:
                continue
            x = self.layout.lane_in(beat.payload, j)
            reports.append({
                "test": self.name,
                "vector": beat.index + j,
                "lane": j,
                "inputs": {**x, "log_eta": beat.scalars[0], "log_bc": beat.scalars[1]},
                "rtl": rtl,
                "golden": gold,
                "rtl_bits": hex((got >> (j * self.layout.L_out)) & (2**self.layout.L_out - 1)),
                "golden_bits": hex((beat.expected >> (j * self.layout.L_out)) & (2**self.layout.L_out - 1)),
                "decoded": decoded(self.spec, x, rtl, gold),
            })
        return reports

    async def run(self, groups, n_vectors: int, *, stalls: str = "random", resets=()) -> dict:
        dut = self.dut
        await start_in_reset(dut)
        await RisingEdge(dut.clk)

        pending = Pending(self.beats(groups))
        profile = STALL_PROFILES[stalls]
        driver = StreamDriver(dut.i__valid, dut.i__payload, dut.i__ready, (dut.log_eta, dut.log_bc), pending,
                              StallPattern(self.rng, profile))
        checker = InOrderChecker(pending, driver, self.describe)
        monitor = StreamMonitor(dut.o__valid, dut.o__payload, dut.o__ready, StallPattern(self.rng, profile),
                                checker.on_output)
        progress = Progress(self.params.get("progress"), self.name, n_vectors)
        n_beats = n_vectors // self.lanes
        on_cycle = None
        if self.functional is not None:
            def on_cycle():
                self.functional.cycle(driver.valid, bool(dut.i__ready.value), monitor.valid, monitor.ready)
        t0 = time.perf_counter()
        stats = await run_stream(dut, driver, monitor, checker, total_beats=n_beats, max_cycles=40 * n_beats + 2000,
                                 rst=dut.rst, resets=resets, latency=self.params.get("latency"), progress=progress,
                                 lanes=self.lanes, on_cycle=on_cycle)
        seconds = time.perf_counter() - t0
        progress.update(checker.received * self.lanes, force=True)
        result = {
            "vectors": checker.received * self.lanes,
            "beats": checker.received,
            "mismatches": checker.mismatches,
            "mismatched_beats": checker.mismatched_beats,
            "seconds": seconds,
            "golden_seconds": self.model.seconds,
            "vectors_per_second": checker.received * self.lanes / seconds if seconds > 0 else 0.0,
            "cycles": stats["cycles"],
            "latency_seen": stats["latency_seen"],
            "bubbles": stats["bubbles"],
            "errors": stats["errors"],
            "first_mismatches": checker.reports,
            "resets": [list(r) for r in resets],
            "resent_beats": stats["resent"],
            "coverage": self.coverage.counts,
            **({"functional_coverage": self.functional.counts} if self.functional is not None else {}),
        }
        _record(self.params, self.name, result)
        assert not stats["errors"], f"{self.name}: protocol errors: {stats['errors']}"
        assert stats["bubbles"] == 0, f"{self.name}: {stats['bubbles']} cycles lost with o.ready high"
        assert checker.mismatches == 0, _failure_message(self.name, checker)
        assert result["vectors"] == n_vectors, f"{self.name}: {result['vectors']} of {n_vectors} vectors received"
        return result


def _record(params: dict, name: str, result: dict) -> None:
    _RESULTS["tests"][name] = result
    tests = _RESULTS["tests"].values()
    _RESULTS.update(
        vectors=sum(t["vectors"] for t in tests),
        mismatches=sum(t["mismatches"] for t in tests),
        seconds=sum(t["seconds"] for t in tests),
        first_mismatches=[r for t in tests for r in t["first_mismatches"]][:10],
        errors=[e for t in tests for e in t["errors"]],
    )
    _RESULTS["vectors_per_second"] = _RESULTS["vectors"] / _RESULTS["seconds"] if _RESULTS["seconds"] else 0.0
    write_results(params.get("results"), _RESULTS)


def _failure_message(name: str, checker: InOrderChecker) -> str:
    lines = [f"{name}: {checker.mismatches} mismatching vectors in {checker.mismatched_beats} beats; first:"]
    for r in checker.reports[:3]:
        if "error" in r:
            lines.append(f"  {r['error']}: RTL {r['rtl']}")
            continue
        x = r["inputs"]
        lines.append(
            f"  vector {r['vector']} (lane {r['lane']}): sw={x['sw']} k={x['k']} "
            f"g={x['g']:#x} ({r['decoded']['g']:.6g}) "
            f"st={x['st']:#x} ({r['decoded']['st_in']}) log_eta={x['log_eta']} log_bc={x['log_bc']}\n"
            f"    RTL    bits {r['rtl_bits']}: k={r['rtl']['k']} st={r['rtl']['st']:#x} nan={r['rtl']['nan']} "
            f"inf={r['rtl']['inf']} ({r['decoded']['st_rtl']}, step {r['decoded']['k_step_rtl']})\n"
            f"    golden bits {r['golden_bits']}: k={r['golden']['k']} st={r['golden']['st']:#x} "
            f"nan={r['golden']['nan']} inf={r['golden']['inf']} ({r['decoded']['st_golden']}, "
            f"step {r['decoded']['k_step_golden']})"
        )
    return "\n".join(lines)


def _params() -> dict:
    p = bench_params()
    if "spec" not in p:
        raise RuntimeError("run this bench through lnsim_testbenches.runner (no $LNSIM_TB_PARAMS)")
    return p


def _count(groups) -> int:
    return sum(len(g[0]) for g in groups)


@cocotb.test()
async def random_vectors(dut):
    """Random vectors with evolving state and random stalls on both sides."""
    params = _params()
    bench = Bench(dut, params, "random_vectors")
    n = -(-int(params.get("vectors", 10000)) // bench.lanes) * bench.lanes
    await bench.run(bench.stim.random_steps(n), n, stalls=params.get("stalls", "random"))


@cocotb.test()
async def reset_mid_stream(dut):
    """Resets mid-stream: in-flight beats are dropped and resent; none duplicated or lost."""
    params = _params()
    bench = Bench(dut, params, "reset_mid_stream")
    n = -(-int(params.get("reset_vectors", 4096)) // bench.lanes) * bench.lanes
    beats = n // bench.lanes
    rng = bench.rng
    resets = [(int(c), int(rng.integers(1, 4))) for c in sorted(rng.choice(np.arange(20, beats), 4, replace=False))]
    result = await bench.run(bench.stim.random_steps(n, population=512), n, resets=resets)
    assert result["resent_beats"] > 0, "no beat was in flight at any reset: the test proved nothing"


@cocotb.test()
async def directed_corners(dut):
    """Every special gradient class against fresh, extreme and ratio-matched states; k at 0 and KMAX."""
    params = _params()
    bench = Bench(dut, params, "directed_corners")
    groups = bench.stim.corners()
    await bench.run(groups, _count(groups))


@cocotb.test()
async def replay(dut):
    """The vectors listed in the parameters (``replay``), one per beat (in every lane), without stalls."""
    params = _params()
    bench = Bench(dut, params, "replay")
    rows = params.get("replay") or []
    groups = []
    for r in rows:
        one = np.array([[r["sw"], r["k"], r["g"], r["st"]]] * bench.lanes, dtype=np.uint64)
        groups.append(bench.stim.group(one, int(r["log_eta"]), int(r["log_bc"])))
    await bench.run(groups, _count(groups), stalls="none")


@cocotb.test()
async def exhaustive_grad(dut):
    """All 2**16 gradient bit patterns (16-bit gradient formats) for four states."""
    params = _params()
    bench = Bench(dut, params, "exhaustive_grad")
    if bench.spec.cfg.grad_format.width != 16:
        _record(params, "exhaustive_grad", {"vectors": 0, "mismatches": 0, "seconds": 0.0, "first_mismatches": [],
                                            "errors": [], "skipped": "32-bit gradients"})
        return
    groups = bench.stim.exhaustive()
    await bench.run(groups, _count(groups), stalls=params.get("stalls", "random"))
