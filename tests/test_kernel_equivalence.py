"""The vectorised update loops (lnsim.golden.loops.update_kernel*) against the element-wise reference.

The fast loops are generated per spec and rewritten for 32-bit SIMD (lean element, packed tables, int32
casts); these tests check that k, state and the NaN/Inf counts stay bit-identical to the straightforward
element-by-element loop over ``update_element`` (``update_kernel_reference_serial``), and that the plain-Python
twins ``update_lean_py`` / ``update_element_py`` agree, for a spread of specs and inputs.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import lnsim
from lnsim import tables
from lnsim.golden import datapath, element, lean, loops, lut

# (bits, grad_format, beta_shift, log_frac_bits, table_index_bits, bias_correction, state_bits, eta*, eta)
SPECS = [
    (12, "bfloat16", 10, 16, 7, True, 32, 80, 10),  # the defaults
    (4, "float16", 1, 8, 3, False, 32, 15, 2),
    (16, "float32", 14, 20, 12, True, 32, 1000, 10),
    (12, "float32", 10, 20, 3, True, 32, 80, 10),  # log table not packable; int64 interpolation products
    (16, "float16", 16, 8, 9, True, 31, 60, 7),
    (12, "float16", 9, 16, 12, True, 24, 80, 10),  # WM = 17
    (4, "bfloat16", 1, 20, 7, False, 19, 15, 1),  # narrowest state word for bfloat16 with s = 1 (WM = 9)
    (17, "bfloat16", 10, 12, 7, True, 32, 900, 100),  # 32-bit codes
]


def make_spec(bits, grad_format, beta_shift, F, a, bc, state_bits, eta_star_rungs, eta_rungs):
    fmt = lnsim.LNSFormat(bits=bits, eta0=0.001 if bits <= 16 else 0.0005)
    cfg = lnsim.MadamConfig.from_rungs(
        fmt, eta_rungs, eta_star_rungs, grad_format=grad_format, beta_shift=beta_shift, log_frac_bits=F,
        table_index_bits=a, bias_correction=bc, state_bits=state_bits,
    )
    return lnsim.Spec(fmt, cfg)


def spec_id(p):
    return "B{}-{}-s{}-F{}-a{}-bc{}-st{}".format(*p[:7])


def reference(spec, sign, k, grad, state, log_eta, log_bc):
    """The element-wise jitted reference on copies; one array signature for every spec (one compilation)."""
    k_ref = k.astype(np.uint32)
    st_ref = state.copy()
    counts = element.update_kernel_reference_serial(
        sign, k_ref, grad.astype(np.uint32), st_ref, np.int64(log_eta), np.int64(log_bc),
        *datapath._constants(spec), tables.log_table(spec), tables.antilog_table(spec),
    )
    return k_ref.astype(k.dtype), st_ref, (int(counts[0]), int(counts[1]))


def fast(spec, sign, k, grad, state, log_eta, log_bc, parallel=False):
    k, state = k.copy(), state.copy()
    counts = datapath.update_inplace(spec, sign, k, grad, state, log_eta=log_eta, log_bc=log_bc, parallel=parallel)
    return k, state, counts


def assert_same(spec, sign, k, grad, state, log_eta, log_bc, parallel=False):
    k1, s1, c1 = fast(spec, sign, k, grad, state, log_eta, log_bc, parallel)
    k2, s2, c2 = reference(spec, sign, k, grad, state, log_eta, log_bc)
    bad = np.flatnonzero((k1 != k2) | (s1 != s2))
    assert bad.size == 0, (
        f"{bad.size} mismatches, first at {bad[0]}: sw={sign[bad[0]]} k={k[bad[0]]} g={grad[bad[0]]:#x} "
        f"st={state[bad[0]]:#x} -> fast ({k1[bad[0]]}, {s1[bad[0]]:#x}) ref ({k2[bad[0]]}, {s2[bad[0]]:#x})"
    )
    assert c1 == c2
    return k1, s1


def valid_states(spec, rng, n):
    """Random state words obeying the invariant: E = 0 with any M, or 1 <= E <= EMAX with M normalised."""
    WM = spec.cfg.state_man_bits
    E = rng.integers(0, spec.state_exp_max + 1, n, dtype=np.int64)
    E[rng.random(n) < 0.2] = 0
    M = rng.integers(0, 1 << WM, n, dtype=np.int64)
    M = np.where(E > 0, M | (1 << (WM - 1)), M)
    return ((E << WM) | M).astype(np.uint32)


def random_grads(spec, rng, n):
    """Gradient bit patterns: wide-range finite values plus every kind of special (0, subnormal, Inf, NaN)."""
    width = spec.cfg.grad_format.width
    g = rng.integers(0, 1 << width, n, dtype=np.int64)
    gf = rng.standard_normal(n) * np.exp(rng.uniform(-30, 5, n))
    if spec.cfg.grad_format.value == "float32":
        realistic = gf.astype(np.float32).view(np.uint32).astype(np.int64)
    elif spec.cfg.grad_format.value == "float16":
        realistic = gf.astype(np.float16).view(np.uint16).astype(np.int64)
    else:
        realistic = lnsim.grad_to_bits(gf.astype(np.float32)).astype(np.int64)
    g = np.where(rng.random(n) < 0.5, realistic, g)
    man = spec.cfg.grad_format.man_bits
    emaxf = spec.cfg.grad_format.exp_field_max
    specials = [0, 1, (1 << man) - 1, emaxf << man, (emaxf << man) | 1, (emaxf << man) - 1, 1 << man]
    specials += [x | (1 << (width - 1)) for x in specials]
    g[: len(specials)] = specials
    return g.astype(datapath.grad_dtype(spec))


def step_scalars(spec, rng):
    r = int(rng.integers(1, spec.eta_star_rungs + 1))
    t = int(rng.integers(1, 2000))
    return tables.log_eta_term(spec, r), tables.bias_correction_term(spec, t)


@pytest.mark.parametrize("params", SPECS, ids=spec_id)
def test_random_inputs(params):
    spec = make_spec(*params)
    rng = np.random.default_rng(abs(hash(params)) % 2**32)
    n = 20_000
    kmax = spec.fmt.code_max
    sign = rng.integers(0, 2, n).astype(np.uint8)
    k = rng.integers(0, kmax + 1, n).astype(spec.fmt.code_dtype)
    k[: n // 8] = 0
    k[n // 8 : n // 4] = kmax
    grad = random_grads(spec, rng, n)
    state = valid_states(spec, rng, n)
    # A quarter of arbitrary 32-bit words (breaking the invariant; the reference is still deterministic).
    state[-n // 4 :] = rng.integers(0, 2**32, n // 4, dtype=np.uint64).astype(np.uint32)
    state[: n // 16] = 0
    for _ in range(4):
        log_eta, log_bc = step_scalars(spec, rng)
        assert_same(spec, sign, k, grad, state, log_eta, log_bc)
    log_eta, log_bc = tables.log_eta_term(spec, spec.eta_star_rungs), tables.bias_correction_term(spec, 1)
    assert_same(spec, sign, k, grad, state, log_eta, log_bc)


@pytest.mark.parametrize("params", SPECS, ids=spec_id)
def test_evolved_states(params):
    """50 steps from a fresh state, comparing k and state after every step (the fast loop carries on from its
    own outputs, so a single mismatch would be caught where it happens)."""
    spec = make_spec(*params)
    rng = np.random.default_rng(1 + abs(hash(params)) % 2**32)
    n = 4_000
    sign = rng.integers(0, 2, n).astype(np.uint8)
    k = rng.integers(0, spec.fmt.code_max + 1, n).astype(spec.fmt.code_dtype)
    state = np.zeros(n, np.uint32)
    scale = np.exp(rng.uniform(-12, 2, n))  # per-element gradient scale, as in a real network
    log_eta = tables.log_eta_term(spec)
    for t in range(1, 51):
        gf = rng.standard_normal(n) * scale
        gf[rng.random(n) < 0.05] = 0.0
        if spec.cfg.grad_format.value == "float32":
            grad = gf.astype(np.float32).view(np.uint32)
        elif spec.cfg.grad_format.value == "float16":
            grad = gf.astype(np.float16).view(np.uint16)
        else:
            grad = lnsim.grad_to_bits(gf.astype(np.float32))
        grad = np.ascontiguousarray(grad)
        k, state = assert_same(spec, sign, k, grad, state, log_eta, tables.bias_correction_term(spec, t))


@pytest.mark.parametrize("params", [SPECS[0], SPECS[6], SPECS[7]], ids=spec_id)
def test_all_bfloat16_patterns(params):
    spec = make_spec(*params)
    rng = np.random.default_rng(2)
    grad = np.arange(1 << 16, dtype=np.uint16)
    n = grad.size
    kmax = spec.fmt.code_max
    WM = spec.cfg.state_man_bits
    states = [0, 1, (1 << WM) - 1, (1 << WM) | (1 << (WM - 1)), (spec.state_exp_max << WM) | ((1 << WM) - 1),
              (40 << WM) | (3 << (WM - 2)), (300 << WM) | (1 << (WM - 1)) | 12345]
    for st in states:
        for kval in (0, kmax):
            for sw in (0, 1):
                sign = np.full(n, sw, np.uint8)
                k = np.full(n, kval, spec.fmt.code_dtype)
                state = np.full(n, st, np.uint32)
                log_eta, log_bc = step_scalars(spec, rng)
                assert_same(spec, sign, k, grad, state, log_eta, log_bc)


def test_parallel_matches_serial_and_reference():
    spec = make_spec(*SPECS[0])
    rng = np.random.default_rng(3)
    n = 300_001  # several chunks and a ragged tail
    sign = rng.integers(0, 2, n).astype(np.uint8)
    k = rng.integers(0, spec.fmt.code_max + 1, n).astype(spec.fmt.code_dtype)
    grad = random_grads(spec, rng, n)
    state = valid_states(spec, rng, n)
    log_eta, log_bc = step_scalars(spec, rng)
    assert_same(spec, sign, k, grad, state, log_eta, log_bc, parallel=True)
    assert fast(spec, sign, k, grad, state, log_eta, log_bc, True)[2] == fast(spec, sign, k, grad, state, log_eta, log_bc)[2]


def test_empty_and_out_of_range_scalars():
    spec = make_spec(*SPECS[0])
    e = np.zeros(0, np.uint8)
    assert datapath.update_inplace(spec, e, e.astype(np.uint16), e.astype(np.uint16), e.astype(np.uint32),
                                   log_eta=0, log_bc=0) == (0, 0)
    # Scalars beyond the lean loop's 28-bit budget fall back to the reference loop: still identical.
    rng = np.random.default_rng(4)
    n = 1000
    sign = rng.integers(0, 2, n).astype(np.uint8)
    k = rng.integers(0, spec.fmt.code_max + 1, n).astype(np.uint16)
    grad = random_grads(spec, rng, n)
    state = valid_states(spec, rng, n)
    assert_same(spec, sign, k, grad, state, 2**29, 0)


@pytest.mark.parametrize("params", SPECS, ids=spec_id)
def test_python_twins(params):
    """The plain-Python lean element (unbounded ints) against update_element_py, element by element."""
    spec = make_spec(*params)
    consts = datapath._constants(spec)
    LOG, ALOG = tables.log_table(spec), tables.antilog_table(spec)
    W, MB, WM, EMAX, s, F, a, SSTAR, KMAX = consts
    LGT = lean.log_significand_table(MB, LOG, a) if MB <= 15 else np.zeros(1, np.int32)
    LOGP, LOGPK = lean.packed_table(LOG)
    ALOGP, ALOGPK = lean.packed_table(ALOG)
    WLOG, WALOG = lean._wide_products(LOG, ALOG, F, a)
    rng = np.random.default_rng(5)
    n = 150
    grad = random_grads(spec, rng, n)
    state = np.concatenate([valid_states(spec, rng, n - 40), rng.integers(0, 2**32, 40, dtype=np.uint64)])
    for i in range(n):
        sw, kk = int(rng.integers(0, 2)), int(rng.integers(0, KMAX + 1))
        log_eta, log_bc = step_scalars(spec, rng)
        args = (sw, kk, int(grad[i]), int(state[i]), log_eta, log_bc, *consts)
        ref = element.update_element_py(*args, LOG, ALOG)
        got = lean.update_lean_py(*args, LOG, ALOG, LGT, LOGP, LOGPK, ALOGP, ALOGPK, WLOG, WALOG)
        assert (int(got[0]), int(got[1]), bool(got[2]), bool(got[3])) == (
            int(ref[0]), int(ref[1]), bool(ref[2]), bool(ref[3])), (i, args)


def test_packed_tables_decode_exactly():
    for F in (8, 12, 16, 20):
        for a in range(3, min(12, F + 1) + 1):
            cfg = lnsim.MadamConfig(eta=0.001, eta_star=0.001, log_frac_bits=F, table_index_bits=a)
            spec = lnsim.Spec(lnsim.LNSFormat(bits=12, eta0=0.001), cfg)
            for T in (tables.log_table(spec), tables.antilog_table(spec)):
                P, (rb, U, C, V, off) = lean.packed_table(T)
                if rb == 0:
                    continue
                P = P.astype(np.int64)
                t0 = P >> rb
                d = (((t0 >> U) * C) >> V) + (P & ((1 << rb) - 1)) + off
                assert (t0 == T[:-1]).all() and (t0 + d == T[1:]).all()


def _packed_log_table():
    spec = make_spec(*SPECS[0])
    T = tables.log_table(spec)
    P, params = lean.packed_table(T)
    assert params[0] > 0  # the default log table packs
    return T, P, params


@pytest.mark.parametrize(
    "corrupt, message",
    [
        (lambda P: P.__setitem__(5, P[5] ^ 1), r"packed table entry 5 = \d+ with \(RB, U, C, V, OFF\) = .* decodes to"),
        (lambda P: P.__setitem__(0, -1), r"packed table entry 0 = -1 .* \(or lies outside 0 \.\. 2\*\*31 - 1\)"),
        (lambda P: P.__setitem__(3, 2**31 + int(P[3])), r"packed table entry 3 = \d+ with"),
    ],
)
def test_a_packed_table_that_decodes_wrongly_is_refused(corrupt, message):
    T, P, params = _packed_log_table()
    lean.check_packed_table(P, T, params)
    P = P.astype(np.int64)
    corrupt(P)
    with pytest.raises(RuntimeError, match=message):
        lean.check_packed_table(P, T, params)
    with pytest.raises(RuntimeError, match=r"a packed table of 129 entries must have 128 entries, not shape \(127,\)"):
        lean.check_packed_table(P[:-1], T, params)


def test_the_packed_table_check_survives_python_O():
    """The check is no assert: python -O keeps it."""
    code = (
        "import numpy as np, lnsim\n"
        "from lnsim import tables\n"
        "from lnsim.golden import lean\n"
        "T = tables.log_table(lnsim.Spec(lnsim.LNSFormat(bits=12, eta0=0.001), lnsim.MadamConfig()))\n"
        "P, params = lean.packed_table(T)\n"
        "P = P.astype(np.int64); P[7] += 1\n"
        "try:\n"
        "    lean.check_packed_table(P, T, params)\n"
        "except RuntimeError as e:\n"
        "    print('refused:', e)\n"
    )
    r = subprocess.run([sys.executable, "-O", "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("refused: packed table entry 7 = "), r.stdout


def test_the_generated_loop_is_named_after_the_modules_it_compiles_in():
    """Numba's on-disk cache checks only the defining file: the lean form's and the lookups' text is in the name."""
    assert loops._DEPENDS == loops._sources_digest(lean, lut)
    spec = make_spec(*SPECS[0])
    consts = datapath._constants(spec)[:7]
    fn = loops._update_loop_for(consts, tables.log_table(spec), tables.antilog_table(spec), False)
    assert fn.py_func.__name__ == "update_loop_serial_" + loops._DEPENDS
