"""Tests of the float64 reference optimisers in lnsim.reference (Madam, Adam, SGD)."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest

from lnsim.reference import SGD, Adam, Madam
from lnsim.validation import SpecError

# A 3-element example shared by the hand-computed tests; the third gradient is 0 on step 1 (a 0/0).
W0 = [0.5, -0.2, 0.1]
G1 = [0.3, -0.1, 0.0]
G2 = [-0.2, 0.4, 0.05]


def _sign(x: float) -> float:
    return (x > 0) - (x < 0)


def _madam_by_hand(w0, grads, eta, g_bound, beta, sigma_star, p_scale, bias_correction):
    """Madam's formulas written out with plain Python floats and math, one weight at a time."""
    if sigma_star is None:
        sigma_star = p_scale * math.sqrt(sum(w * w for w in w0) / len(w0))
    out = []
    for i, w in enumerate(w0):
        v = 0.0
        history = []
        for t, grad in enumerate(grads, start=1):
            g = grad[i]
            v = beta * v + (1 - beta) * g * g
            second = v / (1 - beta**t) if bias_correction else v
            g_normed = 0.0 if g == 0 and second == 0 else g / math.sqrt(second)
            g_normed = min(max(g_normed, -g_bound), g_bound)
            w = w * math.exp(-eta * g_normed * _sign(w))
            w = min(max(w, -sigma_star), sigma_star)
            history.append(w)
        out.append(history)
    return [[row[t] for row in out] for t in range(len(grads))]


MADAM_DEFAULTS = dict(eta=0.01, g_bound=8.0, beta=0.999, sigma_star=None, p_scale=3.0, bias_correction=True)


@pytest.mark.parametrize("kwargs", [
    {},
    {"bias_correction": False},  # step 1 normalised gradient is 1/sqrt(1-beta) = 31.6, clamped to 8
    {"sigma_star": 0.45},  # w[0] = 0.5 * e**-0.01 is clamped to 0.45 on step 1
    {"eta": 0.1, "beta": 0.9, "p_scale": 1.0},  # sigma_star = sqrt(0.1) = 0.316: w[0] clamped
    {"g_bound": 1.2, "beta": 0.5},  # step 2: |g_normed| = 1.206 and sqrt(1.5) = 1.225 clamp w[1], w[2]
], ids=["defaults", "no-bias-correction", "sigma-star", "eta-beta-p-scale", "g-bound"])
def test_madam_two_steps_match_hand_computation(kwargs):
    params = {**MADAM_DEFAULTS, **kwargs}
    expected = _madam_by_hand(W0, [G1, G2], **params)
    opt = Madam(W0, **kwargs)
    assert opt.t == 0
    opt.step(G1)
    assert opt.t == 1
    np.testing.assert_allclose(opt.weights(), expected[0], rtol=1e-13, atol=0)
    opt.step(G2)
    assert opt.t == 2
    np.testing.assert_allclose(opt.weights(), expected[1], rtol=1e-13, atol=0)


def test_madam_default_first_step_is_a_factor_exp_eta():
    # With bias correction, step 1's normalised gradient is sign(g): each weight with a non-zero gradient
    # moves by exactly a factor e**-0.01 or e**+0.01; the weight with a zero gradient does not move.
    opt = Madam(W0)
    assert opt.sigma_star == pytest.approx(3 * math.sqrt(0.1), rel=1e-15)
    opt.step(G1)
    np.testing.assert_allclose(opt.weights(), [0.5 * math.exp(-0.01), -0.2 * math.exp(-0.01), 0.1], rtol=1e-15)
    np.testing.assert_allclose(opt.exp_avg_sq, [0.09e-3, 0.01e-3, 0.0], rtol=1e-12)


def test_madam_second_step_values_written_out():
    # The defaults' step 2 for w[0], fully by hand: v = 0.999 * 0.001 * 0.3**2 + 0.001 * 0.2**2.
    v = 0.999 * 0.001 * 0.09 + 0.001 * 0.04
    g_normed = -0.2 / math.sqrt(v / (1 - 0.999**2))  # about -0.7845
    opt = Madam(W0)
    opt.step(G1)
    opt.step(G2)
    assert g_normed == pytest.approx(-0.78454, abs=1e-5)
    assert opt.weights()[0] == pytest.approx(0.5 * math.exp(-0.01) * math.exp(0.01 * -g_normed), rel=1e-13)


@pytest.mark.parametrize("kwargs", [
    {"eta": 0.05},
    {"eta": 0.2, "sigma_star": 0.3},
    {"eta": 0.05, "bias_correction": False, "beta": 0.9},
])
def test_madam_signs_fixed_and_bounded_over_1000_random_steps(kwargs):
    rng = np.random.default_rng(1234)
    w0 = rng.normal(size=(4, 5))
    opt = Madam(w0, **kwargs)
    bound = opt.sigma_star
    for _ in range(1000):
        scale = 10.0 ** rng.integers(-6, 6)
        opt.step(scale * rng.normal(size=w0.shape))
        w = opt.weights()
        assert np.array_equal(np.sign(w), np.sign(w0))
        assert np.all(np.abs(w) <= bound)
    assert opt.t == 1000
    assert opt.sigma_star == bound


def test_madam_zero_gradient_on_first_step_leaves_weight_unchanged():
    opt = Madam(W0)
    opt.step([0.0, 0.0, 0.0])
    assert np.array_equal(opt.weights(), W0)
    assert np.array_equal(opt.exp_avg_sq, [0.0, 0.0, 0.0])
    # Step 2 with a gradient only on w[0]: v = 0.001 g**2 and 1 - beta**2 = 0.001999, so
    # |g_normed| = sqrt(1.999); the others still see 0/0 and stay put.
    opt.step([1.0, 0.0, 0.0])
    expected0 = 0.5 * math.exp(-0.01 * math.sqrt((1 - 0.999**2) / (1 - 0.999)))
    np.testing.assert_allclose(opt.weights(), [expected0, -0.2, 0.1], rtol=1e-13)


def test_madam_zero_weight_stays_zero():
    opt = Madam([0.0, 1.0])
    for g in ([1.0, 1.0], [-5.0, 2.0]):
        opt.step(g)
    assert opt.weights()[0] == 0.0


@pytest.mark.parametrize("direction", [+1.0, -1.0], ids=["shrink", "grow"])
@pytest.mark.parametrize("n_small, kwargs", [
    (1, {"bias_correction": False}),  # |g_normed| -> 1/sqrt(1 - beta) = 31.6 > 8
    (1, {"g_bound": 1.2}),  # with bias correction, step 2 |g_normed| <= sqrt(1 + beta) = 1.414
    (99, {}),  # by step 100, sqrt((1 - beta**100) / (1 - beta)) = 9.76 > 8
])
def test_madam_huge_gradient_after_small_ones_is_clamped(n_small, kwargs, direction):
    eta = 0.01
    g_bound = kwargs.get("g_bound", 8.0)
    opt = Madam([0.5, -0.5], eta=eta, sigma_star=100.0, **kwargs)
    for _ in range(n_small):
        opt.step([1e-3, 1e-3])
    before = np.abs(opt.weights())
    opt.step([direction * 1e6, direction * 1e6])
    after = np.abs(opt.weights())
    # w[0] > 0 shrinks on a positive gradient; w[1] < 0 grows on it (and the opposite for a negative one).
    np.testing.assert_allclose(
        after / before,
        [math.exp(-direction * eta * g_bound), math.exp(direction * eta * g_bound)],
        rtol=1e-14,
    )


def test_madam_grad_square_underflow_clamps_to_g_bound():
    # (1e-200)**2 underflows to 0, so g / sqrt(0) = inf, which the clamp turns into g_bound (as PyTorch).
    opt = Madam([0.5], eta=0.01, g_bound=8.0)
    opt.step([1e-200])
    assert opt.weights()[0] == pytest.approx(0.5 * math.exp(-0.08), rel=1e-15)


def test_madam_keeps_shape_and_does_not_alias_w0():
    w0 = np.arange(1.0, 7.0).reshape(2, 3).astype(np.float32)
    opt = Madam(w0)
    opt.step(np.ones((2, 3)))
    w = opt.weights()
    assert w.dtype == np.float64 and w.shape == (2, 3)
    assert np.array_equal(w0, np.arange(1.0, 7.0).reshape(2, 3))  # caller's array untouched
    w[:] = 0.0
    assert np.all(opt.weights() != 0.0)  # weights() is a copy


# --------------------------------------------------------------------------------------------------
# Adam
# --------------------------------------------------------------------------------------------------

A_W0 = [1.0, -0.5]
A_G1 = [0.5, 0.25]
A_G2 = [-1.0, 0.5]


def _adam_by_hand(lr, b1, b2, eps, wd):
    """Two Adam steps on (A_W0, A_G1, A_G2) with plain Python math."""
    result = []
    for w, g1, g2 in zip(A_W0, A_G1, A_G2):
        g = g1 + wd * w
        m = (1 - b1) * g
        v = (1 - b2) * g * g
        w1 = w - lr / (1 - b1) * m / (math.sqrt(v) / math.sqrt(1 - b2) + eps)
        g = g2 + wd * w1
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        w2 = w1 - lr / (1 - b1**2) * m / (math.sqrt(v) / math.sqrt(1 - b2**2) + eps)
        result.append((w1, w2))
    return [[r[0] for r in result], [r[1] for r in result]]


@pytest.mark.parametrize("kwargs, lr, b1, b2, eps, wd", [
    ({}, 1e-3, 0.9, 0.999, 1e-8, 0.0),
    ({"lr": 0.1, "betas": (0.5, 0.75)}, 0.1, 0.5, 0.75, 1e-8, 0.0),
    ({"lr": 0.1, "betas": (0.5, 0.75), "eps": 0.1}, 0.1, 0.5, 0.75, 0.1, 0.0),
    ({"lr": 0.1, "weight_decay": 0.2}, 0.1, 0.9, 0.999, 1e-8, 0.2),
], ids=["defaults", "betas", "eps", "weight-decay"])
def test_adam_two_steps_match_hand_computation(kwargs, lr, b1, b2, eps, wd):
    expected = _adam_by_hand(lr, b1, b2, eps, wd)
    opt = Adam(A_W0, **kwargs)
    opt.step(A_G1)
    np.testing.assert_allclose(opt.weights(), expected[0], rtol=1e-13)
    opt.step(A_G2)
    np.testing.assert_allclose(opt.weights(), expected[1], rtol=1e-13)
    assert opt.t == 2


def test_adam_literal_values():
    # lr=0.1, betas=(0.5, 0.75): step 1 moves each weight by lr * g / (|g| + eps), i.e. almost exactly 0.1.
    # Step 2: m = [-0.375, 0.3125] / 0.75, v = [0.296875, 0.07421875] / 0.4375.
    opt = Adam(A_W0, lr=0.1, betas=(0.5, 0.75))
    opt.step(A_G1)
    np.testing.assert_allclose(opt.weights(), [0.9, -0.6], rtol=1e-8)
    opt.step(A_G2)
    np.testing.assert_allclose(
        opt.weights(),
        [0.9 + 0.1 * 0.5 / math.sqrt(0.296875 / 0.4375), -0.6 - 0.1 * (0.3125 / 0.75) / math.sqrt(0.07421875 / 0.4375)],
        rtol=1e-8,
    )
    np.testing.assert_allclose(opt.weights(), [0.96070, -0.70117], atol=1e-5)


# --------------------------------------------------------------------------------------------------
# SGD (values worked by hand on w0 = [1, -0.5], g1 = [0.5, 0.25], g2 = [-1, 0.5], lr = 0.1)
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kwargs, w1, w2", [
    # w1 = w0 - 0.1 g1; w2 = w1 - 0.1 g2
    ({}, [0.95, -0.525], [1.05, -0.575]),
    # buf1 = g1; buf2 = 0.5 g1 + g2 = [-0.75, 0.625]
    ({"momentum": 0.5}, [0.95, -0.525], [1.025, -0.5875]),
    # d1 = g1 + 0.5 g1 = [0.75, 0.375]; d2 = g2 + 0.5 buf2 = [-1.375, 0.8125]
    ({"momentum": 0.5, "nesterov": True}, [0.925, -0.5375], [1.0625, -0.61875]),
    # d1 = g1 + 0.1 w0 = [0.6, 0.2]; d2 = g2 + 0.1 w1 = [-0.906, 0.448]
    ({"weight_decay": 0.1}, [0.94, -0.52], [1.0306, -0.5648]),
    # buf2 = 0.5 [0.6, 0.2] + [-0.906, 0.448] = [-0.606, 0.548]
    ({"weight_decay": 0.1, "momentum": 0.5}, [0.94, -0.52], [1.0006, -0.5748]),
    # d1 = 1.5 [0.6, 0.2]; d2 = g2 + 0.1 w1 = [-0.909, 0.447]; buf2 = [-0.609, 0.547];
    # step 2 direction d2 + 0.5 buf2 = [-1.2135, 0.7205]
    ({"weight_decay": 0.1, "momentum": 0.5, "nesterov": True}, [0.91, -0.53], [1.03135, -0.60205]),
    ({"lr": 0.0, "momentum": 0.9}, [1.0, -0.5], [1.0, -0.5]),
], ids=["plain", "momentum", "nesterov", "weight-decay", "wd-momentum", "wd-nesterov", "lr-zero"])
def test_sgd_two_steps_match_hand_computation(kwargs, w1, w2):
    opt = SGD(A_W0, **{"lr": 0.1, **kwargs})
    opt.step(A_G1)
    np.testing.assert_allclose(opt.weights(), w1, rtol=1e-14)
    opt.step(A_G2)
    np.testing.assert_allclose(opt.weights(), w2, rtol=1e-14)
    assert opt.t == 2


def test_sgd_momentum_buffer_is_not_aliased_to_the_gradient():
    g = np.array([0.5, 0.25])
    opt = SGD(A_W0, lr=0.1, momentum=0.5)
    opt.step(g)
    g[:] = 0.0  # the caller reusing its gradient array must not change the momentum buffer
    opt.step(A_G2)
    np.testing.assert_allclose(opt.weights(), [1.025, -0.5875], rtol=1e-14)


# --------------------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("cls, kwargs, message", [
    (Madam, {"eta": -1.0}, "eta must be a finite number > 0, not -1.0"),
    (Madam, {"eta": 0}, "eta must be a finite number > 0, not 0"),
    (Madam, {"eta": float("nan")}, "eta must be a finite number > 0, not nan"),
    (Madam, {"eta": True}, "eta must be a finite number > 0, not True"),
    (Madam, {"eta": "0.1"}, "eta must be a finite number > 0, not '0.1'"),
    (Madam, {"g_bound": float("inf")}, "g_bound must be a finite number > 0, not inf"),
    (Madam, {"beta": 1.0}, "beta must be a number in [0, 1), not 1.0"),
    (Madam, {"beta": -0.1}, "beta must be a number in [0, 1), not -0.1"),
    (Madam, {"sigma_star": 0.0}, "sigma_star must be a finite number > 0, not 0.0"),
    (Madam, {"p_scale": -3.0}, "p_scale must be a finite number > 0, not -3.0"),
    (Madam, {"bias_correction": 1}, "bias_correction must be True or False, not 1"),
    (Adam, {"lr": -0.001}, "lr must be a finite number >= 0, not -0.001"),
    (Adam, {"betas": (0.9, 1.0)}, "betas must be a pair of numbers in [0, 1), not (0.9, 1.0)"),
    (Adam, {"betas": (0.9,)}, "betas must be a pair of numbers in [0, 1), not (0.9,)"),
    (Adam, {"betas": 0.9}, "betas must be a pair of numbers in [0, 1), not 0.9"),
    (Adam, {"eps": 0.0}, "eps must be a finite number > 0, not 0.0"),
    (Adam, {"weight_decay": -1}, "weight_decay must be a finite number >= 0, not -1"),
    (SGD, {"lr": float("inf")}, "lr must be a finite number >= 0, not inf"),
    (SGD, {"momentum": -0.9}, "momentum must be a finite number >= 0, not -0.9"),
    (SGD, {"nesterov": "yes", "momentum": 0.9}, "nesterov must be True or False, not 'yes'"),
    (SGD, {"nesterov": True}, "momentum must be > 0 when nesterov is True, not 0.0"),
    (SGD, {"weight_decay": float("nan")}, "weight_decay must be a finite number >= 0, not nan"),
])
def test_invalid_hyper_parameters_raise_naming_the_parameter(cls, kwargs, message):
    with pytest.raises(ValueError, match="^" + re.escape(message) + "$"):
        cls([1.0, -1.0], **kwargs)


@pytest.mark.parametrize("cls, w0, match", [
    (Madam, [1.0, float("nan")], r"^w0 must contain only finite numbers, not an array with 1 non-finite"),
    (SGD, [[float("inf"), float("-inf")]], r"^w0 must contain only finite numbers, not an array with 2 non-finite"),
    (Adam, ["a", "b"], r"^w0 must be an array of real numbers"),
    (Madam, [], r"^w0 must be non-empty when sigma_star is None"),
])
def test_invalid_initial_weights_raise(cls, w0, match):
    with pytest.raises(ValueError, match=match):
        cls(w0)


def test_madam_empty_weights_allowed_with_explicit_sigma_star():
    opt = Madam(np.zeros((0, 3)), sigma_star=1.0)
    opt.step(np.zeros((0, 3)))
    assert opt.weights().shape == (0, 3)


@pytest.mark.parametrize("cls", [Madam, Adam, SGD])
@pytest.mark.parametrize("grad, shape_text", [
    (np.ones(3), "(3,)"),
    (np.ones((2, 1)), "(2, 1)"),
    (1.0, "()"),
])
def test_grad_shape_mismatch_raises(cls, grad, shape_text):
    opt = cls(np.ones((1, 2)))
    with pytest.raises(ValueError, match=re.escape(f"grad must have shape (1, 2) (the shape of w0), not {shape_text}")):
        opt.step(grad)
    assert opt.t == 0
    assert np.array_equal(opt.weights(), np.ones((1, 2)))


@pytest.mark.parametrize("cls", [Madam, Adam, SGD])
def test_step_returns_none_and_counts(cls):
    opt = cls(np.array([0.5, -0.25]))
    assert opt.step([0.1, 0.2]) is None
    assert opt.step(np.array([0.1, 0.2], dtype=np.float32)) is None
    assert opt.t == 2


# --------------------------------------------------------------------------------------------------
# Learning-rate setters
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("cls, name, value, message", [
    (Madam, "eta", 0.0, "eta must be a finite number > 0, not 0.0"),
    (Madam, "eta", float("inf"), "eta must be a finite number > 0, not inf"),
    (Madam, "g_bound", -8, "g_bound must be a finite number > 0, not -8"),
    (Adam, "lr", -0.001, "lr must be a finite number >= 0, not -0.001"),
    (Adam, "lr", "0.1", "lr must be a finite number >= 0, not '0.1'"),
    (SGD, "lr", float("nan"), "lr must be a finite number >= 0, not nan"),
    (SGD, "lr", True, "lr must be a finite number >= 0, not True"),
])
def test_invalid_learning_rate_is_refused_and_leaves_it(cls, name, value, message):
    opt = cls(W0)
    before = getattr(opt, name)
    with pytest.raises(SpecError, match="^" + re.escape(message) + "$"):
        setattr(opt, name, value)
    assert getattr(opt, name) == before


def test_learning_rate_set_between_steps_is_used():
    sgd = SGD(A_W0, lr=0.1)
    assert sgd.lr == 0.1
    sgd.lr = 0.5
    sgd.step(A_G1)
    np.testing.assert_allclose(sgd.weights(), [0.75, -0.625], rtol=1e-15)
    adam = Adam(A_W0, lr=0.1)
    adam.lr = 0.2
    adam.step(A_G1)  # step 1 moves each weight by lr * sign(g)
    np.testing.assert_allclose(adam.weights(), [0.8, -0.7], rtol=1e-7)  # eps = 1e-8 against |g| = 0.25
    madam = Madam(W0, eta=0.01)
    madam.eta, madam.g_bound = 0.05, 4
    assert (madam.eta, madam.g_bound) == (0.05, 4.0) and isinstance(madam.g_bound, float)
    madam.step(G1)  # bias-corrected step 1: g_normed = sign(g)
    np.testing.assert_allclose(madam.weights(), [0.5 * math.exp(-0.05), -0.2 * math.exp(-0.05), 0.1], rtol=1e-15)


# --------------------------------------------------------------------------------------------------
# state_dict / load_state_dict
# --------------------------------------------------------------------------------------------------

STATE_KEYS = {
    Madam: ["w", "t", "exp_avg_sq", "eta", "g_bound", "beta", "sigma_star", "bias_correction"],
    Adam: ["w", "t", "exp_avg", "exp_avg_sq", "lr", "beta1", "beta2", "eps", "weight_decay"],
    SGD: ["w", "t", "momentum_buffer", "lr", "momentum", "nesterov", "weight_decay"],
}
#: Non-default hyper-parameters per class, and others for the optimiser a state is loaded into.
SETTINGS = {
    Madam: ({"eta": 0.02, "g_bound": 3.0, "beta": 0.9, "sigma_star": 0.7, "bias_correction": False},
            {"eta": 0.5, "sigma_star": 2.0}),
    Adam: ({"lr": 0.01, "betas": (0.8, 0.99), "eps": 1e-6, "weight_decay": 0.1}, {"lr": 0.5}),
    SGD: ({"lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 0.01}, {"lr": 1.0}),
}


def _random_grads(n, shape, seed=5):
    rng = np.random.default_rng(seed)
    return [rng.normal(size=shape) for _ in range(n)]


@pytest.mark.parametrize("cls", [Madam, Adam, SGD])
def test_state_dict_keys_and_types(cls):
    opt = cls(np.ones((2, 3)), **SETTINGS[cls][0])
    for g in _random_grads(2, (2, 3)):
        opt.step(g)
    state = opt.state_dict()
    assert list(state) == STATE_KEYS[cls] and state["t"] == 2 and type(state["t"]) is int
    arrays = {k: v for k, v in state.items() if isinstance(v, np.ndarray)}
    assert all(a.dtype == np.float64 and a.shape == (2, 3) for a in arrays.values())
    np.testing.assert_array_equal(state["w"], opt.weights())
    hyper = {k: v for k, v in state.items() if k not in arrays and k != "t"}
    expected = dict(SETTINGS[cls][0])
    if cls is Adam:
        expected["beta1"], expected["beta2"] = expected.pop("betas")
    assert hyper == expected and all(type(v) in (float, bool) for v in hyper.values())


def test_sgd_state_has_no_momentum_buffer_until_it_exists():
    assert "momentum_buffer" not in SGD(W0, momentum=0.9).state_dict()
    plain = SGD(W0)
    plain.step(G1)
    assert "momentum_buffer" not in plain.state_dict()  # no momentum: never created


@pytest.mark.parametrize("cls", [Madam, Adam, SGD])
@pytest.mark.parametrize("steps_before", [0, 1, 7])
def test_load_state_dict_resumes_bit_for_bit(cls, steps_before):
    settings, other = SETTINGS[cls]
    grads = _random_grads(steps_before + 5, (3, 2))
    w0 = np.random.default_rng(6).normal(size=(3, 2))
    whole = cls(w0, **settings)
    for g in grads[:steps_before]:
        whole.step(g)
    resumed = cls(np.zeros((3, 2)) + 0.25, **other)
    state = whole.state_dict()
    resumed.load_state_dict(state)
    assert resumed.t == whole.t == steps_before
    for value in state.values():
        if isinstance(value, np.ndarray):
            value[:] = 99.0  # the dict aliases neither the optimiser it came from nor the one it went to
    for g in grads[steps_before:]:
        whole.step(g)
        resumed.step(g)
    np.testing.assert_array_equal(resumed.weights(), whole.weights())
    a, b = whole.state_dict(), resumed.state_dict()
    assert list(a) == list(b)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])


_DROP = object()


def _state(cls, **changes):
    opt = cls([0.5, -0.25], **({"momentum": 0.5} if cls is SGD else {}))
    opt.step([0.1, 0.2])
    state = opt.state_dict()
    for key, value in changes.items():
        if value is _DROP:
            del state[key]
        else:
            state[key] = value
    return state


ADAM_KEYS = "w, t, exp_avg, exp_avg_sq, lr, beta1, beta2, eps, weight_decay"


@pytest.mark.parametrize("cls, state, message", [
    (Adam, [1, 2], "Adam state must be a dict, not [1, 2]"),
    (Adam, _state(Adam, lr=_DROP), f"Adam state must have the keys {ADAM_KEYS}, not a dict without 'lr'"),
    (Adam, _state(Adam, _lr=0.1, eps=_DROP),
     f"Adam state must have the keys {ADAM_KEYS}, not a dict without 'eps' and with the unknown key '_lr'"),
    (SGD, _state(SGD, momentum_buffer=None),
     "SGD state momentum_buffer must be a float array of shape (2,), not None"),
    (Adam, _state(Adam, w=np.zeros(3)),
     "Adam state w must be a float array of shape (2,), not an array of dtype float64 and shape (3,)"),
    (Adam, _state(Adam, exp_avg=np.zeros(2, np.int64)),
     "Adam state exp_avg must be a float array of shape (2,), not an array of dtype int64 and shape (2,)"),
    (Madam, _state(Madam, exp_avg_sq=[0.0, 0.0]),
     "Madam state exp_avg_sq must be a float array of shape (2,), not [0.0, 0.0]"),
    (Madam, _state(Madam, t=-1), "Madam state t must be an integer >= 0, not -1"),
    (Madam, _state(Madam, t=1.0), "Madam state t must be an integer >= 0, not 1.0"),
    (Madam, _state(Madam, beta=1.0), "Madam state beta must be a number in [0, 1), not 1.0"),
    (Madam, _state(Madam, sigma_star=0.0), "Madam state sigma_star must be a finite number > 0, not 0.0"),
    (Madam, _state(Madam, bias_correction=1), "Madam state bias_correction must be True or False, not 1"),
    (Adam, _state(Adam, lr=-1.0), "Adam state lr must be a finite number >= 0, not -1.0"),
    (SGD, _state(SGD, nesterov=True, momentum=0.0),
     "SGD state momentum must be > 0 when nesterov is True, not 0.0"),
    (SGD, _state(SGD, momentum=-0.5), "SGD state momentum must be a finite number >= 0, not -0.5"),
])
def test_invalid_state_is_refused_and_changes_nothing(cls, state, message):
    opt = cls([0.5, -0.25], **({"momentum": 0.5} if cls is SGD else {}))
    before = opt.state_dict()
    with pytest.raises(SpecError, match="^" + re.escape(message) + "$"):
        opt.load_state_dict(state)
    after = opt.state_dict()
    assert list(after) == list(before) and all(np.array_equal(after[k], before[k]) for k in before)


def test_loaded_state_may_hold_non_finite_moments():
    """A moving average fed an infinite gradient is infinite; its state still round-trips."""
    opt = Madam([0.5, -0.25])
    opt.step([np.inf, 0.1])
    state = opt.state_dict()
    assert np.isinf(state["exp_avg_sq"][0])
    other = Madam([1.0, 1.0])
    other.load_state_dict(state)
    np.testing.assert_array_equal(other.exp_avg_sq, state["exp_avg_sq"])
