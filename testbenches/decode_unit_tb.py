"""cocotb bench: the weight decoder's generated Verilog against :func:`lnsim.golden.decode_bf16`, bit for bit.

Every code of the format, both signs, for several ``sigma_star`` values (each sent as ``sigma_es``,
``sigma_mus`` from :func:`lnsim.golden.sigma_star_fixed`, changing between batches while the stream
runs), with random valid/ready stalls on both sides.
"""

from __future__ import annotations

import time

import cocotb
import numpy as np

from lnsim.golden import decode_bf16, sigma_star_fixed
from lnsim.spec import Base, LNSFormat
from lnsim_rtl.decode_unit import SIGMA_ES_BITS, decode_layouts
from lnsim_testbenches.common import bench_params, write_results
from lnsim_testbenches.streams import (Beat, InOrderChecker, Pending, StallPattern, StreamDriver, StreamMonitor,
                                       run_stream, start_in_reset)

#: sigma_star values: typical, tiny (results flush to zero), large, and awkward mantissas.
SIGMA_STARS = (1.0, 0.05, 3.7, 2.0**-100, 1000.0, 1.0 / 3.0)


def _fmt(d: dict) -> LNSFormat:
    if d["base"] == "pow2":
        return LNSFormat(bits=d["bits"], base="pow2", frac_bits=d["frac_bits"])
    return LNSFormat(bits=d["bits"], eta0=d["eta0"])


class DecodeLayout:
    """Payload packing by the decoder's lane layouts (:func:`lnsim_rtl.decode_unit.decode_layouts`): per lane
    ``sw`` (bit 0), ``k`` (B bits) in; ``bits`` (16) out."""

    def __init__(self, fmt: LNSFormat, lanes: int):
        lane_in, lane_out = decode_layouts(fmt)
        self.lanes = lanes
        self.L_in, self.L_out = lane_in.size, lane_out.size
        self.k_offset = lane_in["k"].offset

    def _beats(self, words: list, width: int) -> list:
        n = self.lanes
        cols = [words[j::n] for j in range(n)]
        out = cols[0]
        for j in range(1, n):
            out = [w | (c << (j * width)) for w, c in zip(out, cols[j])]
        return out

    def pack_inputs(self, sw, k) -> list:
        words = sw.astype(np.uint64) | (k.astype(np.uint64) << np.uint64(self.k_offset))
        return self._beats(words.tolist(), self.L_in)

    def pack_outputs(self, bits) -> list:
        return self._beats(bits.astype(np.uint64).tolist(), self.L_out)


@cocotb.test()
async def all_codes(dut):
    """Every (sign, k) of the format for each sigma_star."""
    params = bench_params()
    fmt, lanes = _fmt(params["fmt"]), int(params.get("lanes", 1))
    layout = DecodeLayout(fmt, lanes)
    rng = np.random.default_rng(int(params.get("seed", 0)))
    k_all = np.arange(fmt.levels, dtype=np.uint32)
    sw_all = np.concatenate([np.zeros(fmt.levels, np.uint8), np.ones(fmt.levels, np.uint8)])
    k_all = np.concatenate([k_all, k_all])
    order = rng.permutation(k_all.size)
    sw_all, k_all = sw_all[order], k_all[order]
    n = k_all.size // lanes * lanes
    if n < k_all.size:  # fill the last beat with the first codes again
        pad = lanes - (k_all.size - n)
        sw_all, k_all = np.concatenate([sw_all, sw_all[:pad]]), np.concatenate([k_all, k_all[:pad]])
    per_sigma = k_all.size
    es_signed = dut.sigma_es.is_signed

    def batches():
        for sigma in SIGMA_STARS:
            es, mus = sigma_star_fixed(sigma)
            gold = decode_bf16(fmt, sw_all, k_all.astype(fmt.code_dtype), sigma)
            scalars = (es if es_signed else es & (2**SIGMA_ES_BITS - 1), mus)
            ins, outs = layout.pack_inputs(sw_all, k_all), layout.pack_outputs(gold)
            base = SIGMA_STARS.index(sigma) * per_sigma
            yield [Beat(p, scalars, e, base + i * lanes) for i, (p, e) in enumerate(zip(ins, outs))]

    def describe(beat, got):
        out = []
        Lo = layout.L_out
        for j in range(lanes):
            g, e = (got >> (Lo * j)) & (2**Lo - 1), (beat.expected >> (Lo * j)) & (2**Lo - 1)
            if g != e:
                x = beat.payload >> (j * layout.L_in)
                out.append({"vector": beat.index + j, "sw": x & 1, "k": (x >> layout.k_offset) & (2**fmt.bits - 1),
                            "sigma_es_mus": list(beat.scalars), "rtl": hex(g), "golden": hex(e),
                            "rtl_value": _bf16(g), "golden_value": _bf16(e)})
        return out

    await start_in_reset(dut)
    pending = Pending(batches())
    profile = (1.0, 0.9, 0.5)
    driver = StreamDriver(dut.i__valid, dut.i__payload, dut.i__ready, (dut.sigma_es, dut.sigma_mus), pending,
                          StallPattern(rng, profile))
    checker = InOrderChecker(pending, driver, describe)
    monitor = StreamMonitor(dut.o__valid, dut.o__payload, dut.o__ready, StallPattern(rng, profile), checker.on_output)
    total_beats = len(SIGMA_STARS) * per_sigma // lanes
    t0 = time.perf_counter()
    stats = await run_stream(dut, driver, monitor, checker, total_beats=total_beats, max_cycles=40 * total_beats + 1000,
                             latency=params.get("latency"))
    seconds = time.perf_counter() - t0
    results = {"vectors": checker.received * lanes, "mismatches": checker.mismatches, "seconds": seconds,
               "first_mismatches": checker.reports, "errors": stats["errors"], "bubbles": stats["bubbles"],
               "latency_seen": stats["latency_seen"], "format": fmt.describe(),
               "base": "pow2" if fmt.base is Base.POW2 else "natural"}
    write_results(params.get("results"), results)
    assert not stats["errors"], stats["errors"]
    assert checker.mismatches == 0, f"{checker.mismatches} mismatches; first: {checker.reports[:3]}"


def _bf16(bits: int) -> float:
    return float(np.array([bits << 16], np.uint32).view(np.float32)[0])
