# amaranth: UnusedElaboratable=no
"""Each combinational stage of the RTL (lnsim_rtl.stages) against the golden model's intermediate values.

Every stage is driven with the golden model's own inputs for it (``lnsim.golden.update_trace``) and its
outputs are compared bit for bit, over random vectors and corner cases, in Amaranth's Python simulator.
The exhaustive runs are the Verilator benches in testbenches/.
"""

import zlib

import numpy as np
import pytest
from amaranth.hdl import Elaboratable, Module
from amaranth.sim import Simulator

from lnsim import LNSFormat, MadamConfig, Spec, tables
from lnsim.golden import update_trace
from lnsim_rtl.stages import Ema, Interpolator, LogRatio, RungStep, SaturatingAdd, Unpack

B12 = LNSFormat(bits=12, eta0=0.001)
POW2 = LNSFormat(bits=12, base="pow2", frac_bits=10)

#: Specs covering every axis of the datapath: code width, gradient format, base, s, F/a, bias correction.
SPECS = {
    "default": Spec(B12, MadamConfig()),
    "bits4": Spec(LNSFormat(bits=4, eta0=0.25), MadamConfig(eta=0.25, eta_star=1.5)),
    "bits16-float16-s1": Spec(LNSFormat(bits=16, eta0=0.001), MadamConfig(eta=0.005, eta_star=0.04, grad_format="float16", beta_shift=1)),
    "float16-s16": Spec(B12, MadamConfig(grad_format="float16", beta_shift=16)),
    "float32-s14": Spec(B12, MadamConfig(grad_format="float32", beta_shift=14)),
    "float32-s1-state28": Spec(B12, MadamConfig(grad_format="float32", beta_shift=1, state_bits=28)),
    "pow2": Spec(POW2, MadamConfig.from_rungs(POW2, 15, 120)),
    "F8-a3": Spec(B12, MadamConfig(eta=0.005, eta_star=0.04, log_frac_bits=8, table_index_bits=3)),
    "F20-a12-nobc": Spec(B12, MadamConfig(log_frac_bits=20, table_index_bits=12, bias_correction=False)),
    "F8-a9-s1": Spec(B12, MadamConfig(eta_star=0.06, log_frac_bits=8, table_index_bits=9, beta_shift=1)),
}


def _grad_corners(spec):
    """Gradient bit patterns of every class: +-0, subnormals, normals at the edges, +-Inf, NaNs."""
    g = spec.cfg.grad_format
    W, MB, EMAXF, bias = g.width, g.man_bits, g.exp_field_max, g.bias
    mags = [
        0, 1, 2, 3, (1 << MB) - 1, 1 << (MB - 1),              # zero and subnormals
        1 << MB, (1 << MB) | 1, (2 << MB) - 1,                  # smallest normals
        bias << MB, (bias << MB) | 1, ((bias + 1) << MB) - 1,   # around 1.0
        ((EMAXF - 1) << MB), ((EMAXF - 1) << MB) | ((1 << MB) - 1),  # largest finite
        EMAXF << MB,                                            # Inf
        (EMAXF << MB) | 1, (EMAXF << MB) | (1 << (MB - 1)), (EMAXF << MB) | ((1 << MB) - 1),  # NaNs
    ]
    return [s << (W - 1) | m for m in mags for s in (0, 1)]


def _random_grads(spec, rng, n):
    """Random bit patterns: half uniform over all words, half with magnitudes near 1, some +-0."""
    g = spec.cfg.grad_format
    W, MB = g.width, g.man_bits
    uniform = rng.integers(0, 1 << W, n // 2, dtype=np.int64)
    e = rng.integers(g.bias - 40, g.bias + 10, n - n // 2).clip(0, g.exp_field_max - 1)
    near = (rng.integers(0, 2, len(e)) << (W - 1)) | (e << MB) | rng.integers(0, 1 << MB, len(e))
    out = np.concatenate([uniform, near])
    out[rng.random(n) < 0.05] = 0
    return [int(x) for x in out]


def _scaled_grads(spec, rng, scale):
    """Gradients with exponent fields near ``scale`` (one per element), random signs and mantissas."""
    g = spec.cfg.grad_format
    n = len(scale)
    e = (scale + rng.integers(-3, 4, n)).clip(1, g.exp_field_max - 1)
    return (rng.integers(0, 2, n) << (g.width - 1)) | (e << g.man_bits) | rng.integers(0, 1 << g.man_bits, n)


def evolved(spec, rng, n, steps=12):
    """State words after a few golden steps from fresh, and the next gradient of each element.

    Each element has its own gradient scale, so the next gradient is commensurate with its state (mid-range
    rung steps); one gradient in ten is zero.
    """
    g = spec.cfg.grad_format
    st = [0] * n
    scale = rng.integers(g.bias - 30, g.bias + 5, n)
    log_eta = tables.log_eta_term(spec)
    for t in range(1, steps + 1):
        gb = _scaled_grads(spec, rng, scale)
        gb[rng.random(n) < 0.1] = 0
        log_bc = tables.bias_correction_term(spec, t)
        # update_trace: compiled once for every spec (update_inplace compiles a loop per spec).
        st = [update_trace(spec, 0, 0, int(x), s, log_eta=log_eta, log_bc=log_bc)["st_new"] for x, s in zip(gb, st)]
    nxt = _scaled_grads(spec, rng, scale)
    nxt[rng.random(n) < 0.1] = 0
    return [int(x) for x in st], [int(x) for x in nxt]


def _states(spec, rng, n):
    """Fresh, random valid (normalised or E = 0), extreme and arbitrary (invalid) state words."""
    WM, WE, sb = spec.cfg.state_man_bits, spec.cfg.state_exp_bits, spec.cfg.state_bits
    corners = [0, 1, (1 << WM) - 1, 1 << (WM - 1), (1 << sb) - 1, ((1 << WE) - 1) << WM | 1 << (WM - 1)]
    m = (n - len(corners)) // 3
    E = rng.integers(1, 1 << WE, m)
    valid = (E << WM) | rng.integers(1 << (WM - 1), 1 << WM, m)
    decayed = rng.integers(0, 1 << WM, m)
    arbitrary = rng.integers(0, 1 << sb, n - len(corners) - 2 * m)
    return corners + [int(x) for x in np.concatenate([valid, decayed, arbitrary])]


def _step_scalars(spec, rng, n):
    """(log_eta, log_bc) pairs: every schedule value a host computes, plus the ports' extreme values."""
    F, S = spec.cfg.log_frac_bits, spec.eta_star_rungs
    r = rng.integers(1, S + 1, n)
    t = rng.choice([1, 2, 3, 10, 100, 1000, 10**5], n)
    pairs = [(tables.log_eta_term(spec, int(ri)), tables.bias_correction_term(spec, int(ti))) for ri, ti in zip(r, t)]
    pairs[:3] = [((1 << (F + 6)) - 1, 0), (0, (1 << (F + 5)) - 1), ((1 << (F + 6)) - 1, (1 << (F + 5)) - 1)]
    return pairs


def _codes(spec, rng, n):
    """Codes: both ends, within one step of them, and uniform."""
    KMAX, S = spec.fmt.code_max, spec.eta_star_rungs
    pick = rng.integers(0, 5, n)
    near = rng.integers(0, S + 1, n)
    uniform = rng.integers(0, KMAX + 1, n)
    out = np.choose(pick, [np.zeros(n, np.int64), np.full(n, KMAX), near, KMAX - near, uniform])
    out[:4] = [0, KMAX, 1, KMAX - 1]
    return [int(x) for x in out]


def vectors(spec, n, seed):
    """``n`` update inputs (sw, k, gbits, st, log_eta, log_bc).

    Every gradient class against random states (fresh, valid, decayed, invalid), then evolved states with
    commensurate gradients (about 40%), then random gradients against random states.
    """
    rng = np.random.default_rng(seed)
    corners = _grad_corners(spec)
    n_evolved = (2 * n) // 5
    st_e, g_e = evolved(spec, rng, n_evolved)
    n_rest = n - n_evolved
    grads = corners + g_e + _random_grads(spec, rng, n_rest - len(corners))
    states = _states(spec, rng, n_rest)
    rng.shuffle(states)
    states = states[:len(corners)] + st_e + states[len(corners):]
    codes, scalars = _codes(spec, rng, n), _step_scalars(spec, rng, n)
    sw = rng.integers(0, 2, n)
    return [(int(sw[i]), codes[i], grads[i], states[i], *scalars[i]) for i in range(n)]


class _AllStages(Elaboratable):
    """The five stages side by side, unconnected: each is driven with the golden model's values."""

    def __init__(self, spec):
        self.unpack, self.ema, self.log_ratio = Unpack(spec), Ema(spec), LogRatio(spec)
        self.rung_step, self.sat_add = RungStep(spec), SaturatingAdd(spec)

    def elaborate(self, platform):
        m = Module()
        for name in ("unpack", "ema", "log_ratio", "rung_step", "sat_add"):
            m.submodules[name] = getattr(self, name)
        return m


def run_stages(spec, vecs):
    """Drive every stage with each vector's golden inputs; returns a list of mismatch descriptions."""
    dut = _AllStages(spec)
    bad = []

    async def testbench(ctx):
        for sw, k, gbits, st, log_eta, log_bc in vecs:
            t = update_trace(spec, sw, k, gbits, st, log_eta=log_eta, log_bc=log_bc)
            u, e, lr, rs, sa = dut.unpack, dut.ema, dut.log_ratio, dut.rung_step, dut.sat_add
            inputs = [
                (u.gbits, gbits),
                (e.st, st), (e.S16, t["S16"]), (e.en, t["en"]), (e.zero, t["zero"]),
                (lr.S16, t["S16"]), (lr.en, t["en"]), (lr.Em, t["Em"]), (lr.Sm, t["Sm"]), (lr.zero, t["zero"]),
                (rs.X, t["X"]), (rs.log_eta, log_eta), (rs.log_bc, log_bc), (rs.zero, t["zero"]),
                (sa.sw, sw), (sa.sg, t["sg"]), (sa.k, k), (sa.n, t["n"]),
            ]
            for port, value in inputs:
                ctx.set(port, value)
            got = {
                "sg": u.sg, "nan": u.nan, "inf": u.inf, "zero": u.zero, "en": u.en, "S16": u.S16,
                "Em": e.Em, "Sm": e.Sm, "X": lr.X, "Y": rs.Y, "n": rs.n,
            }
            got = {name: ctx.get(port) for name, port in got.items()}
            if not t["nan"]:  # the trace's k_new and st_new are after the NaN select
                got["st_new"], got["k_new"] = ctx.get(e.st_new), ctx.get(sa.k_new)
            diff = {name: (v, t[name]) for name, v in got.items() if v != t[name]}
            if diff:
                bad.append(f"sw={sw} k={k} gbits={gbits:#x} st={st:#x} log_eta={log_eta} log_bc={log_bc}: "
                           + ", ".join(f"{name} rtl={v} golden={g}" for name, (v, g) in diff.items()))

    sim = Simulator(dut)
    sim.add_testbench(testbench)
    sim.run()
    return bad


@pytest.mark.parametrize("name", list(SPECS))
def test_stages_match_golden_trace(name):
    spec = SPECS[name]
    vecs = vectors(spec, 300, seed=zlib.crc32(name.encode()))
    bad = run_stages(spec, vecs)
    assert not bad, f"{len(bad)} of {len(vecs)} vectors differ, first: " + "\n".join(bad[:5])


def test_vectors_cover_every_class():
    spec = SPECS["default"]
    traces = [update_trace(spec, sw, k, g, st, log_eta=le, log_bc=lb) for sw, k, g, st, le, lb in vectors(spec, 300, 0)]
    assert all(any(t[c] for t in traces) for c in ("nan", "inf", "zero"))
    assert any(t["n"] == spec.eta_star_rungs for t in traces) and any(0 < t["n"] < spec.eta_star_rungs for t in traces)
    assert any(t["k_new"] == 0 for t in traces) and any(t["k_new"] == spec.fmt.code_max for t in traces)


def test_interpolator_wraps_negative_indices_like_numpy():
    table = [int(v) for v in tables.log_table(SPECS["F8-a3"])]  # 9 entries, a = 3
    dut = Interpolator(table, index_bits=3, frac_bits=13, wrap=True)
    bad = []

    async def testbench(ctx):
        for f in list(range(-2**16, 2**16, 997)) + [-1, -2**13, -2**13 - 1, -2**16, 2**16 - 1]:
            i, l = f >> 13, f & (2**13 - 1)
            t = np.asarray(table)
            expect = int(t[i]) + ((int(t[i + 1]) - int(t[i])) * l >> 13)  # NumPy indexing wraps
            ctx.set(dut.f, f)
            if ctx.get(dut.y) != expect:
                bad.append((f, ctx.get(dut.y), expect))

    sim = Simulator(dut)
    sim.add_testbench(testbench)
    sim.run()
    assert not bad


@pytest.mark.parametrize("make, match", [
    (lambda: Unpack("spec"), "spec must be an lnsim.spec.Spec, not 'spec'"),
    (lambda: LogRatio(SPECS["default"], log_table=[0] * 128), r"log_table must have 129 entries \(2\*\*table_index_bits \+ 1\), not 128"),
    (lambda: RungStep(SPECS["default"], antilog_table=[-1] * 129), r"antilog_table\[0\] must be an integer in 0..67108863, not -1"),
])
def test_constructor_validation(make, match):
    with pytest.raises((TypeError, ValueError), match=match):
        make()


def test_ema_square_msb_comparison_is_exact():
    """EmaSquare takes bit 31 of S16 * S16 as S16 >= HI_SQ: the same for every 16-bit S16."""
    from lnsim_rtl.stages import HI_SQ

    s = np.arange(2**16, dtype=np.uint64)
    assert np.array_equal((s * s) >> np.uint64(31), (s >= HI_SQ).astype(np.uint64))
