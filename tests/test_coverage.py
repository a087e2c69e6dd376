"""Functional coverage of ``lnsim verify`` (lnsim_testbenches.coverage): the bin classifier on hand-picked vectors
(exact bins), and real verify runs (Verilator, both engines) hitting every applicable bin."""

from __future__ import annotations

import json

import numpy as np
import pytest

from lnsim import tables
from lnsim.cli import main
from lnsim.golden import update_trace
from lnsim.spec import LNSFormat, Spec
from lnsim_testbenches import verify as tb_verify
from lnsim_testbenches.coverage import BACKPRESSURE_BINS, FunctionalCoverage, bin_names, classify, merge, never_hit

B12 = Spec(LNSFormat(bits=12, eta0=0.001))
_WM = B12.cfg.state_man_bits
ONE = 0x3F80  # bfloat16 1.0
_ELEMENT_BINS = ("grad_zero", "grad_subnormal", "grad_normal", "grad_inf", "grad_nan", "clamp_hit", "clamp_miss",
                 "k_in_0", "k_in_kmax", "k_reaches_0", "k_reaches_kmax", "state_fresh", "state_bottom",
                 "state_warm", "state_top", "bias_correction_none", "bias_correction_early", "bias_correction_late")


def _hit(sw, k, g, st, log_eta=0, log_bc=0, spec=B12) -> set:
    """The bins one vector lands in, by their names."""
    counts = classify(spec, [sw], [k], [g], [st], log_eta, log_bc)
    return {name for name, hits in counts.items() if hits}


def _elements(bins: set) -> set:
    return {b for b in bins if b in _ELEMENT_BINS}


def test_a_nan_gradient_lands_in_grad_nan_and_no_step_or_table_bin():
    # NaN: no step (neither clamp bin), no table segment; the input bins still count.
    assert _hit(0, 5, 0x7FC1, 0) == {"grad_nan", "state_fresh", "bias_correction_none"}


def test_gradient_classes_are_exclusive():
    for g, name in ((0x0000, "grad_zero"), (0x8000, "grad_zero"), (0x0001, "grad_subnormal"),
                    (0x807F, "grad_subnormal"), (ONE, "grad_normal"), (0x7F80, "grad_inf"), (0xFF80, "grad_inf"),
                    (0xFFFF, "grad_nan")):
        bins = _hit(0, 5, g, 0)
        assert {b for b in bins if b.startswith("grad_")} == {name}, (hex(g), bins)


def test_a_zero_gradient_takes_no_step_and_reads_no_table():
    bins = _hit(0, 5, 0x0000, 0)
    assert not [b for b in bins if "segment" in b or b.startswith("clamp_")]


def test_fresh_state_saturates_the_step_at_sstar_and_k_reaches_kmax():
    # A fresh state's EMA is g**2 / 2**s: the ratio is 2**(s/2) = 32 per rung of eta; at eta = SSTAR it clamps.
    log_eta = tables.log_eta_term(B12, B12.eta_star_rungs)
    kmax = B12.fmt.code_max
    bins = _hit(0, kmax - 3, ONE, 0, log_eta=log_eta)
    assert _elements(bins) == {"grad_normal", "clamp_hit", "k_reaches_kmax", "state_fresh", "bias_correction_none"}
    # Same sign of weight and gradient: k grows; the opposite sign from k = 3 reaches 0.
    assert "k_reaches_0" in _hit(1, 3, ONE, 0, log_eta=log_eta)
    assert {"k_in_0", "clamp_hit"} <= _hit(1, 0, ONE, 0, log_eta=log_eta)


def test_a_small_ratio_misses_the_clamp():
    # State far above the gradient's own term: the ratio is tiny, the step 0 (clamp missed).
    Et = update_trace(B12, 0, 0, ONE, 0, log_eta=0, log_bc=0)["Em"]
    st = ((Et + 40) << _WM) | 2 ** (_WM - 1)
    bins = _hit(0, 100, ONE, st, log_eta=tables.log_eta_term(B12, 1))
    assert _elements(bins) == {"grad_normal", "clamp_miss", "state_warm", "bias_correction_none"}


def test_state_bins_bottom_warm_top():
    emax = B12.state_exp_max
    assert "state_bottom" in _hit(0, 5, ONE, 7)  # E = 0, decayed
    assert "state_bottom" in _hit(0, 5, ONE, (1 << _WM) | 2 ** (_WM - 1))  # E = 1: the smallest term's exponent
    assert "state_top" in _hit(0, 5, ONE, (emax << _WM) | (2**_WM - 1))
    assert "state_warm" in _hit(0, 5, ONE, (300 << _WM) | 2 ** (_WM - 1))


def test_bias_correction_regimes_follow_log_bc():
    one = 1 << B12.cfg.log_frac_bits
    early, late = tables.bias_correction_term(B12, 1), tables.bias_correction_term(B12, 4000)
    assert early >= one and 0 < late < one
    assert "bias_correction_early" in _hit(0, 5, ONE, 0, log_bc=early)
    assert "bias_correction_late" in _hit(0, 5, ONE, 0, log_bc=late)


def test_table_segments_are_those_the_log_and_antilog_units_read():
    # bfloat16 1.0 with a fresh state: Lg's input is 0 (segment 0), the state's significand likewise; the step's
    # fraction ph is Y's low F + 1 bits, so one segment of each table per unit.
    counts = classify(B12, [0], [5], [ONE], [0], tables.log_eta_term(B12, 3), 0)
    logs = {n: h for n, h in counts.items() if n.startswith("log_segment_") and h}
    alogs = {n: h for n, h in counts.items() if n.startswith("antilog_segment_") and h}
    assert logs == {"log_segment_0": 2}
    assert len(alogs) == 1 and sum(alogs.values()) == 1
    # The largest mantissa reads the last log segment.
    counts = classify(B12, [0], [5], [0x3FFF], [0], 0, 0)
    assert counts[f"log_segment_{2**B12.cfg.table_index_bits - 1}"] >= 1


def test_every_bin_is_named_once_and_backpressure_is_not_applicable_without_it():
    names = bin_names(B12)
    assert len(names) == len(set(names)) == len(_ELEMENT_BINS) + 2 * 2**7 + len(BACKPRESSURE_BINS)
    cov = FunctionalCoverage(B12, backpressure=False)
    assert all(cov.counts[b] is None for b in BACKPRESSURE_BINS)
    cov.add(np.zeros(3, np.uint8), np.zeros(3), np.full(3, 0x7FC1), np.zeros(3), 0, 0)
    assert cov.counts["grad_nan"] == 3 and "bp_input_gap" not in never_hit(cov.counts)


def test_backpressure_cycles_and_merge():
    cov = FunctionalCoverage(B12, backpressure=True)
    for cycle in ((True, True, False, True), (True, True, True, False), (False, True, True, False),
                  (True, False, True, True)):
        cov.cycle(*cycle)
    c = cov.counts
    assert (c["bp_back_to_back"], c["bp_output_stall"], c["bp_both_stalled"], c["bp_input_blocked"],
            c["bp_input_gap"]) == (1, 2, 1, 1, 0)
    merged = merge([c, FunctionalCoverage(B12, backpressure=False).counts])
    assert merged["bp_output_stall"] == 2 and merged["grad_nan"] == 0


@pytest.mark.hw
def test_default_batch_run_hits_every_applicable_bin(tmp_path, capsys):
    out = tmp_path / "verify.json"
    assert main(["verify", "--coverage", "--json", str(out), "--report-dir", str(tmp_path)]) == 0
    text = capsys.readouterr().out
    assert "all 274 applicable bins hit (5 not applicable)" in text
    r = json.loads(out.read_text())
    cov = r["coverage"]
    assert list(cov) == list(bin_names(B12)) and r["coverage_never_hit"] == []
    assert all(cov[b] is None for b in BACKPRESSURE_BINS)
    assert all(h > 0 for b, h in cov.items() if b not in BACKPRESSURE_BINS)


@pytest.mark.hw
def test_short_cocotb_run_with_stalls_hits_the_backpressure_bins(tmp_path):
    r = tb_verify.verify(B12, engine="cocotb", vectors=2000, seed=1, report_dir=tmp_path, coverage=True)
    assert r["mismatches"] == 0
    assert all(r["coverage"][b] > 0 for b in BACKPRESSURE_BINS), r["coverage"]
    # The same vectors as the batch engine: the element bins agree.
    batch = tb_verify.verify(B12, engine="batch", vectors=2000, seed=1, report_dir=tmp_path, coverage=True)
    assert {b: h for b, h in batch["coverage"].items() if h is not None} == \
        {b: h for b, h in r["coverage"].items() if b not in BACKPRESSURE_BINS}


@pytest.mark.hw
def test_an_unhit_bin_fails_verify_coverage(tmp_path, capsys):
    # 2,000 random vectors are one fresh population of 32 steps at most: no step reaches the late bias correction.
    assert main(["verify", "--coverage", "--vectors", "2000", "--report-dir", str(tmp_path)]) == 1
    assert "1 bins never hit: bias_correction_late" in capsys.readouterr().out
