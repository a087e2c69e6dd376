"""B-bit Madam over the model's tensors: initialisation, the fused step against GoldenMadam.step, float baselines."""

import numpy as np
import pytest

import lnsim
from lnsim.golden import GoldenMadam, decode_bf16
from lnsim.train.model import MLP
from lnsim.train.optim import INIT_DEPTH, FloatParams, LNSParams, init_depth_rungs, init_lns
from lnsim.train.runner import limit_threads


def _spec(bits, eta0, rungs):
    fmt = lnsim.LNSFormat(bits, eta0)
    return lnsim.Spec(fmt, lnsim.MadamConfig.from_rungs(fmt, rungs, 8 * rungs))


@pytest.mark.parametrize("bits, eta0, depth", [(16, 0.001, 4095), (12, 0.001, 4095), (10, 0.004, 1023), (8, 0.016, 255)])
def test_init_depth(bits, eta0, depth):
    assert init_depth_rungs(_spec(bits, eta0, 1)) == depth
    assert depth * eta0 <= INIT_DEPTH + 1e-9


@pytest.mark.parametrize("init", ["quantized", "uniform-rungs"])
def test_init(init):
    m = MLP(64, (32,), 10)
    w0 = m.init_float(np.random.default_rng(0))
    ts = init_lns(_spec(16, 0.001, 10), w0, m.init_scale(), init, 3.0, np.random.default_rng(1))
    for t, w, scale in zip(ts, w0, m.init_scale()):
        assert t.sigma_star == pytest.approx(3 * scale)
        np.testing.assert_array_equal(t.sign, w < 0)  # signs of the usual init, frozen
        assert t.k.dtype == np.uint16 and t.k.max() <= 4095  # 16-bit ladder, codes over 60x only
    k = ts[0].k
    if init == "uniform-rungs":
        assert k.min() < 100 and k.max() > 4000 and abs(k.mean() - 2047) < 100
    else:
        np.testing.assert_array_equal(k, np.minimum(lnsim.encode(w0[0], ts[0].spec.fmt, ts[0].sigma_star)[1], 4095))
        # same codes on a 12-bit ladder: the init does not depend on the ladder's length
        t12 = init_lns(_spec(12, 0.001, 10), w0, m.init_scale(), init, 3.0, np.random.default_rng(1))
        np.testing.assert_array_equal(t12[0].k, k)


@pytest.mark.parametrize("bits, eta0, rungs", [(12, 0.001, 10), (8, 0.016, 1)])
def test_fused_step_equals_golden_madam_step(bits, eta0, rungs):
    spec = _spec(bits, eta0, rungs)
    m = MLP(6, (5,), 3)
    w0 = m.init_float(np.random.default_rng(2))
    fused = LNSParams(init_lns(spec, w0, m.init_scale(), "uniform-rungs", 3.0, np.random.default_rng(3)))
    plain = LNSParams(init_lns(spec, w0, m.init_scale(), "uniform-rungs", 3.0, np.random.default_rng(3)), fused=False)
    rng = np.random.default_rng(4)
    with limit_threads(1):  # GoldenMadam.step runs the parallel kernel: one thread is quicker on tiny tensors
        _run_both(fused, plain, m, rng, rungs)
    assert (fused.nan, fused.inf) == (plain.nan, plain.inf) == (1, 1)


def _run_both(fused, plain, m, rng, rungs):
    for step in range(60):
        grads = [rng.normal(size=s).astype(np.float32) * 10.0 ** rng.integers(-8, 3) for s in m.shapes]
        if step == 5:
            grads[0][0, 0], grads[2][1, 1], grads[1][0] = np.nan, np.inf, 0.0
        for p in (fused, plain):
            p.step(grads, eta_rungs=max(1, rungs - step // 20))
        for a, b in zip(fused.tensors, plain.tensors):
            np.testing.assert_array_equal(a.k, b.k)
            np.testing.assert_array_equal(a.state, b.state)
            assert a.t == b.t == step + 1
        for a, b in zip(fused.params(), plain.params()):
            np.testing.assert_array_equal(a, b)


def test_decoded_weights_are_the_decoders():
    spec = _spec(10, 0.004, 3)
    m = MLP(4, (3,), 2)
    p = LNSParams(init_lns(spec, m.init_float(np.random.default_rng(0)), m.init_scale(), "quantized", 3.0, None))
    for w, t in zip(p.params(), p.tensors):
        bits = decode_bf16(spec.fmt, t.sign, t.k, t.sigma_star)
        np.testing.assert_array_equal(w.view(np.uint32), bits.astype(np.uint32) << 16)
        assert isinstance(t, GoldenMadam) and w.dtype == np.float32


def test_float_madam_follows_the_rung_schedule():
    spec = _spec(12, 0.001, 10)
    w0 = [np.array([0.5, -0.2])]
    p = FloatParams("madam", w0, spec=spec, sigma_stars=[1.0], lr=0.0, momentum=0.0)
    p.step([np.array([1.0, 1.0], np.float32)], eta_rungs=5, scale=0.5)
    t = p.tensors[0]
    assert t.eta == pytest.approx(0.005) and t.g_bound == pytest.approx(16.0)
    # first step: g / sqrt(gbar2 / (1 - beta)) = 1, so w *= exp(-eta * sign(w))
    np.testing.assert_allclose(t.weights(), [0.5 * np.exp(-0.005), -0.2 * np.exp(0.005)])


@pytest.mark.parametrize("name", ["madam", "adam", "sgd"])
def test_float_state_resumes_bit_for_bit(name):
    """state() / load_state() carry each tensor's state_dict(): a restored copy steps exactly as the original."""
    spec = _spec(12, 0.001, 10)
    m = MLP(3, (4,), 2)
    w0 = m.init_float(np.random.default_rng(0))
    rng = np.random.default_rng(1)
    grads = [[rng.normal(size=s) for s in m.shapes] for _ in range(6)]
    whole, resumed = (FloatParams(name, w0, spec=spec, sigma_stars=[1.0] * 4, lr=0.01, momentum=0.9) for _ in "ab")
    for g in grads[:3]:
        whole.step(g, eta_rungs=10, scale=1.0)
    state = whole.state()
    assert [set(st) for st in state] == [set(t.state_dict()) for t in whole.tensors]
    assert not any(key.startswith("_") for st in state for key in st)
    resumed.load_state(state)
    for g in grads[3:]:
        for p in (whole, resumed):
            p.step(g, eta_rungs=5, scale=0.5)
    for a, b in zip(whole.params(), resumed.params()):
        np.testing.assert_array_equal(a, b)
    assert [t.t for t in resumed.tensors] == [6] * 4


def test_float_load_state_is_checked_whole_before_it_changes_anything():
    spec = _spec(12, 0.001, 10)
    w0 = [np.array([0.5, -0.2]), np.array([0.1])]
    p = FloatParams("adam", w0, spec=spec, sigma_stars=[1.0, 1.0], lr=0.01, momentum=0.0)
    good = p.state()
    with pytest.raises(ValueError, match=r"^adam state must be a list of 2 tensor states, not 1$"):
        p.load_state(good[:1])
    bad = [dict(good[0], t=5), dict(good[1], lr=-1.0)]
    with pytest.raises(ValueError, match=r"^adam tensor 1: Adam state lr must be a finite number >= 0, not -1.0$"):
        p.load_state(bad)
    assert [t.t for t in p.tensors] == [0, 0]  # tensor 0's valid state was not applied either


class _PoisonedMLP(MLP):
    """The real MLP whose gradients carry NaN and Inf on chosen steps (an overflow, injected)."""

    def __init__(self, *args, poison_steps=()):
        super().__init__(*args)
        self.poison_steps, self.calls = set(poison_steps), 0

    def loss_and_grads(self, params, X, y):
        loss, correct, grads = super().loss_and_grads(params, X, y)
        if self.calls in self.poison_steps:
            grads[0].flat[:3] = [np.nan, np.inf, -np.inf]
        self.calls += 1
        return loss, correct, grads


@pytest.mark.parametrize("optimizer", ["lns-madam", "adam"])
def test_nonfinite_gradients_are_counted_per_epoch(optimizer):
    from lnsim.train.data import load_dataset
    from lnsim.train.config import TrainConfig
    from lnsim.train.runner import _new_run, train_epoch

    config = TrainConfig(_spec(8, 0.016, 1), optimizer=optimizer, dataset="iris", hidden=(4,), epochs=2)
    split = load_dataset("iris", seed=0)
    run = _new_run(config, split, 0)
    run.model = _PoisonedMLP(split.n_features, (4,), split.n_classes, poison_steps=(1, 2, 5))  # 4 steps per epoch
    w_before = [w.copy() for w in run.params.params()]
    train_epoch(run, config, split)
    train_epoch(run, config, split)
    h = run.history
    assert h["nonfinite_gradients"] == [6, 3]
    assert h["skipped_steps"] == ([0, 0] if optimizer == "lns-madam" else [2, 1])
    if optimizer == "lns-madam":
        assert (run.params.nan, run.params.inf) == (3, 6)
    assert all(np.isfinite(w).all() for w in run.params.params())
    assert any(not np.array_equal(a, b) for a, b in zip(w_before, run.params.params()))
