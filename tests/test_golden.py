"""Properties of the golden model: the B-bit Madam invariants, special gradients, determinism."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lnsim import GoldenMadam, LNSFormat, MadamConfig, Spec, SpecError, decode_bf16, grad_to_bits
from lnsim import tables
from lnsim.golden import update_inplace, update_trace

FMT = LNSFormat(bits=12, eta0=0.001)
SPEC = Spec(FMT, MadamConfig())


def _fresh(n, spec=SPEC, k_value=None, seed=0):
    rng = np.random.default_rng(seed)
    sign = rng.integers(0, 2, n).astype(np.uint8)
    k = (rng.integers(0, spec.fmt.levels, n) if k_value is None else np.full(n, k_value)).astype(spec.fmt.code_dtype)
    return GoldenMadam(sign, k, spec, 0.5)


def test_first_step_moves_every_normal_gradient_by_eta_rungs():
    opt = _fresh(10_000, k_value=2000)
    g = np.random.default_rng(1).standard_normal(10_000) * np.exp(np.random.default_rng(2).uniform(-20, 5, 10_000))
    opt.step(g)
    expected = np.where(opt.sign == (g < 0), 2000 + 10, 2000 - 10)  # sw == sg: |w| shrinks, k grows
    assert np.array_equal(opt.k, expected)


def test_signs_never_change_and_codes_stay_in_range():
    opt = _fresh(20_000, seed=3)
    sign0 = opt.sign.copy()
    w_sign0 = np.sign(opt.weights())
    rng = np.random.default_rng(4)
    scale = np.exp(rng.uniform(-12, 3, 20_000))
    for _ in range(2000 // 10):
        for _ in range(10):
            opt.step(scale * rng.standard_normal(20_000) + 0.3 * scale)
        assert np.array_equal(opt.sign, sign0)
        assert int(opt.k.max()) <= FMT.code_max
    assert np.array_equal(np.sign(opt.weights()), w_sign0)
    assert opt.t == 2000
    # A steady push saturates codes at both ends, never beyond.
    assert (opt.k == 0).any() and (opt.k == FMT.code_max).any()


@pytest.mark.parametrize("k_value, push", [(0, -1.0), (3, -1.0), (FMT.code_max, 1.0), (FMT.code_max - 3, 1.0)])
def test_saturation_at_both_ends(k_value, push):
    sign = np.zeros(100, np.uint8)
    opt = GoldenMadam(sign, np.full(100, k_value, np.uint16), SPEC, 1.0)
    for _ in range(5):
        opt.step(np.full(100, push))  # positive weight, positive gradient: k grows; negative: k falls
    assert np.all(opt.k == (0 if push < 0 else FMT.code_max))


def test_zero_gradient_leaves_codes_and_decays_state():
    opt = _fresh(1000, k_value=1234)
    opt.step(np.ones(1000))
    k1, st1 = opt.k.copy(), opt.state.copy()
    opt.step(np.zeros(1000))
    opt.step(-np.zeros(1000))
    assert np.array_equal(opt.k, k1)
    assert np.all(opt.state < st1)


def test_nan_leaves_element_untouched_and_is_counted():
    opt = _fresh(6, k_value=1000)
    opt.step(np.ones(6))
    k1, st1 = opt.k.copy(), opt.state.copy()
    g = np.array([np.nan, 1.0, -np.nan, 1.0, 1.0, np.nan])
    stats = opt.step(g)
    assert (stats.nan, stats.inf) == (3, 0)
    nan = np.isnan(g)
    assert np.array_equal(opt.k[nan], k1[nan]) and np.array_equal(opt.state[nan], st1[nan])
    assert not np.array_equal(opt.state[~nan], st1[~nan])


def test_inf_acts_as_largest_finite_value_and_is_counted():
    a, b = _fresh(4, k_value=1000), _fresh(4, k_value=1000)
    big = np.array(grad_to_bits(np.array([3.3895314e38, -3.3895314e38, 1.0, 2.0], np.float32)))
    inf = big.copy()
    inf[:2] = [0x7F80, 0xFF80]
    sa = a.step_bits(big)
    sb = b.step_bits(inf)
    assert (sa.inf, sb.inf, sb.nan) == (0, 2, 0)
    assert np.array_equal(a.k, b.k) and np.array_equal(a.state, b.state)


@settings(max_examples=200, deadline=None)
@given(
    st.integers(0, 2**16 - 1).filter(lambda b: (b >> 7) & 0xFF != 0xFF),
    st.integers(1, 30),
    st.integers(0, 1),
)
def test_step_grows_with_gradient_magnitude(gbits, t, sw):
    # Same state, same sign: a larger |g| never gives a smaller rung step.
    rng = np.random.default_rng(gbits)
    state = 0
    for _ in range(t):  # an EMA built from random earlier gradients
        r = update_trace(SPEC, 0, 2000, int(grad_to_bits(np.float32(rng.standard_normal()))), state, log_eta=0, log_bc=0)
        state = r["st_new"]
    mag = gbits & 0x7FFF
    steps = []
    for m in (mag, min(mag + 1 + (mag >> 3), 0x7F7F)):
        r = update_trace(SPEC, sw, 2000, m, state, log_eta=tables.log_eta_term(SPEC), log_bc=tables.bias_correction_term(SPEC, t + 1))
        steps.append(r["n"])
    assert steps[0] <= steps[1] <= SPEC.eta_star_rungs


def test_parallel_and_serial_and_repeated_runs_agree():
    rng = np.random.default_rng(7)
    n = 100_001
    base = _fresh(n, seed=8)
    grads = [grad_to_bits(rng.standard_normal(n) * np.exp(rng.uniform(-15, 2, n))) for _ in range(5)]
    results = []
    for parallel in (True, False, True):
        k, state = base.k.copy(), base.state.copy()
        for t, gb in enumerate(grads, start=1):
            update_inplace(SPEC, base.sign, k, gb, state, log_eta=tables.log_eta_term(SPEC), log_bc=tables.bias_correction_term(SPEC, t), parallel=parallel)
        results.append((k, state))
    for k, state in results[1:]:
        assert np.array_equal(k, results[0][0]) and np.array_equal(state, results[0][1])


def test_learning_rate_schedule_is_a_per_step_scalar():
    a, b = _fresh(1000, k_value=2000), _fresh(1000, k_value=2000)
    g = np.random.default_rng(9).standard_normal(1000)
    a.step(g, eta_rungs=10)
    b.step(g, eta_rungs=3)
    moved_a = np.abs(a.k.astype(int) - 2000)
    moved_b = np.abs(b.k.astype(int) - 2000)
    assert np.all(moved_a == 10) and np.all(moved_b == 3)
    with pytest.raises(SpecError, match="eta_rungs must be an integer in 1..80"):
        a.step(g, eta_rungs=81)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda o: o.step(np.zeros(5)), r"grad must have shape \(10,\), not \(5,\)"),
        (lambda o: update_inplace(SPEC, o.sign, o.k, np.zeros(10, np.uint32), o.state, log_eta=0, log_bc=0), "grad_bits must be a C-contiguous uint16 array"),
        (lambda o: update_inplace(SPEC, o.sign, o.k.astype(np.int32), np.zeros(10, np.uint16), o.state, log_eta=0, log_bc=0), "k must be a C-contiguous uint16 array"),
        (lambda o: GoldenMadam(o.sign, o.k, SPEC, 1.0, state=np.zeros(10, np.int64)), "state must be a uint32 array"),
        (lambda o: GoldenMadam(o.sign, o.k, "spec", 1.0), "spec must be a Spec"),
        (lambda o: GoldenMadam.from_weights(np.array([0.1, 0.0]), FMT), "w must be finite and non-zero"),
    ],
)
def test_bad_inputs_are_rejected(call, message):
    with pytest.raises(SpecError, match=message):
        call(_fresh(10))


def test_from_weights_defaults_sigma_star_to_three_rms():
    w0 = np.array([0.1, -0.2, 0.3, -0.05])
    opt = GoldenMadam.from_weights(w0, FMT)
    assert opt.sigma_star == pytest.approx(3 * np.sqrt(np.mean(w0**2)))
    assert np.allclose(opt.weights(), w0, rtol=FMT.eta0)
    assert opt.sign.tolist() == [0, 1, 0, 1]


@pytest.mark.parametrize(
    "fmt", [LNSFormat(bits=12, eta0=0.001), LNSFormat(bits=10, eta0=0.004), LNSFormat(bits=8, base="pow2", frac_bits=3), LNSFormat(bits=16, base="pow2", frac_bits=10)],
    ids=lambda f: f.describe(),
)
def test_weight_decoder_is_within_one_bfloat16_ulp(fmt):
    k = np.arange(fmt.levels, dtype=fmt.code_dtype)
    sign = (k % 2).astype(np.uint8)
    bits = decode_bf16(fmt, sign, k, 0.29)
    exact = grad_to_bits((0.29 * np.exp(-k.astype(np.float64) * fmt.eta0) * np.where(sign == 1, -1, 1)).astype(np.float32))
    diff = np.abs(bits.astype(np.int64) - exact.astype(np.int64))
    assert diff.max() <= 1
    assert (diff == 0).mean() >= 0.99
    assert np.array_equal(bits >> 15, sign)


@pytest.mark.parametrize("word", [1023 << 22, (1 << 22) | 5, (700 << 22) | ((1 << 21) - 1)])
def test_invalid_state_words_are_rejected(word):
    sign = np.zeros(2, np.uint8)
    k = np.zeros(2, np.uint16)
    state = np.array([0, word], np.uint32)
    with pytest.raises(SpecError, match=f"state must hold valid second-moment words .* not {word:#x}"):
        GoldenMadam(sign, k, SPEC, 1.0, state=state)
