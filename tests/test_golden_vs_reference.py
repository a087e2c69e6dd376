"""GoldenMadam tracks float64 Madam (lnsim.reference) on the same quantised gradients."""

import numpy as np

from lnsim import GoldenMadam, LNSFormat, MadamConfig, bits_to_grad, grad_to_bits
from lnsim.reference import Madam


def test_codes_track_float_madam_over_200_steps():
    fmt = LNSFormat(bits=16, eta0=0.001)  # a deep ladder: no saturation at the small end
    cfg = MadamConfig(eta=0.01, eta_star=0.08)
    rng = np.random.default_rng(0)
    n = 20_000
    w0 = rng.normal(0, 0.1, n)
    gold = GoldenMadam.from_weights(w0, fmt, cfg, sigma_star=0.5)
    ref = Madam(gold.weights(), eta=0.01, g_bound=8.0, beta=cfg.beta, sigma_star=0.5)
    scale = np.exp(rng.uniform(-8, 1, n))
    drift = 0.3 * rng.standard_normal(n)
    for _ in range(200):
        g = bits_to_grad(grad_to_bits(scale * (rng.standard_normal(n) + drift)))
        gold.step(g)
        ref.step(g.astype(np.float64))
    k_ref = -np.log(np.abs(ref.weights()) / 0.5) / fmt.eta0  # float Madam's position on the ladder
    gap = np.abs(gold.k - k_ref)
    moved = np.abs(k_ref - (-np.log(np.abs(w0) / 0.5) / fmt.eta0))
    assert np.median(moved) > 100  # the weights really travelled
    # Rounding each step to whole rungs is a random walk: 200 uniform(-0.5, 0.5) errors, std 4.1 rungs.
    assert np.median(gap) < 4
    assert np.percentile(gap, 99) < 16
    assert np.array_equal(np.sign(gold.weights()), np.sign(ref.weights()))
