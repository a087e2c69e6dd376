"""The float32 MLP: shapes, the usual initialisation, and gradients against finite differences."""

import numpy as np
import pytest

from lnsim.train.model import MLP


def test_shapes_names_init():
    m = MLP(64, (128, 32), 10)
    assert m.shapes == [(64, 128), (128,), (128, 32), (32,), (32, 10), (10,)]
    assert m.names[:3] == ["layer0.W", "layer0.b", "layer1.W"] and m.describe() == "64-128-32-10"
    w = m.init_float(np.random.default_rng(0))
    assert [x.shape for x in w] == m.shapes
    assert np.all(np.abs(w[0]) <= 1 / 8) and np.all(w[1] != 0)  # biases start non-zero
    np.testing.assert_allclose(np.sqrt(np.mean(w[0] ** 2)), m.init_scale()[0], rtol=0.02)


@pytest.mark.parametrize("hidden", [(), (7,), (6, 5)])
def test_gradients_match_finite_differences(hidden):
    rng = np.random.default_rng(1)
    m = MLP(4, hidden, 3)
    params = m.init_float(rng)  # float64: the same code runs in any dtype
    X = rng.normal(size=(9, 4))
    y = rng.integers(0, 3, 9)
    loss, correct, grads = m.loss_and_grads(params, X, y)
    assert 0 <= correct <= 9 and loss > 0
    for p, g in zip(params, grads):
        for idx in list(np.ndindex(p.shape))[:6]:
            old = p[idx]
            p[idx] = old + 1e-6
            up = m.loss_and_grads(params, X, y)[0]
            p[idx] = old - 1e-6
            down = m.loss_and_grads(params, X, y)[0]
            p[idx] = old
            assert g[idx] == pytest.approx((up - down) / 2e-6, rel=1e-4, abs=1e-8)


def test_float32_in_float32_out():
    m = MLP(5, (4,), 3)
    params = [w.astype(np.float32) for w in m.init_float(np.random.default_rng(0))]
    _, _, grads = m.loss_and_grads(params, np.ones((2, 5), np.float32), np.array([0, 2]))
    assert all(g.dtype == np.float32 for g in grads)


@pytest.mark.parametrize("kw, message", [
    ({"n_in": 0, "hidden": (), "n_out": 2}, "n_in must be an integer >= 1, not 0"),
    ({"n_in": 2, "hidden": (0,), "n_out": 2}, "hidden sizes must be integers in 1..65536, not 0"),
])
def test_bad_sizes(kw, message):
    with pytest.raises(ValueError, match=message):
        MLP(**kw)
