"""Self-checks of the slow oracle ``tests/naive.py`` against float math only.

Nothing here imports ``lnsim.tables`` or ``lnsim.golden``: the oracle is checked against the float
algorithm the page says it implements (Madam with bias correction) and against float64 values of its
tables, so that the oracle can in turn check the golden model and the RTL.
"""

from __future__ import annotations

import math
import os
import random
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))

from naive import (  # noqa: E402
    naive_constants,
    naive_decode_bf16,
    naive_log_bc,
    naive_log_eta,
    naive_sigma_star,
    naive_tables,
    naive_update,
)

from lnsim.spec import LNSFormat, MadamConfig, Spec  # noqa: E402

SPEC = Spec(LNSFormat(bits=12, eta0=0.001), MadamConfig())
POW2_FMT = LNSFormat(bits=12, base="pow2", frac_bits=8)
SPEC_POW2 = Spec(POW2_FMT, MadamConfig.from_rungs(POW2_FMT, 10, 80))
SPEC_F16 = Spec(LNSFormat(bits=12, eta0=0.001), MadamConfig(grad_format="float16"))
SPEC_F32 = Spec(LNSFormat(bits=12, eta0=0.001), MadamConfig(grad_format="float32"))
SPEC_NOBC = Spec(LNSFormat(bits=12, eta0=0.001), MadamConfig(bias_correction=False))
SPEC_SMALL = Spec(LNSFormat(bits=12, eta0=0.001), MadamConfig(beta_shift=3, state_bits=24, log_frac_bits=10, table_index_bits=4))
# narrowest state (WM = 9): a float16 term's mantissa can round up to 2**WM (stage 2)
SPEC_TINY = Spec(LNSFormat(bits=12, eta0=0.001), MadamConfig(grad_format="float16", beta_shift=1, state_bits=16))


# --------------------------------------------------------------------------------------------------
# float helpers
# --------------------------------------------------------------------------------------------------


def fields(spec):
    c = naive_constants(spec)
    return c["EB"], c["MB"], c["BIAS"], c["W"]


def grad_bits(spec, sg, e, m):
    """Bit pattern of a gradient from its sign, exponent field and mantissa field."""
    EB, MB, BIAS, W = fields(spec)
    return sg << (W - 1) | e << MB | m


def grad_value(spec, gbits):
    """Exact float value of a finite gradient bit pattern (the gradient formats fit in float64)."""
    EB, MB, BIAS, W = fields(spec)
    sg, e, m = gbits >> (W - 1), (gbits >> MB) & (2**EB - 1), gbits & (2**MB - 1)
    assert e != 2**EB - 1
    S = m + (2**MB if e > 0 else 0)
    return (-1.0) ** sg * math.ldexp(S, max(e, 1) - BIAS - MB)


def largest_finite(spec, sg):
    EB, MB, BIAS, W = fields(spec)
    return grad_bits(spec, sg, 2**EB - 2, 2**MB - 1)


def state_value(spec, st):
    """v = M * 2**(E - E0) of a state word, in float64."""
    c = naive_constants(spec)
    E, M = st >> c["WM"], st & (2 ** c["WM"] - 1)
    return math.ldexp(M, E - c["E0"])


def bf16_rne(x):
    """bfloat16 bit pattern of a float64 in bfloat16's normal range, rounded to nearest even."""
    sign = 1 if x < 0 else 0
    mant, exp = math.frexp(abs(x))  # abs(x) = mant * 2**exp, mant in [0.5, 1)
    r = round(mant * 256)  # exact product; Python's round() is half-to-even
    if r == 256:
        r, exp = 128, exp + 1
    ex = exp - 1 + 127
    assert 1 <= ex <= 254
    return sign << 15 | ex << 7 | (r - 128)


def step(spec, k, st, gbits, t, sw=0, r_t=None):
    r_t = spec.eta_rungs if r_t is None else r_t
    return naive_update(spec, sw, k, gbits, st, naive_log_eta(spec, r_t), naive_log_bc(spec, t))


# --------------------------------------------------------------------------------------------------
# constants and tables
# --------------------------------------------------------------------------------------------------


def test_default_constants_match_the_page():
    c = naive_constants(SPEC)
    assert (c["WE"], c["WM"], c["EMAX"], c["EMAXF"], c["F"], c["a"]) == (10, 22, 1023, 255, 16, 7)
    assert c["E0"] == 2 * 127 + 22 + 10 + 2 * 7 - 2
    assert (c["KMAX"], c["SSTAR"], c["h"]) == (4095, 80, 6)
    t = naive_tables(SPEC)
    assert len(t["LOG"]) == len(t["ALOG"]) == 129
    # "with the defaults the two tables hold 129 x 17 + 129 x 26 = 5,547 bits"
    widths = max(t["LOG"]).bit_length(), max(t["ALOG"]).bit_length()
    assert widths == (17, 26) and 129 * sum(widths) == 5547


@pytest.mark.parametrize("spec", [SPEC, SPEC_F16, SPEC_F32, SPEC_SMALL, SPEC_POW2])
def test_derived_constants_agree_with_spec_module(spec):
    c = naive_constants(spec)
    g = spec.cfg.grad_format
    assert (c["EB"], c["MB"], c["BIAS"], c["W"]) == (g.exp_bits, g.man_bits, g.bias, g.width)
    assert c["WE"] == spec.cfg.state_exp_bits
    assert c["WM"] == spec.cfg.state_man_bits
    assert c["EMAX"] == spec.state_exp_max
    assert c["E0"] == spec.state_exp_offset


@pytest.mark.parametrize("spec", [SPEC, SPEC_SMALL, Spec(LNSFormat(bits=12, eta0=0.001), MadamConfig(log_frac_bits=20, table_index_bits=12))])
def test_log_tables_against_float(spec):
    c = naive_constants(spec)
    F, a = c["F"], c["a"]
    t = naive_tables(spec)
    assert t["LOG"][0] == 0 and t["LOG"][-1] == 2**F
    assert t["ALOG"][0] == 2**24 and t["ALOG"][-1] == 2**25
    for i in range(2**a + 1):
        assert t["LOG"][i] == math.floor(2**F * math.log2(1 + i / 2**a) + 0.5)
        assert t["ALOG"][i] == math.floor(2**24 * 2 ** (i / 2**a) + 0.5)


@pytest.mark.parametrize(
    "fmt, n_lo, n_hi",
    [
        (LNSFormat(bits=8, eta0=0.016), 16, 16),
        (LNSFormat(bits=7, eta0=0.016), 16, 8),
        (LNSFormat(bits=12, eta0=0.001), 64, 64),
        (LNSFormat(bits=8, base="pow2", frac_bits=4), 16, None),
        (LNSFormat(bits=6, base="pow2", frac_bits=0), 1, None),
    ],
)
def test_ladder_tables_against_float(fmt, n_lo, n_hi):
    t = naive_tables(Spec(fmt, MadamConfig.from_rungs(fmt, 1, 1)))
    assert len(t["LO"]) == n_lo
    if n_hi is None:
        assert t["HI"] is None
        exact = [2 ** (-j / 2**fmt.frac_bits) for j in range(n_lo)]
        tables = [(t["LO"], exact)]
    else:
        h = (fmt.bits + 1) // 2
        assert len(t["HI"]) == n_hi
        tables = [
            (t["LO"], [math.exp(-j * fmt.eta0) for j in range(n_lo)]),
            (t["HI"], [math.exp(-(j << h) * fmt.eta0) for j in range(n_hi)]),
        ]
    assert t["LO"][0] == (0, 2**15)
    for table, exact in tables:
        for (e, mu), x in zip(table, exact):
            assert 2**15 <= mu < 2**16
            assert abs(math.ldexp(mu, e - 15) / x - 1) <= 2**-16 * (1 + 1e-9)


def test_per_step_scalars():
    F, s = 16, 10
    assert naive_log_eta(SPEC, 1) == 0
    assert naive_log_eta(SPEC, 8) == 6 * 2**F
    for r in (3, 10, 37, 80):
        assert naive_log_eta(SPEC, r) == math.floor(2**F * 2 * math.log2(r) + 0.5)
    beta = 1 - 2.0**-s
    assert naive_log_bc(SPEC, 1) == s * 2**F
    for t in (2, 3, 10, 100, 1000, 5000):
        assert naive_log_bc(SPEC, t) == math.floor(2**F * -math.log2(1 - beta**t) + 0.5)
    assert naive_log_bc(SPEC, 10**6) == 0
    assert naive_log_bc(SPEC_NOBC, 1) == 0 and naive_log_bc(SPEC_NOBC, 7) == 0


def test_sigma_star_rounding():
    assert naive_sigma_star(1.0) == (0, 2**15)
    assert naive_sigma_star(3.0) == (1, 3 * 2**14)
    assert naive_sigma_star(0.75) == (-1, 3 * 2**14)
    assert naive_sigma_star(2 - 2.0**-20) == (1, 2**15)  # rounds up to 2**16: carries into es
    assert naive_sigma_star(1 + 2.0**-16) == (0, 2**15 + 1)  # exact tie: floor(x + 1/2) rounds up
    assert naive_sigma_star(1 + 2.0**-16 - 2.0**-40) == (0, 2**15)
    for x in (0.05, 1e-3, 7.3, 1234.5, 2.0**100 * 1.7):
        es, mus = naive_sigma_star(x)
        assert 2**15 <= mus < 2**16
        assert abs(math.ldexp(mus, es - 15) / x - 1) <= 2**-16


# --------------------------------------------------------------------------------------------------
# update: hand-checked behaviour
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("spec", [SPEC, SPEC_POW2, SPEC_F16, SPEC_F32, SPEC_SMALL, SPEC_TINY])
def test_first_step_moves_eta_rungs(spec):
    """t = 1, bias correction, fresh state: vhat = g**2, so the step is exactly r = eta_rungs."""
    EB, MB, BIAS, W = fields(spec)
    rng = random.Random(1)
    k = 2048
    cases = [(0, 2**EB - 2, 2**MB - 1), (0, 1, 0), (1, BIAS, 0), (0, 0, 1), (1, 0, 2**MB - 1)]  # incl. subnormals
    cases += [(rng.randrange(2), rng.randrange(2**EB - 1), rng.randrange(2**MB)) for _ in range(20)]
    for sg, e, m in cases:
        if e == 0 and m == 0:
            continue
        g = grad_bits(spec, sg, e, m)
        for sw in (0, 1):
            k2, st2, nan, inf = step(spec, k, 0, g, t=1, sw=sw)
            assert not nan and not inf
            # positive weight, positive gradient: |w| shrinks, k grows
            assert k2 - k == (10 if sw == sg else -10), (sg, e, m, sw)
            # the state holds (1 - beta) * g**2
            v = grad_value(spec, g) ** 2 * 2.0 ** -spec.cfg.beta_shift
            # float32 significands are truncated to 16 bits before squaring (stage 1)
            rel = 2.0 ** -(naive_constants(spec)["WM"] - 2) + (2.0**-14 if MB > 15 else 0)
            assert state_value(spec, st2) == pytest.approx(v, rel=rel)
    # a learning-rate schedule only changes log_eta
    g = grad_bits(spec, 0, BIAS - 3, 5)
    for r_t in (1, 2, 7, 37, 80):
        assert step(spec, k, 0, g, t=1, r_t=r_t)[0] - k == r_t


def test_saturation():
    g_pos, g_neg = 0x3F80, 0xBF80  # +1.0, -1.0
    assert step(SPEC, 4095, 0, g_pos, t=1, sw=0)[0] == 4095
    assert step(SPEC, 4090, 0, g_pos, t=1, sw=0)[0] == 4095
    assert step(SPEC, 0, 0, g_neg, t=1, sw=0)[0] == 0
    assert step(SPEC, 5, 0, g_neg, t=1, sw=0)[0] == 0
    assert step(SPEC, 0, 0, g_pos, t=1, sw=1)[0] == 0
    assert step(SPEC, 4095, 0, g_neg, t=1, sw=1)[0] == 4095
    # the largest step is SSTAR. With bias correction, a huge gradient after five tiny ones has
    # vhat ~= g**2 / 6, so the ratio is r * sqrt(6) ~= 24.5 -> 24 rungs; with r_t = 80 it clamps at 80.
    st = 0
    for t in range(1, 6):
        st = step(SPEC, 2000, st, 0x0001, t=t)[1]
    assert step(SPEC, 2000, st, 0x7F7F, t=6)[0] == 2024
    assert step(SPEC, 2000, st, 0x7F7F, t=6, r_t=80)[0] == 2080
    # without bias correction a fresh state gives vhat = g**2 * 2**-s: ratio r * 2**(s/2) = 320 -> 80
    assert step(SPEC_NOBC, 2000, 0, 0x3F80, t=1)[0] == 2080
    assert step(SPEC_NOBC, 4050, 0, 0x3F80, t=1)[0] == 4095


@pytest.mark.parametrize("spec", [SPEC, SPEC_F16, SPEC_F32])
def test_nan_leaves_element_untouched(spec):
    EB, MB, BIAS, W = fields(spec)
    k, st = 1234, 0
    for t in range(1, 4):
        k, st, _, _ = step(spec, k, st, grad_bits(spec, 0, BIAS, t), t=t)
    assert st != 0
    for sg in (0, 1):
        for m in (1, 2 ** (MB - 1), 2**MB - 1, 12345 % 2**MB or 1):
            out = step(spec, k, st, grad_bits(spec, sg, 2**EB - 1, m), t=4)
            assert out == (k, st, True, False)


@pytest.mark.parametrize("spec", [SPEC, SPEC_F16, SPEC_F32, SPEC_POW2])
def test_inf_is_largest_finite(spec):
    EB, MB, BIAS, W = fields(spec)
    for sg in (0, 1):
        for sw in (0, 1):
            for st in (0, step(spec, 100, 0, grad_bits(spec, 0, BIAS, 3), t=1)[1]):
                k2, st2, nan, inf = step(spec, 2000, st, grad_bits(spec, sg, 2**EB - 1, 0), t=2, sw=sw)
                assert (nan, inf) == (False, True)
                k3, st3, nan, inf = step(spec, 2000, st, largest_finite(spec, sg), t=2, sw=sw)
                assert (nan, inf) == (False, False)
                assert (k2, st2) == (k3, st3)
                assert k2 != 2000 and (k2 > 2000) == (sw == sg)


@pytest.mark.parametrize("spec", [SPEC, SPEC_F32, SPEC_SMALL])
def test_zero_gradient_decays_state(spec):
    EB, MB, BIAS, W = fields(spec)
    c = naive_constants(spec)
    beta = 1 - 2.0 ** -c["s"]
    # fresh element: stays all-zero
    for sg in (0, 1):
        assert step(spec, 77, 0, grad_bits(spec, sg, 0, 0), t=1) == (77, 0, False, False)
    k, st = 1000, 0
    for t in range(1, 4):
        k, st, _, _ = step(spec, k, st, grad_bits(spec, t & 1, BIAS - t, 3 * t), t=t)
    v = state_value(spec, st)
    log_eta, log_bc = naive_log_eta(spec, spec.eta_rungs), naive_log_bc(spec, 4)
    for t in range(4, 40):
        for sw in (0, 1):
            k2, st2, nan, inf = naive_update(spec, sw, k, grad_bits(spec, t & 1, 0, 0), st, log_eta, log_bc)
            assert (k2, nan, inf) == (k, False, False)
        v = beta * v
        assert state_value(spec, st2) == pytest.approx(v, rel=2.0 ** -(c["WM"] - 8))
        st = st2


def test_long_zero_run_decays_into_exponent_zero():
    spec = SPEC_SMALL  # beta = 7/8: fast decay
    c = naive_constants(spec)
    k, st, _, _ = step(spec, 5, 0, 0x3F80, t=1)
    prev = state_value(spec, st)
    for _ in range(3000):
        st = naive_update(spec, 0, k, 0x8000, st, 0, 0)[1]
        cur = state_value(spec, st)
        assert cur <= prev
        prev = cur
    assert st >> c["WM"] == 0  # E = 0: the state of a long-zero element
    # far below the smallest non-zero gradient's term (E = 1, M >= 2**(WM - 1))
    assert prev < 2.0 ** -8 * math.ldexp(2 ** (c["WM"] - 1), 1 - c["E0"])


# --------------------------------------------------------------------------------------------------
# update: random sequences against float64 Madam
# --------------------------------------------------------------------------------------------------


def run_random(spec, n_elems, n_steps, seed, exp_lo=1):
    """Random drifting gradient sequences; returns (matches, off_by_one, total) over non-zero gradients."""
    EB, MB, BIAS, W = fields(spec)
    c = naive_constants(spec)
    beta = 1 - 2.0 ** -c["s"]
    r, SSTAR = spec.eta_rungs, c["SSTAR"]
    rng = random.Random(seed)
    k0 = 2 ** (c["B"] - 1)
    log_eta = naive_log_eta(spec, r)
    match = off1 = total = 0
    for _ in range(n_elems):
        sw = rng.randrange(2)
        base = rng.randrange(exp_lo, 2**EB - 1)
        spread = rng.choice([0, 1, 2, 4])
        st, v = 0, 0.0
        for t in range(1, n_steps + 1):
            log_bc = naive_log_bc(spec, t)
            if rng.random() < 0.05:
                gb = grad_bits(spec, rng.randrange(2), 0, 0)
            else:
                e = min(max(base + rng.randint(-spread, spread), 0), 2**EB - 2)
                gb = grad_bits(spec, rng.randrange(2), e, rng.randrange(2**MB))
            g = grad_value(spec, gb)
            v = beta * v + (1 - beta) * g * g
            vhat = v / (1 - beta**t) if spec.cfg.bias_correction else v
            k2, st, nan, inf = naive_update(spec, sw, k0, gb, st, log_eta, log_bc)
            assert not nan and not inf
            if g == 0:
                assert k2 == k0
                continue
            n_ref = math.floor(min(r * abs(g) / math.sqrt(vhat), SSTAR) + 0.5)
            sg = gb >> (W - 1)
            d = k2 - k0
            assert d == 0 or (d > 0) == (sw == sg)
            err = abs(abs(d) - n_ref)
            assert err <= 1, (abs(d), n_ref, r * abs(g) / math.sqrt(vhat))
            total += 1
            match += err == 0
            off1 += err == 1
    return match, off1, total


@pytest.mark.parametrize(
    "seed, spec, exp_lo",
    [(1, SPEC, 1), (2, SPEC, 0), (3, SPEC_POW2, 1), (4, SPEC_F16, 0), (5, SPEC_F32, 1), (6, SPEC_NOBC, 1), (7, SPEC_SMALL, 1),
     (8, SPEC_TINY, 0)],
)
def test_random_steps_match_float_madam(seed, spec, exp_lo):
    match, off1, total = run_random(spec, n_elems=60, n_steps=12, seed=seed)
    assert total > 500
    assert match >= 0.99 * total, (match, off1, total)


def test_random_steps_bias_correction_window():
    """Longer sequences with bias correction: the correction must track 1 - beta**t well past t = 1."""
    spec = Spec(LNSFormat(bits=12, eta0=0.001), MadamConfig(beta_shift=4))
    match, off1, total = run_random(spec, n_elems=10, n_steps=80, seed=5)
    assert match >= 0.99 * total, (match, off1, total)


@pytest.mark.parametrize(
    "cfg",
    [
        MadamConfig(eta=0.005, eta_star=0.03, grad_format="float16", beta_shift=1, state_bits=16, log_frac_bits=8,
                    table_index_bits=3),
        MadamConfig(beta_shift=14, log_frac_bits=20, table_index_bits=12),
        MadamConfig(eta_star=0.04, grad_format="float32", beta_shift=2, state_bits=20, log_frac_bits=8,
                    table_index_bits=9),
    ],
)
def test_range_claims_hold_on_random_valid_states(cfg):
    """The oracle asserts every range the page claims (S16, Mt, Sm, one renormalising shift, X, A, ...);
    drive it with random valid state words, including E = EMAX, and random gradient patterns."""
    spec = Spec(LNSFormat(bits=12, eta0=0.001), cfg)
    c = naive_constants(spec)
    WE, WM, W, MB, EMAXF = c["WE"], c["WM"], c["W"], c["MB"], c["EMAXF"]
    rng = random.Random(c["W"] + WM)
    scalars = [(naive_log_eta(spec, r), naive_log_bc(spec, t)) for r in (1, c["SSTAR"]) for t in (1, 3, 10**5)]
    for _ in range(300):
        E = rng.choice([0, 1, 2, rng.randrange(2**WE), 2**WE - 1])
        M = rng.randrange(2**WM) if E == 0 else rng.randrange(2 ** (WM - 1), 2**WM)
        g = rng.randrange(2**W)
        if rng.random() < 0.3:  # extreme exponents: subnormal, smallest normal, largest finite
            g = (g & ~(EMAXF << MB)) | rng.choice([0, 1, EMAXF - 1]) << MB
        k2, st2, nan, inf = naive_update(spec, rng.randrange(2), 2000, g, E << WM | M, *rng.choice(scalars))
        assert 0 <= st2 < 2 ** (WE + WM) and 2000 - c["SSTAR"] <= k2 <= 2000 + c["SSTAR"]


# --------------------------------------------------------------------------------------------------
# the weight decoder against float64 then round-to-nearest-even
# --------------------------------------------------------------------------------------------------


DECODE_FORMATS = [
    LNSFormat(bits=8, eta0=0.016),
    LNSFormat(bits=8, base="pow2", frac_bits=4),
    LNSFormat(bits=7, eta0=0.05),
    LNSFormat(bits=12, eta0=0.001),
    LNSFormat(bits=10, base="pow2", frac_bits=6),
    LNSFormat(bits=6, base="pow2", frac_bits=0),
]


@pytest.mark.parametrize("fmt", DECODE_FORMATS, ids=lambda f: f.describe())
@pytest.mark.parametrize("sigma_star", [1.0, 0.05, 3.7, 2.0**-20 * 1.3, 1000.0])
def test_decode_bf16_against_float(fmt, sigma_star):
    exact = total = 0
    for k in range(2**fmt.bits):
        want = bf16_rne(sigma_star * math.exp(-k * fmt.eta0))
        for sw in (0, 1):
            got = naive_decode_bf16(fmt, sw, k, sigma_star)
            assert got >> 15 == sw
            diff = abs((got & 0x7FFF) - (want & 0x7FFF))  # ulps: magnitudes are monotone in the pattern
            assert diff <= 1, (k, hex(got), hex(want))
            exact += diff == 0
            total += 1
    assert exact >= 0.99 * total, (exact, total)


def test_decode_bf16_exact_points():
    fmt = LNSFormat(bits=8, base="pow2", frac_bits=4)
    assert naive_decode_bf16(fmt, 0, 0, 1.0) == 0x3F80  # 1.0
    assert naive_decode_bf16(fmt, 1, 0, 1.0) == 0xBF80  # -1.0
    assert naive_decode_bf16(fmt, 0, 16, 1.0) == 0x3F00  # 0.5: one octave is 2**m rungs
    assert naive_decode_bf16(fmt, 0, 32, 3.0) == 0x3F40  # 0.75
    assert naive_decode_bf16(fmt, 1, 255, 2.0**126) == bf16_rne(-(2.0**126) * 2 ** (-255 / 16))


def test_decode_bf16_flushes_below_normal_range():
    fmt = LNSFormat(bits=8, eta0=0.3)  # 76.5 nepers deep
    sigma_star = 2.0**-100
    assert naive_decode_bf16(fmt, 0, 255, sigma_star) == 0x0000
    assert naive_decode_bf16(fmt, 1, 255, sigma_star) == 0x8000
    assert naive_decode_bf16(fmt, 0, 0, sigma_star) == bf16_rne(sigma_star)
    # just above the normal range still decodes
    k = max(k for k in range(256) if sigma_star * math.exp(-k * 0.3) >= 2.0**-125)
    assert naive_decode_bf16(fmt, 0, k, sigma_star) == bf16_rne(sigma_star * math.exp(-k * 0.3))
