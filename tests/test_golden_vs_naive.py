"""The Numba golden model against the slow pure-Python oracle (tests/naive.py, written from docs/datapath.md).

Exhaustive where the input space is small, random (with evolved states) where it is not. A larger
exhaustive run is behind the ``slow`` marker.
"""

import numpy as np
import pytest
from naive import naive_decode_bf16, naive_log_bc, naive_log_eta, naive_sigma_star, naive_tables, naive_update

from lnsim import LNSFormat, MadamConfig, Spec, decode_bf16, grad_to_bits, tables
from lnsim.golden import sigma_star_fixed, update_inplace

B12 = LNSFormat(bits=12, eta0=0.001)
POW2 = LNSFormat(bits=12, base="pow2", frac_bits=10)
SPECS = [
    Spec(B12, MadamConfig()),
    Spec(B12, MadamConfig(grad_format="float16", beta_shift=16)),
    Spec(B12, MadamConfig(grad_format="float32", beta_shift=1, state_bits=28)),
    Spec(B12, MadamConfig(bias_correction=False, log_frac_bits=20, table_index_bits=12)),
    Spec(B12, MadamConfig(eta=0.005, eta_star=0.04, log_frac_bits=8, table_index_bits=3)),
    Spec(LNSFormat(bits=4, eta0=0.25), MadamConfig(eta=0.25, eta_star=1.5)),
    Spec(LNSFormat(bits=16, eta0=0.001), MadamConfig(eta=0.005, eta_star=0.04)),
    Spec(POW2, MadamConfig.from_rungs(POW2, 15, 120)),
]
IDS = [f"{s.fmt.describe()}-{s.cfg.grad_format.value}-s{s.cfg.beta_shift}-F{s.cfg.log_frac_bits}a{s.cfg.table_index_bits}" for s in SPECS]


@pytest.mark.parametrize("spec", SPECS, ids=IDS)
def test_tables_and_scalars_match_their_definitions(spec):
    ref = naive_tables(spec)
    assert tables.log_table(spec).tolist() == list(ref["LOG"])
    assert tables.antilog_table(spec).tolist() == list(ref["ALOG"])
    lo, hi = tables.ladder_tables(spec.fmt)
    assert list(zip(lo[0].tolist(), lo[1].tolist())) == list(ref["LO"])
    assert (hi is None) == (ref["HI"] is None)
    if hi is not None:
        assert list(zip(hi[0].tolist(), hi[1].tolist())) == list(ref["HI"])
    for r in range(1, spec.eta_star_rungs + 1):
        assert tables.log_eta_term(spec, r) == naive_log_eta(spec, r)
    for t in list(range(1, 200)) + [1000, 10_000, 10**6]:
        assert tables.bias_correction_term(spec, t) == naive_log_bc(spec, t)


@pytest.mark.parametrize("sigma", [1.0, 0.29338, 3e-5, 1.99999, 7.5e30, 2.0**-120])
def test_sigma_star_rounding_matches(sigma):
    assert sigma_star_fixed(sigma) == naive_sigma_star(sigma)


def test_every_bfloat16_gradient_through_the_full_unit():
    spec = SPECS[0]
    g = np.arange(2**16, dtype=np.uint16)
    log_eta = tables.log_eta_term(spec)
    for st0, t, sw, k0 in [(0, 1, 0, 2048), (0x4A0_0000 | (1 << 21) | 12345, 7, 1, 5), (0x2F5 << 22 | 0x3FFFFF, 300, 0, 4090)]:
        log_bc = tables.bias_correction_term(spec, t)
        k = np.full(g.size, k0, np.uint16)
        st = np.full(g.size, st0, np.uint32)
        update_inplace(spec, np.full(g.size, sw, np.uint8), k, g, st, log_eta=log_eta, log_bc=log_bc)
        for i in range(g.size):
            k2, st2, _, _ = naive_update(spec, sw, k0, i, st0, log_eta, log_bc)
            assert (int(k[i]), int(st[i])) == (k2, st2), f"gradient {i:#06x}"


def test_every_code_and_sign_of_a_small_format():
    spec = SPECS[5]  # B = 4, SSTAR = 6
    rng = np.random.default_rng(5)
    grads = [0x0000, 0x8000, 0x3F80, 0xBF80, 0x7F80, 0x7FC1, 0x0001, 0x8001, 0x7F7F] + rng.integers(0, 2**16, 30).tolist()
    states = [0, 1 << 20, (300 << 22) | (1 << 21), (700 << 22) | 0x3FFFFF]
    cases = [(st0, gb, sw, k0) for st0 in states for gb in grads for sw in (0, 1) for k0 in range(spec.fmt.levels)]
    st0, gb, sw, k0 = (np.array(c) for c in zip(*cases))
    for t in (1, 2, 50):
        log_eta, log_bc = tables.log_eta_term(spec), tables.bias_correction_term(spec, t)
        k = k0.astype(spec.fmt.code_dtype)
        st = st0.astype(np.uint32)
        update_inplace(spec, sw.astype(np.uint8), k, gb.astype(np.uint16), st, log_eta=log_eta, log_bc=log_bc)
        for i, case in enumerate(cases):
            k2, st2, _, _ = naive_update(spec, case[2], case[3], case[1], case[0], log_eta, log_bc)
            assert (int(k[i]), int(st[i])) == (k2, st2), f"(st, g, sw, k) = {case}"


def _random_run(spec, n, steps, seed):
    """Golden and oracle over ``steps`` steps of random gradients; states evolve, so every path is visited."""
    rng = np.random.default_rng(seed)
    sign = rng.integers(0, 2, n).astype(np.uint8)
    k = rng.integers(0, spec.fmt.levels, n).astype(spec.fmt.code_dtype)
    st = np.zeros(n, np.uint32)
    scale = np.exp(rng.uniform(-30, 5, n))
    ks, sts = k.tolist(), st.tolist()
    for t in range(1, steps + 1):
        g = (scale * rng.standard_normal(n)).astype(np.float32)
        g[rng.random(n) < 0.03] = 0.0
        g[rng.random(n) < 0.01] = np.nan
        g[rng.random(n) < 0.01] = np.inf
        gb = grad_to_bits(g, spec.cfg.grad_format)
        r_t = int(rng.integers(1, spec.eta_star_rungs + 1))
        log_eta, log_bc = tables.log_eta_term(spec, r_t), tables.bias_correction_term(spec, t)
        n_nan, n_inf = update_inplace(spec, sign, k, gb, st, log_eta=log_eta, log_bc=log_bc)
        ref = [naive_update(spec, int(sign[i]), ks[i], int(gb[i]), sts[i], log_eta, log_bc) for i in range(n)]
        ks, sts = [r[0] for r in ref], [r[1] for r in ref]
        assert k.tolist() == ks and st.tolist() == sts, f"step {t}"
        assert (n_nan, n_inf) == (sum(r[2] for r in ref), sum(r[3] for r in ref))


@pytest.mark.parametrize("spec", SPECS, ids=IDS)
def test_random_vectors_with_evolving_state(spec):
    _random_run(spec, n=400, steps=40, seed=spec.fmt.bits)


@pytest.mark.parametrize(
    "fmt",
    [LNSFormat(bits=b, eta0=min(1.0, 60 / 2**b)) for b in (2, 5, 8, 10, 12)]
    + [LNSFormat(bits=b, base="pow2", frac_bits=m) for b, m in ((3, 0), (8, 3), (12, 6), (12, 10))],
    ids=lambda f: f.describe(),
)
def test_decoder_matches_oracle_on_every_code(fmt):
    k = np.arange(fmt.levels, dtype=fmt.code_dtype)
    for sigma in (0.29338, 1.0, 2.0**-100):
        for sw in (0, 1):
            sign = np.full(k.shape, sw, np.uint8)
            got = decode_bf16(fmt, sign, k, sigma).tolist()
            assert got == [naive_decode_bf16(fmt, sw, int(i), sigma) for i in range(fmt.levels)]


@pytest.mark.slow
@pytest.mark.parametrize("spec", SPECS, ids=IDS)
def test_random_vectors_long(spec):
    _random_run(spec, n=3000, steps=200, seed=spec.fmt.bits + 100)
