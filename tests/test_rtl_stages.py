# amaranth: UnusedElaboratable=no
"""Each combinational stage of the RTL (lnsim_rtl.stages) against the golden model's intermediate values.

Every stage is driven with the golden model's own inputs for it (``lnsim.golden.update_trace``) and its
outputs are compared bit for bit, over random vectors and corner cases, in Amaranth's Python simulator.
The exhaustive runs are the Verilator benches in testbenches/.
"""

import zlib

import numpy as np
import pytest
from amaranth.hdl import Elaboratable, Module
from amaranth.sim import Simulator

from lnsim import tables
from lnsim.golden import update_trace
from lnsim_rtl.stages import Ema, Interpolator, LogRatio, RungStep, SaturatingAdd, Unpack
from rtl_helpers import SPECS, vectors


class _AllStages(Elaboratable):
    """The five stages side by side, unconnected: each is driven with the golden model's values."""

    def __init__(self, spec):
        self.unpack, self.ema, self.log_ratio = Unpack(spec), Ema(spec), LogRatio(spec)
        self.rung_step, self.sat_add = RungStep(spec), SaturatingAdd(spec)

    def elaborate(self, platform):
        m = Module()
        for name in ("unpack", "ema", "log_ratio", "rung_step", "sat_add"):
            m.submodules[name] = getattr(self, name)
        return m


def run_stages(spec, vecs):
    """Drive every stage with each vector's golden inputs; returns a list of mismatch descriptions."""
    dut = _AllStages(spec)
    bad = []

    async def testbench(ctx):
        for sw, k, gbits, st, log_eta, log_bc in vecs:
            t = update_trace(spec, sw, k, gbits, st, log_eta=log_eta, log_bc=log_bc)
            u, e, lr, rs, sa = dut.unpack, dut.ema, dut.log_ratio, dut.rung_step, dut.sat_add
            inputs = [
                (u.gbits, gbits),
                (e.st, st), (e.S16, t["S16"]), (e.en, t["en"]), (e.zero, t["zero"]),
                (lr.S16, t["S16"]), (lr.en, t["en"]), (lr.Em, t["Em"]), (lr.Sm, t["Sm"]), (lr.zero, t["zero"]),
                (rs.X, t["X"]), (rs.log_eta, log_eta), (rs.log_bc, log_bc), (rs.zero, t["zero"]),
                (sa.sw, sw), (sa.sg, t["sg"]), (sa.k, k), (sa.n, t["n"]),
            ]
            for port, value in inputs:
                ctx.set(port, value)
            got = {
                "sg": u.sg, "nan": u.nan, "inf": u.inf, "zero": u.zero, "en": u.en, "S16": u.S16,
                "Em": e.Em, "Sm": e.Sm, "X": lr.X, "Y": rs.Y, "n": rs.n,
            }
            got = {name: ctx.get(port) for name, port in got.items()}
            if not t["nan"]:  # the trace's k_new and st_new are after the NaN select
                got["st_new"], got["k_new"] = ctx.get(e.st_new), ctx.get(sa.k_new)
            diff = {name: (v, t[name]) for name, v in got.items() if v != t[name]}
            if diff:
                bad.append(f"sw={sw} k={k} gbits={gbits:#x} st={st:#x} log_eta={log_eta} log_bc={log_bc}: "
                           + ", ".join(f"{name} rtl={v} golden={g}" for name, (v, g) in diff.items()))

    sim = Simulator(dut)
    sim.add_testbench(testbench)
    sim.run()
    return bad


@pytest.mark.parametrize("name", list(SPECS))
def test_stages_match_golden_trace(name):
    spec = SPECS[name]
    vecs = vectors(spec, 300, seed=zlib.crc32(name.encode()))
    bad = run_stages(spec, vecs)
    assert not bad, f"{len(bad)} of {len(vecs)} vectors differ, first: " + "\n".join(bad[:5])


def test_vectors_cover_every_class():
    spec = SPECS["default"]
    traces = [update_trace(spec, sw, k, g, st, log_eta=le, log_bc=lb) for sw, k, g, st, le, lb in vectors(spec, 300, 0)]
    assert all(any(t[c] for t in traces) for c in ("nan", "inf", "zero"))
    assert any(t["n"] == spec.eta_star_rungs for t in traces) and any(0 < t["n"] < spec.eta_star_rungs for t in traces)
    assert any(t["k_new"] == 0 for t in traces) and any(t["k_new"] == spec.fmt.code_max for t in traces)


def test_interpolator_wraps_negative_indices_like_numpy():
    table = [int(v) for v in tables.log_table(SPECS["F8-a3"])]  # 9 entries, a = 3
    dut = Interpolator(table, index_bits=3, frac_bits=13, wrap=True)
    bad = []

    async def testbench(ctx):
        for f in list(range(-2**16, 2**16, 997)) + [-1, -2**13, -2**13 - 1, -2**16, 2**16 - 1]:
            i, l = f >> 13, f & (2**13 - 1)
            t = np.asarray(table)
            expect = int(t[i]) + ((int(t[i + 1]) - int(t[i])) * l >> 13)  # NumPy indexing wraps
            ctx.set(dut.f, f)
            if ctx.get(dut.y) != expect:
                bad.append((f, ctx.get(dut.y), expect))

    sim = Simulator(dut)
    sim.add_testbench(testbench)
    sim.run()
    assert not bad


@pytest.mark.parametrize("make, match", [
    (lambda: Unpack("spec"), "spec must be an lnsim.spec.Spec, not 'spec'"),
    (lambda: LogRatio(SPECS["default"], log_table=[0] * 128), r"log_table must have 129 entries \(2\*\*table_index_bits \+ 1\), not 128"),
    (lambda: RungStep(SPECS["default"], antilog_table=[-1] * 129), r"antilog_table\[0\] must be an integer in 0..67108863, not -1"),
])
def test_constructor_validation(make, match):
    with pytest.raises((TypeError, ValueError), match=match):
        make()


def test_ema_square_msb_comparison_is_exact():
    """EmaSquare takes bit 31 of S16 * S16 as S16 >= HI_SQ: the same for every 16-bit S16."""
    from lnsim_rtl.stages import HI_SQ

    s = np.arange(2**16, dtype=np.uint64)
    assert np.array_equal((s * s) >> np.uint64(31), (s >= HI_SQ).astype(np.uint64))
