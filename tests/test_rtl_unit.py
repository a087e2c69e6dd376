# amaranth: UnusedElaboratable=no
"""The pipelined RTL units (lnsim_rtl.UpdateUnit, DecodeUnit) against the golden model, with stalls.

Random valid/ready stalls on both streams, per-beat step scalars, every output compared bit for bit with
``lnsim.golden.update_inplace`` / ``decode_bf16``; the Verilog generators; and a fault-injection check that
the comparison can fail.
"""

import contextlib
import gc
import json
import warnings

import numpy as np
import pytest
from amaranth.hdl import Fragment, UnusedElaboratable, Value
from amaranth.sim import Simulator

from lnsim import LNSFormat, tables
from lnsim.golden import decode_bf16, sigma_star_fixed, update_inplace, update_trace
from lnsim_rtl import DecodeUnit, UpdateUnit, generate_decoder_verilog, generate_verilog, update_unit
from lnsim_rtl.update_unit import LATENCY, lane_stages
from rtl_helpers import SPECS, pack_lane, run_stream, unpack_lane, vectors

#: The output fields of an update lane, in the order golden_beat gives them.
OUT_FIELDS = ("k", "st", "nan", "inf")


def _pack_update_lane(dut, sw, k, g, st):
    """One input lane of ``dut`` as docs/rtl.md lays it out (``dut.lane_in``): sw, k, g, st from the LSB."""
    return pack_lane(dut.lane_in, sw=sw, k=k, g=g, st=st)


def _unpack_update_lane(dut, word, lane=0):
    """Lane ``lane`` of an output payload of ``dut`` (``dut.lane_out``): (k, st, nan, inf)."""
    fields = unpack_lane(dut.lane_out, word, lane)
    return tuple(fields[name] for name in OUT_FIELDS)


def golden_beat(spec, beat, log_eta, log_bc):
    """``update_inplace`` over one beat's lanes: [(k, st, nan, inf)] per lane (flags from the exponent field)."""
    f = spec.cfg.grad_format
    sw = np.array([x[0] for x in beat], np.uint8)
    k = np.array([x[1] for x in beat], spec.fmt.code_dtype)
    g = np.array([x[2] for x in beat], np.uint16 if f.width == 16 else np.uint32)
    st = np.array([x[3] for x in beat], np.uint32)
    e, m = (g.astype(np.int64) >> f.man_bits) & f.exp_field_max, g.astype(np.int64) & (2**f.man_bits - 1)
    nan, inf = (e == f.exp_field_max) & (m != 0), (e == f.exp_field_max) & (m == 0)
    n_nan, n_inf = update_inplace(spec, sw, k, g, st, log_eta=log_eta, log_bc=log_bc, parallel=False)
    assert (n_nan, n_inf) == (nan.sum(), inf.sum())
    return [(int(k[j]), int(st[j]), int(nan[j]), int(inf[j])) for j in range(len(beat))]


def run_update_unit(spec, lanes, n_beats, *, seed, **kwargs):
    """Random beats through an UpdateUnit; returns (beats, rtl lanes, golden lanes), lanes as (k, st, nan, inf)."""
    dut = UpdateUnit(spec, lanes=lanes, **kwargs)
    vecs = vectors(spec, n_beats * lanes, seed)
    beats = [vecs[b * lanes:(b + 1) * lanes] for b in range(n_beats)]
    L = dut.lane_in.size

    def set_inputs(ctx, beat):
        word = sum(_pack_update_lane(dut, *x[:4]) << (j * L) for j, x in enumerate(beat))
        ctx.set(Value.cast(dut.i.payload), word)
        ctx.set(dut.log_eta, beat[0][4])  # the step's scalars: the first lane's, per beat
        ctx.set(dut.log_bc, beat[0][5])

    words = run_stream(dut, beats, seed=seed, set_inputs=set_inputs)
    rtl = [[_unpack_update_lane(dut, w, j) for j in range(lanes)] for w in words]
    gold = [golden_beat(spec, beat, beat[0][4], beat[0][5]) for beat in beats]
    return beats, rtl, gold


@pytest.mark.parametrize("name, lanes", [("default", 1), ("default", 4), ("float32-s1-state28", 2),
                                         ("pow2", 1), ("F20-a12-nobc", 1), ("bits16-float16-s1", 3)])
def test_update_unit_matches_golden_under_stalls(name, lanes):
    spec = SPECS[name]
    beats, rtl, gold = run_update_unit(spec, lanes, 240 // lanes, seed=lanes)
    assert len(rtl) == len(beats)
    bad = [(b, j, beats[b][j], rtl[b][j], gold[b][j]) for b in range(len(beats)) for j in range(lanes)
           if rtl[b][j] != gold[b][j]]
    assert not bad, (f"{len(bad)} lanes differ (sw, k, g, st, log_eta, log_bc) -> rtl/golden (k, st, nan, inf); "
                     f"first: {bad[:3]}")


def test_update_unit_latency_without_stalls():
    spec = SPECS["default"]
    dut = UpdateUnit(spec, lanes=2)
    assert dut.latency == LATENCY
    seen = []

    async def testbench(ctx):
        ctx.set(dut.o.ready, 1)
        ctx.set(dut.i.valid, 1)
        for cycle in range(dut.latency + 2):
            ctx.set(Value.cast(dut.i.payload), cycle + 1)  # any distinct words
            _, _, valid, ready = await ctx.tick().sample(dut.o.valid, dut.i.ready)
            assert ready
            seen.append(valid)

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    sim.run()
    # An input accepted at edge 0 is the output sampled at edge `latency`: full throughput from then on.
    assert seen == [0] * dut.latency + [1] * 2


@contextlib.contextmanager
def _discarding_parts():
    """Parts built only to be counted or discarded on an error warn when collected: collect them quietly."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnusedElaboratable)
        yield
        gc.collect()


@pytest.mark.parametrize("name", list(SPECS))
def test_latency_is_the_number_of_lane_stages(name):
    with _discarding_parts():
        assert len(lane_stages(SPECS[name])) == LATENCY == UpdateUnit(SPECS[name]).latency


def test_latency_disagreeing_with_the_stages_is_an_error(monkeypatch):
    monkeypatch.setattr(update_unit, "LATENCY", LATENCY - 1)
    with _discarding_parts(), pytest.raises(RuntimeError, match=f"lane_stages builds {LATENCY} pipeline stages, "
                                                                f"but update_unit.LATENCY is {LATENCY - 1}"):
        Fragment.get(UpdateUnit(SPECS["default"]), None)


def _fault_table(spec):
    """An antilog table with one entry halved, and an input whose rung step that entry decides."""
    F, a = spec.cfg.log_frac_bits, spec.cfg.table_index_bits
    sh = F + 1 - a
    for sw, k, g, st, le, lb in vectors(spec, 200, 7):
        t = update_trace(spec, sw, k, g, st, log_eta=le, log_bc=lb)
        if t["nan"] or not 3 <= t["n"] < spec.eta_star_rungs or not 3 <= k <= spec.fmt.code_max - spec.eta_star_rungs:
            continue
        ph = t["Y"] & (2 ** (F + 1) - 1)
        i, l = ph >> sh, ph & (2**sh - 1)
        entry = i if l < 2 ** (sh - 1) else i + 1  # the nearer neighbour weighs most
        table = [int(x) for x in tables.antilog_table(spec)]
        table[entry] //= 2
        return table, (sw, k, g, st, le, lb)
    raise AssertionError("no suitable vector")


def test_fault_injection_one_antilog_entry_changes_an_output():
    spec = SPECS["default"]
    table, vec = _fault_table(spec)
    golden = golden_beat(spec, [vec], vec[4], vec[5])

    def run(**kwargs):
        dut = UpdateUnit(spec, **kwargs)

        def set_inputs(ctx, beat):
            ctx.set(Value.cast(dut.i.payload), _pack_update_lane(dut, *beat[0][:4]))
            ctx.set(dut.log_eta, beat[0][4])
            ctx.set(dut.log_bc, beat[0][5])

        words = run_stream(dut, [[vec]], seed=0, set_inputs=set_inputs, drain=1)
        return [_unpack_update_lane(dut, words[0])]

    assert run() == golden
    assert run(antilog_table=table) != golden


def test_update_unit_validation():
    spec = SPECS["default"]
    with pytest.raises(ValueError, match="lanes must be an integer >= 1, not 0"):
        UpdateUnit(spec, lanes=0)
    with pytest.raises(TypeError, match="spec must be an lnsim.spec.Spec, not None"):
        UpdateUnit(None)
    with pytest.raises(ValueError, match=r"antilog_table\[3\] must be an integer in 0..67108863, not 67108864"):
        UpdateUnit(spec, antilog_table=[0, 0, 0, 2**26] + [0] * 125)


def test_update_unit_ports_follow_the_contract():
    spec = SPECS["default"]  # B = 12, bfloat16, 32-bit state, F = 16
    dut = UpdateUnit(spec, lanes=3)
    assert len(Value.cast(dut.i.payload)) == 3 * (1 + 12 + 16 + 32)
    assert len(Value.cast(dut.o.payload)) == 3 * (12 + 32 + 2)
    assert (len(dut.log_eta), len(dut.log_bc)) == (22, 21)
    assert [(name, f.offset, f.width) for name, f in dut.lane_in] == [("sw", 0, 1), ("k", 1, 12), ("g", 13, 16), ("st", 29, 32)]
    assert [(name, f.offset, f.width) for name, f in dut.lane_out] == [("k", 0, 12), ("st", 12, 32), ("nan", 44, 1), ("inf", 45, 1)]


# ------------------------------------------------------------------------------------------------ decoder

DECODE_FORMATS = [
    LNSFormat(bits=4, eta0=0.25), LNSFormat(bits=8, eta0=0.016), LNSFormat(bits=10, eta0=0.004),
    LNSFormat(bits=2, eta0=0.5),
    LNSFormat(bits=3, base="pow2", frac_bits=0), LNSFormat(bits=6, base="pow2", frac_bits=2),
    LNSFormat(bits=9, base="pow2", frac_bits=4), LNSFormat(bits=6, base="pow2", frac_bits=8),
]
SIGMAS = [1.0, 0.37, 3.3e-3, 1.7 * 2.0**100, 1.99 * 2.0**126, 2.0**-120, 1e-37]


@pytest.mark.parametrize("fmt, product_registers",
                         [(f, False) for f in DECODE_FORMATS] + [(f, True) for f in DECODE_FORMATS[1::3]],
                         ids=lambda v: v.describe().replace(" ", "-") if isinstance(v, LNSFormat) else
                         ("product-registers" if v else "two-stage"))
def test_decode_unit_all_codes(fmt, product_registers):
    lanes = 2
    reps = -(-8 * len(SIGMAS) * lanes // (2 * fmt.levels))  # small formats: every code under many sigmas
    sign = np.tile(np.repeat([0, 1], fmt.levels), reps).astype(np.uint8)
    k = np.tile(np.arange(fmt.levels), 2 * reps).astype(fmt.code_dtype)
    rng = np.random.default_rng(fmt.bits)
    sigma = rng.choice(len(SIGMAS), (len(k) + lanes - 1) // lanes)  # one sigma_star per beat
    sigma[: len(SIGMAS)] = np.arange(len(SIGMAS))
    gold = np.empty(len(k), np.int64)
    for s in range(len(SIGMAS)):
        idx = np.flatnonzero(np.repeat(sigma, lanes)[: len(k)] == s)
        gold[idx] = decode_bf16(fmt, sign[idx], k[idx], SIGMAS[s])
    pad = (-len(k)) % lanes
    sign, k = np.concatenate([sign, np.zeros(pad, np.uint8)]), np.concatenate([k, np.zeros(pad, k.dtype)])
    beats = [(sign[b * lanes:(b + 1) * lanes], k[b * lanes:(b + 1) * lanes], SIGMAS[sigma[b]]) for b in range(len(sigma))]
    dut = DecodeUnit(fmt, lanes=lanes, product_registers=product_registers)
    # With product registers: the table reads, the natural base's product and rounding, the scaling's.
    assert dut.latency == (2 if not product_registers else 5 if fmt.base.value == "pow2" else 7)

    def set_inputs(ctx, beat):
        sw, kk, sig = beat
        L = dut.lane_in.size
        ctx.set(Value.cast(dut.i.payload), sum(pack_lane(dut.lane_in, sw=int(s), k=int(c)) << (j * L)
                                               for j, (s, c) in enumerate(zip(sw, kk))))
        es, mus = sigma_star_fixed(sig)
        ctx.set(dut.sigma_es, es)
        ctx.set(dut.sigma_mus, mus)

    words = run_stream(dut, beats, seed=fmt.bits, p_valid=0.8, p_ready=0.8, set_inputs=set_inputs)
    rtl = np.array([unpack_lane(dut.lane_out, w, j)["bits"] for w in words for j in range(lanes)])[: len(gold)]
    bad = np.flatnonzero(rtl != gold)
    assert not len(bad), f"{len(bad)} weights differ; first (sw, k): {[(int(sign[i]), int(k[i]), hex(rtl[i]), hex(gold[i])) for i in bad[:5]]}"


def test_decode_unit_validation():
    with pytest.raises(TypeError, match="fmt must be an lnsim.spec.LNSFormat, not 12"):
        DecodeUnit(12)
    with pytest.raises(ValueError, match="lanes must be an integer >= 1, not -1"):
        DecodeUnit(LNSFormat(bits=4, eta0=0.25), lanes=-1)


# ------------------------------------------------------------------------------------------------ Verilog

def test_generate_verilog_has_module_and_header():
    spec = SPECS["default"]
    text = generate_verilog(spec, lanes=4, name="madam_core")
    header = [line for line in text.splitlines() if line.startswith("//")]
    assert "module madam_core(" in text
    assert "// lanes = 4" in header and any(line.startswith(f"// latency = {LATENCY} cycles") for line in header)
    line = next(line for line in header if line.startswith("// spec.summary() = "))
    assert json.loads(line.split(" = ", 1)[1]) == json.loads(json.dumps(tables.spec_summary(spec)))
    assert any("i__payload" in line and "[243:0]" in line for line in header)  # 4 lanes x 61 bits
    assert "input [243:0] i__payload;" in text and "output [183:0] o__payload;" in text
    assert "input [21:0] log_eta;" in text and "input [20:0] log_bc;" in text


def test_generate_decoder_verilog_has_module_and_header():
    text = generate_decoder_verilog(LNSFormat(bits=12, base="pow2", frac_bits=6), lanes=2)
    assert "module lnsim_decode_unit(" in text
    assert "// base = \"pow2\"" in text and "// lanes = 2" in text and "// latency = 2 cycles" in text
    assert "input [25:0] i__payload;" in text and "output [31:0] o__payload;" in text
    assert "input [9:0] sigma_es;" in text and "input [15:0] sigma_mus;" in text
