"""cocotb bench: the update engine (:class:`lnsim_rtl.UpdateEngine`) against :class:`lnsim.golden.GoldenMadam`.

cocotbext-axi drives the gradient stream (``s_axis``) and takes the weight stream (``m_axis``), both with
random pauses. For each step length of the parameters, the bench reads the memory back through the
``rd_addr``/``rd_data`` port, starts a golden tensor from it, runs whole steps (each one frame of random
gradients, a few NaN and +-Inf among them) and compares every output weight with the golden step's
decoded weights and, after the steps, the memory with the golden signs, codes and states, bit for bit.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import RisingEdge, Timer
from cocotbext.axi import AxiStreamBus, AxiStreamFrame, AxiStreamSink, AxiStreamSource
from lnsim_rtl.decode_unit import SIGMA_ES_BITS
from lnsim_testbenches.common import bench_params, write_results

from lnsim import tables
from lnsim.codecs import grad_to_bits
from lnsim.golden import GoldenMadam, decode_bf16, sigma_star_fixed
from lnsim.spec import Spec


def _pauses(rng, p: float):
    """A cocotbext-axi pause generator: True (pause this cycle) with probability ``p``."""
    while True:
        yield bool(rng.random() < p)


class EngineWords:
    """The memory words of the engine (:func:`lnsim_rtl.update_engine.engine_word_layout`): per lane from the
    LSB ``sw`` (1), ``k`` (B), ``st`` (state_bits)."""

    def __init__(self, spec: Spec, lanes: int):
        self.B, self.S, self.lanes = spec.fmt.bits, spec.cfg.state_bits, lanes
        self.E = 1 + self.B + self.S

    def split(self, rows: list) -> tuple:
        """``(sign, k, state)`` arrays, element ``a * lanes + j`` from lane ``j`` of row ``a``."""
        words = [(r >> (j * self.E)) & (2**self.E - 1) for r in rows for j in range(self.lanes)]
        sw = np.array([x & 1 for x in words], np.uint8)
        k = np.array([(x >> 1) & (2**self.B - 1) for x in words], np.int64)
        st = np.array([x >> (1 + self.B) for x in words], np.uint32)
        return sw, k, st


async def read_memory(dut, length: int) -> list:
    """The rows at addresses ``0 .. length-1``, through the read-back port (``rd_data`` one clock edge after
    ``rd_addr``)."""
    rows = []
    for a in range(length):
        dut.rd_addr.value = a
        await RisingEdge(dut.clk)
        await Timer(1, "ns")
        rows.append(int(dut.rd_data.value))
    return rows


def gradients(rng, spec: Spec, n: int) -> np.ndarray:
    """``n`` gradient bit patterns: normal values over several decades, a few zeros, NaNs and +-Infs."""
    g = rng.standard_normal(n) * 10.0 ** rng.integers(-6, 2, n)
    g[rng.random(n) < 0.03] = 0.0
    g[rng.random(n) < 0.02] = np.nan
    g[rng.random(n) < 0.02] = np.inf * rng.choice([-1.0, 1.0])
    return grad_to_bits(g, spec.cfg.grad_format)


async def send_steps(dut, source, spec: Spec, frames: list) -> None:
    """Send each ``(gradient bits, log_bc)`` of ``frames`` as one step's frame.

    Each step's scalars are set once the previous step's last beat is accepted, so its first beat waits at
    the engine's input while the previous step drains (the read-after-write rule)."""
    for g, log_bc in frames:
        dut.log_eta.value = tables.log_eta_term(spec)
        dut.log_bc.value = log_bc
        await source.send(AxiStreamFrame([int(x) for x in g]))
        await source.wait()


@cocotb.test()
async def steps(dut):
    """Whole steps over the tensor for each length, every weight and the memory checked."""
    params = bench_params()
    spec, lanes = Spec.from_dict(params["spec"]), int(params["lanes"])
    rng = np.random.default_rng(int(params.get("seed", 0)))
    sigma = float(params.get("sigma_star", 0.5))
    words = EngineWords(spec, lanes)

    Clock(dut.clk, 10, unit="ns").start()
    es, mus = sigma_star_fixed(sigma)
    dut.sigma_es.value = es if dut.sigma_es.is_signed else es & (2**SIGMA_ES_BITS - 1)
    dut.sigma_mus.value = mus
    dut.rst.value = 1
    source = AxiStreamSource(AxiStreamBus.from_prefix(dut, "s_axis"), dut.clk, dut.rst, byte_lanes=lanes)
    sink = AxiStreamSink(AxiStreamBus.from_prefix(dut, "m_axis"), dut.clk, dut.rst, byte_lanes=lanes)
    pause = float(params.get("pause", 0.3))
    source.set_pause_generator(_pauses(rng, pause))
    sink.set_pause_generator(_pauses(rng, pause))
    for _ in range(3):
        await RisingEdge(dut.clk)
    dut.rst.value = 0

    t0 = time.perf_counter()
    mismatches, memory_mismatches, reports, weights, t = 0, 0, [], 0, 0
    # The memory's initial rows, checked against the first read-back (a JSON list of ints in a file).
    init = json.loads(Path(params["init_file"]).read_text()) if params.get("init_file") else None
    for length in params["lengths"]:
        rows = await read_memory(dut, length)
        if init is not None:
            memory_mismatches += sum(r != i for r, i in zip(rows, init[:length]))
        sw, k, st = words.split(rows)
        golden = GoldenMadam(sw, k.astype(spec.fmt.code_dtype), spec, sigma, state=st, t=t)
        dut.length.value = length
        frames, expected = [], []
        for _ in range(int(params["steps"])):
            frames.append((gradients(rng, spec, length * lanes), tables.bias_correction_term(spec, golden.t + 1)))
            golden.step_bits(frames[-1][0])
            expected.append(decode_bf16(spec.fmt, golden.sign, golden.k, sigma).tolist())

        sender = cocotb.start_soon(send_steps(dut, source, spec, frames))
        for step, want in enumerate(expected):
            got = (await sink.recv()).tdata
            bad = [i for i in range(max(len(got), len(want)))
                   if i >= len(got) or i >= len(want) or got[i] != want[i]]
            mismatches += len(bad)
            weights += len(want)
            reports += [{"length": length, "step": step, "element": i,
                         "rtl": hex(got[i]) if i < len(got) else None,
                         "golden": hex(want[i]) if i < len(want) else None} for i in bad[:3]]
        await sender
        t = golden.t
        sw2, k2, st2 = words.split(await read_memory(dut, length))
        memory_mismatches += int(np.sum((sw2 != golden.sign) | (k2 != golden.k) | (st2 != golden.state)))
        init = None
    results = {"weights": weights, "mismatches": mismatches, "memory_mismatches": memory_mismatches,
               "first_mismatches": reports, "steps": t, "seconds": time.perf_counter() - t0}
    write_results(params.get("results"), results)
    assert mismatches == 0 and memory_mismatches == 0, results
