"""Bits-per-weight accounting (Spec.bits_per_weight, lnsim info, sweep rows) and the fidelity measurement's
stall rate (share of non-zero finite gradients whose integer state word did not change)."""

import json

import numpy as np
import pytest

from lnsim.cli import main
from lnsim.codecs import grad_to_bits
from lnsim.fidelity import drifting_gradients, measure, measure_gradients
from lnsim.spec import BitsPerWeight, Spec, SpecError, bits_per_weight
from naive import naive_log_bc, naive_log_eta, naive_update

# ---------------------------------------------------------------------------------------------------------------
# Bits per weight


@pytest.mark.parametrize("options, expected", [
    ({"bits": 12, "eta0": 0.001}, (12, 1, 32, 45)),   # the 12-bit design
    ({"bits": 8, "eta0": 0.016}, (8, 1, 32, 41)),     # and its 8-bit one
    ({"bits": 12, "state_bits": 28}, (12, 1, 28, 41)),  # the smallest state for bfloat16, s = 10
    ({"bits": 8, "eta0": 0.016, "state_bits": 28}, (8, 1, 28, 37)),
    ({"bits": 16, "base": "pow2", "frac_bits": 10}, (16, 1, 32, 49)),
    ({"bits": 4, "eta0": 0.05, "eta": 0.05, "beta_shift": 1, "grad_format": "float16", "state_bits": 16},
     (4, 1, 16, 21)),  # float16: a 7-bit exponent, so 7 + 1 + 8 = 16 bits is the smallest state
])
def test_bits_per_weight_counts_code_sign_and_state(options, expected):
    spec = Spec.from_options(**options)
    b = spec.bits_per_weight
    assert isinstance(b, BitsPerWeight) and b == bits_per_weight(spec)
    assert (b.weight, b.sign, b.state, b.total) == expected
    assert (b.weight, b.sign, b.state) == (spec.fmt.bits, 1, spec.cfg.state_bits)
    assert b.to_dict() == dict(zip(("weight", "sign", "state", "total"), expected))
    assert b.describe() == f"{expected[3]} = weight {expected[0]} + sign 1 + state {expected[2]}"


def test_the_smallest_float16_state_is_what_the_spec_allows():
    with pytest.raises(SpecError, match="state_bits must be an integer in 16..32, not 15"):
        Spec.from_options(bits=4, eta0=0.05, eta=0.05, beta_shift=1, grad_format="float16", state_bits=15)


def test_info_prints_the_bits_per_weight(capsys):
    assert main(["info", "--bits", "8", "--eta0", "0.016", "--state-bits", "28"]) == 0
    lines = capsys.readouterr().out.splitlines()
    row = next(line for line in lines if line.startswith("bits per weight"))
    assert row == "bits per weight  37 = weight 8 + sign 1 + state 28 (per tensor, not counted: sigma_star, step count)"
    # It sits right after the state word it counts.
    assert lines[lines.index(row) - 1].startswith("state            28 bits = 10-bit exponent + 18-bit mantissa")


def test_info_json_has_bits_per_weight(tmp_path, capsys):
    path = tmp_path / "spec.json"
    assert main(["info", "--bits", "12", "--eta0", "0.001", "--json", str(path)]) == 0
    data = json.loads(path.read_text())
    assert list(data) == ["spec", "table_bits", "bits_per_weight"]
    assert data["bits_per_weight"] == {"weight": 12, "sign": 1, "state": 32, "total": 45}
    # The spec's summary (also the Verilog header's and every report's) is unchanged by the accounting.
    assert "bits_per_weight" not in data["spec"] and data["spec"] == Spec.from_options(bits=12, eta0=0.001).summary()


# ---------------------------------------------------------------------------------------------------------------
# Stall rate: the expected counts come from tests/naive.py (the pure-Python oracle of docs/datapath.md)


def naive_stalls(spec, gradients):
    """(non-zero finite gradients, stalled ones) of the oracle run over ``gradients`` (steps x elements)."""
    gbits = [grad_to_bits(np.asarray(g, np.float32), spec.cfg.grad_format) for g in gradients]
    state = [0] * len(gbits[0])
    log_eta = naive_log_eta(spec, spec.eta_rungs)
    nonzero = stalled = 0
    magnitude = (1 << (8 * gbits[0].itemsize - 1)) - 1  # every bit but the sign
    for t, bits in enumerate(gbits, start=1):
        log_bc = naive_log_bc(spec, t)
        for i, b in enumerate(bits.tolist()):
            _, st, nan, inf = naive_update(spec, 0, spec.fmt.half_ladder, b, state[i], log_eta, log_bc)
            if not nan and not inf and b & magnitude:
                nonzero += 1
                stalled += st == state[i]
            state[i] = st
    return nonzero, stalled


TINY_STATE = Spec.from_options(bits=8, eta0=0.016, beta_shift=1, state_bits=19, step_limit="half")


def test_the_tiny_state_is_the_smallest_allowed():
    assert TINY_STATE.cfg.state_bits == TINY_STATE.cfg.state_exp_bits + 1 + 8 == 19
    with pytest.raises(SpecError):
        Spec.from_options(bits=8, eta0=0.016, beta_shift=1, state_bits=18)


def test_a_constant_gradient_stalls_once_the_ema_reaches_its_fixed_point():
    g = np.array([0.5, -3e-3, 1e-5, 7.0, 1.25, -2e-2], np.float32)
    steps = [g] * 40
    r = measure_gradients(TINY_STATE, steps)
    nonzero, stalled = naive_stalls(TINY_STATE, steps)
    assert (r["nonzero"], r["stalled"]) == (nonzero, stalled) == (240, r["stalled"])
    assert stalled > 100  # every element settles within 40 steps at s = 1 and stays there
    assert r["stall_rate"] == stalled / 240
    assert r["updates"] == 240


def test_a_growing_gradient_never_stalls():
    # |g| doubles every step: the EMA's term outgrows the state, so every word changes.
    base = np.array([1e-6, -3e-4, 0.01, 1.0], np.float32)
    steps = [base * np.float32(2.0**t) for t in range(20)]
    r = measure_gradients(TINY_STATE, steps)
    assert naive_stalls(TINY_STATE, steps) == (80, 0)
    assert (r["nonzero"], r["stalled"], r["stall_rate"]) == (80, 0, 0.0)


def test_zero_and_non_finite_gradients_are_not_counted():
    g = np.array([0.0, -0.0, np.nan, np.inf, -np.inf, 0.5], np.float32)
    r = measure_gradients(TINY_STATE, [g] * 40)
    assert r["updates"] == 240 and r["nonzero"] == 40  # only the 0.5 counts
    assert 0 < r["stalled"] < 40 and r["stall_rate"] == r["stalled"] / 40
    only_zeros = measure_gradients(TINY_STATE, [np.zeros(3, np.float32)] * 5)
    assert (only_zeros["nonzero"], only_zeros["stalled"], only_zeros["stall_rate"]) == (0, 0, 0.0)


def test_drifting_gradients_on_the_tiny_state_match_the_oracle():
    r = measure(TINY_STATE, n=1000, steps=30, seed=3)
    expected = naive_stalls(TINY_STATE, list(drifting_gradients(1000, 30, 3)))
    assert (r["nonzero"], r["stalled"]) == expected
    assert r["stalled"] > 0 and r["stall_rate"] == expected[1] / expected[0]


def test_the_default_state_almost_never_stalls_and_the_tiny_one_does():
    default = measure(Spec.from_options(step_limit="half"), n=20_000, steps=30, seed=0)
    tiny = measure(TINY_STATE, n=20_000, steps=30, seed=0)
    assert default["nonzero"] == 600_000
    assert default["stall_rate"] < 1e-4 < tiny["stall_rate"]


def test_measure_gradients_checks_its_gradients():
    with pytest.raises(SpecError, match="gradients must have at least one step, not 0"):
        measure_gradients(TINY_STATE, [])
    with pytest.raises(SpecError, match="gradients must have at least one element per step, not 0"):
        measure_gradients(TINY_STATE, [np.zeros(0, np.float32)])
    with pytest.raises(SpecError, match="gradients must have 3 elements at every step .as the first., not 2 at step 2"):
        measure_gradients(TINY_STATE, [np.ones(3, np.float32), np.ones(2, np.float32)])


def test_measure_is_measure_gradients_on_drifting_gradients():
    spec = Spec.from_options(bits=10, eta0=0.004, state_bits=28, step_limit="half")
    assert measure(spec, n=2000, steps=5, seed=7) == measure_gradients(spec, drifting_gradients(2000, 5, 7))


# ---------------------------------------------------------------------------------------------------------------
# The sweep's rows and summaries


def _rows(out, stem):
    return json.loads((out / f"{stem}.json").read_text())


def test_fidelity_sweep_rows_carry_stall_rate_and_bits_per_weight(tmp_path):
    out = tmp_path / "fid"
    assert main(["sweep", "--fidelity", "--bits", "8", "--eta0", "0.016", "--beta-shift", "1", "--state-bits", "19,32",
                 "--elements", "1000", "--steps", "30", "--seed", "3", "--quiet", "--out", str(out)]) == 0
    rows = _rows(out, "fidelity")
    assert [(r["state_bits"], r["bits_per_weight"]) for r in rows] == [(19, 28), (32, 41)]
    tiny = measure(TINY_STATE, n=1000, steps=30, seed=3)
    assert rows[0]["stall_rate"] == tiny["stall_rate"] > 0
    md = (out / "fidelity.md").read_text()
    assert "| stall rate | bits per weight | update table bits | seconds |" in md
    assert f"| {100 * tiny['stall_rate']:.4f}% | 28 | " in md
    header = (out / "fidelity.csv").read_text().splitlines()[0].split(",")
    assert "stall_rate" in header and "bits_per_weight" in header


def test_training_sweep_rows_carry_bits_per_weight(tmp_path):
    out = tmp_path / "train"
    assert main(["sweep", "--bits", "6,8", "--eta0", "0.016", "--state-bits", "28", "--dataset", "iris", "--epochs", "1",
                 "--hidden", "4", "--seeds", "1", "--quiet", "--out", str(out)]) == 0
    rows = _rows(out, "results")
    assert [(r["optimizer"], r["bits"], r["bits_per_weight"]) for r in rows] == [
        ("lns-madam", 6, 35), ("lns-madam", 8, 37), ("madam", None, None)]
    lines = (out / "summary.md").read_text().splitlines()
    head = next(line for line in lines if line.startswith("| configuration"))
    cells = [c.strip() for c in head.strip("|").split("|")]
    col = cells.index("bits per weight")
    body = [[c.strip() for c in line.strip("|").split("|")] for line in lines if line.startswith("| ") and line != head]
    assert [row[col] for row in body] == ["35", "37", "-"]
