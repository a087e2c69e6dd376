"""The batch co-simulation engine (lnsim_testbenches.batch): the Verilated unit in a C++ harness, checked in NumPy.

Real Verilator builds (no mocks): the engine agrees with the cocotb bench on the report for the same seed and
vectors, catches an injected table fault and hands it to the cocotb replay (VCD, first differing stage), runs the
stream protocol (stalls, resets, latency) and multi-lane, pow2 and float16 configurations.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from lnsim.cli import main
from lnsim.spec import LNSFormat, MadamConfig, Spec
from lnsim_rtl.update_unit import LATENCY
from lnsim_testbenches import verify as tb_verify
from lnsim_testbenches.batch import BatchUnit, run_tests
from lnsim_testbenches.batch_build import build_batch, cxx_name

pytestmark = pytest.mark.hw

B12 = Spec(LNSFormat(bits=12, eta0=0.001))
_POW2 = LNSFormat(bits=8, base="pow2", frac_bits=4)
#: Multi-lane, pow2 base, float16 gradients.
POW2_F16 = Spec(_POW2, MadamConfig.from_rungs(_POW2, 1, 8, grad_format="float16"))

#: What both engines must report alike (cycle counts and stall-dependent figures differ: separate generators).
_SAME = ("vectors", "beats", "mismatches", "mismatched_beats", "latency_seen", "coverage", "errors")


def test_port_names_follow_verilators_encoding():
    assert cxx_name("i__valid") == "i___05Fvalid" and cxx_name("log_eta") == "log_eta"


@pytest.mark.parametrize("lanes", [1, pytest.param(4, marks=pytest.mark.slow)])  # lanes 4: 37 s more
def test_batch_and_cocotb_engines_agree_on_the_report(lanes, tmp_path):
    kw = dict(lanes=lanes, vectors=6000, seed=3, report_dir=tmp_path)
    batch = tb_verify.verify(B12, engine="batch", **kw)
    cocotb = tb_verify.verify(B12, engine="cocotb", **kw)
    assert batch["engine"] == "batch" and cocotb["engine"] == "cocotb"
    assert batch["mismatches"] == cocotb["mismatches"] == 0 and not batch["errors"]
    assert batch["vectors"] == cocotb["vectors"] == 6000 + 4096 // lanes * lanes + 31200 // lanes * lanes
    assert list(batch["tests"]) == list(cocotb["tests"]) == ["random_vectors", "reset_mid_stream", "directed_corners"]
    for name, t in batch["tests"].items():
        assert {k: t[k] for k in _SAME} == {k: cocotb["tests"][name][k] for k in _SAME}, name
        assert t["coverage"]["nan"] > 0 and t["bubbles"] == 0
    assert batch["tests"]["reset_mid_stream"]["resent_beats"] > 0
    assert batch["vectors_per_second"] > 5 * cocotb["vectors_per_second"]


def test_injected_fault_is_caught_in_batch_and_replayed_through_cocotb(tmp_path, capsys):
    # Multi-lane, pow2 base, float16 gradients; the batch engine is the default.
    report = tmp_path / "report"
    argv = ["verify", "--bits", "8", "--base", "pow2", "--frac-bits", "4", "--eta-rungs", "1", "--eta-star-rungs", "8",
            "--grad-format", "float16", "--lanes", "2", "--vectors", "20000", "--seed", "1", "--inject-fault",
            "log:5", "--report-dir", str(report), "--json", str(tmp_path / "v.json")]
    assert main(argv) == 1
    out = capsys.readouterr().out
    data = json.loads((tmp_path / "v.json").read_text())
    assert data["engine"] == "batch" and data["mismatches"] > 0 and data["fault"] == "log:5"
    assert data["first_differing_stage"]["stage"] == 3 and "first differing   stage 3 (LogRatio)" in out
    first = data["first_mismatches"][0]
    assert first["rtl"] != first["golden"] and first["lane"] in (0, 1)
    assert first["rtl_bits"] != first["golden_bits"]
    with open(data["vcd"]) as f:  # the cocotb replay's trace
        assert "$scope" in f.read(4096)
    assert json.loads((report / "verify-mismatches.json").read_text())["mismatches"] == data["mismatches"]


def test_pow2_float16_two_lanes_exhaustive_clean():
    build, latency = build_batch(POW2_F16, lanes=2)
    r = run_tests(build, POW2_F16, lanes=2, latency=latency, tests=["random_vectors", "exhaustive_grad"],
                  vectors=100_000, seed=2, stalls="random")
    assert r["mismatches"] == 0 and not r["errors"] and r["tests_failed"] == 0
    assert r["tests"]["exhaustive_grad"]["vectors"] == 4 * 2**16
    assert r["tests"]["random_vectors"]["latency_seen"] == LATENCY


def test_harness_stream_protocol_stalls_resets_and_cached_build():
    build, latency = build_batch(B12, lanes=1)
    again, _ = build_batch(B12, lanes=1)
    assert again.cached and again.directory == build.directory
    rng = np.random.default_rng(0)
    n = 5000
    rows = np.zeros((n, 6), np.uint32)
    rows[:, 0], rows[:, 1] = 1000, 10
    rows[:, 2] = rng.integers(0, 2, n)
    rows[:, 3] = rng.integers(0, 4096, n)
    rows[:, 4] = rng.integers(0, 2**16, n)
    with BatchUnit(build, B12, 1) as unit:
        plain, s = unit.run(rows, latency=latency)
        assert s["received"] == n and s["cycles"] == n + latency and s["first_valid"] - s["first_accept"] == latency
        stalled, s2 = unit.run(rows, stalls="random", stall_seed=9, latency=latency)
        assert s2["cycles"] > s["cycles"] and np.array_equal(stalled, plain)  # stalls change timing, not values
        reset, s3 = unit.run(rows, stalls="random", stall_seed=9, resets=[(100, 2), (900, 1)], latency=latency)
        assert s3["resent"] > 0 and s3["early_outputs"] == 0 and np.array_equal(reset, plain)  # none lost or doubled
        short, s4 = unit.run(rows, latency=latency, max_cycles=1000)
        assert s4["timeout"] and s4["received"] == 1000 - latency and np.array_equal(short, plain[:s4["received"]])
    assert plain[:, 0].min() >= 0 and len(np.unique(plain[:, 0])) > 100  # real k' values


@pytest.mark.slow
def test_batch_long_run_clean():
    r = tb_verify.verify(B12, lanes=1, vectors=20_000_000, seed=11, stalls="none")
    assert r["mismatches"] == 0 and not r["errors"] and r["vectors"] > 20_000_000
