"""Hypothesis strategies over the whole valid spec space of lnsim (see lnsim/spec.py for the rules).

Every strategy builds valid values directly (no filtering): a format's eta0 is drawn below the deepest
ladder allowed, pow2 frac_bits from the range its bits allow, eta and eta_star as whole rungs inside their
limits, and the datapath's state width above the cross-constraint WE + s + 8.

The datapath parameters (grad_format, state_bits, beta_shift, log_frac_bits, table_index_bits) pick the
update loop Numba compiles (a few seconds each, then cached on disk); ``datapaths("default")`` draws
from the small fixed set :data:`DEFAULT_DATAPATHS` for the default test run, ``"slow"`` from a larger fixed
sample and ``"full"`` from all of them (for tests that run the per-element trace, compiled once).
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import NamedTuple

import numpy as np
from hypothesis import strategies as st

from lnsim import GradFormat, LNSFormat, MadamConfig, Spec
from lnsim.spec import LN2, MAX_LADDER_DEPTH, MAX_STEP_RUNGS


class Datapath(NamedTuple):
    """The MadamConfig fields that select a compiled update loop."""

    grad_format: str
    state_bits: int
    beta_shift: int
    log_frac_bits: int
    table_index_bits: int


#: Datapaths of the default run: the defaults plus the corners tests/test_kernel_equivalence.py already
#: compiles (all three gradient formats, s = 1 and 14, F = 8 and 20, a = 3 and 12, the narrowest state).
DEFAULT_DATAPATHS = (
    Datapath("bfloat16", 32, 10, 16, 7),
    Datapath("float16", 32, 1, 8, 3),
    Datapath("float32", 32, 14, 20, 12),
    Datapath("bfloat16", 19, 1, 20, 7),
    Datapath("float16", 24, 9, 16, 12),
)


def min_state_bits(grad_format: str, beta_shift: int) -> int:
    """Narrowest state word for a gradient format and beta_shift: exponent bits + beta_shift + 8 (may exceed 32)."""
    g = GradFormat(grad_format)
    term_exp_max = 2 * (g.exp_field_max - 1) + 2 * g.man_bits  # as MadamConfig.state_exp_bits
    return (term_exp_max + beta_shift + 2).bit_length() + beta_shift + 8


def max_beta_shift(grad_format: str) -> int:
    """Largest valid beta_shift for a gradient format (the 32-bit state needs WE + s + 8 bits)."""
    return max(s for s in range(1, 17) if min_state_bits(grad_format, s) <= 32)


@lru_cache(maxsize=None)
def all_datapaths() -> tuple[Datapath, ...]:
    """Every valid datapath (44,888): each gradient format, beta_shift, state width, F and a."""
    out = []
    for gf in (g.value for g in GradFormat):
        for s in range(1, max_beta_shift(gf) + 1):
            for state_bits in range(min_state_bits(gf, s), 33):
                for F in range(8, 21):
                    out += [Datapath(gf, state_bits, s, F, a) for a in range(3, min(12, F + 1) + 1)]
    return tuple(out)


def _slow_datapaths(n_random: int = 19, seed: int = 8) -> tuple[Datapath, ...]:
    """DEFAULT_DATAPATHS plus ``n_random`` datapaths picked from :func:`all_datapaths` with a fixed seed."""
    pool = all_datapaths()
    picks = np.random.default_rng(seed).choice(len(pool), n_random, replace=False)
    return DEFAULT_DATAPATHS + tuple(pool[i] for i in sorted(picks))


#: Datapaths of the slow run's kernel tests: a fixed sample, so each compiles once and stays cached on disk.
SLOW_DATAPATHS = _slow_datapaths()


def datapaths(kind: str = "full"):
    """A valid datapath: ``"full"`` any (half the draws from :data:`DEFAULT_DATAPATHS`), ``"slow"`` one of :data:`SLOW_DATAPATHS`, ``"default"`` one of
    :data:`DEFAULT_DATAPATHS`."""
    if kind == "default":
        return st.sampled_from(DEFAULT_DATAPATHS)
    if kind == "slow":
        return st.sampled_from(SLOW_DATAPATHS)
    # The corners (DEFAULT_DATAPATHS) are a few in 44,888: draw them often enough to be seen.
    return st.one_of(st.sampled_from(all_datapaths()), st.sampled_from(DEFAULT_DATAPATHS))


def max_natural_eta0(bits: int) -> float:
    """Largest natural-base eta0 for ``bits``: min(1, MAX_LADDER_DEPTH / (2**bits - 1)), as LNSFormat checks it."""
    code_max = 2**bits - 1
    hi = min(1.0, MAX_LADDER_DEPTH / code_max)
    while code_max * hi > MAX_LADDER_DEPTH:
        hi = math.nextafter(hi, 0.0)
    return hi


def min_frac_bits(bits: int) -> int | None:
    """Smallest pow2 frac_bits m whose ladder (2**bits - 1) * ln2 / 2**m fits; None if no m in 0..16 does."""
    for m in range(17):
        if (2**bits - 1) * (LN2 / 2**m) <= MAX_LADDER_DEPTH:
            return m
    return None


#: Code widths the pow2 base allows (some frac_bits <= 16 keeps the ladder within MAX_LADDER_DEPTH).
POW2_BITS = [b for b in range(2, 25) if min_frac_bits(b) is not None]


@st.composite
def formats(draw, bits=st.integers(2, 24), base=st.sampled_from(["natural", "pow2"])) -> LNSFormat:
    """A valid LNSFormat: natural base with eta0 log-spread below its limit, or pow2 with a valid frac_bits."""
    b = draw(bits)
    kind = draw(base)
    if kind == "pow2" and b in POW2_BITS:
        return LNSFormat(bits=b, base="pow2", frac_bits=draw(st.integers(min_frac_bits(b), 16)))
    hi = max_natural_eta0(b)
    # eta0 = hi * 2**-x: the deepest ladder (x = 0), round values, or anything down to 2**-24 below the limit.
    x = draw(st.one_of(st.just(0.0), st.floats(0.0, 24.0)))
    return LNSFormat(bits=b, eta0=hi * 2.0**-x)


def rung_limits(fmt: LNSFormat, max_star: int | None = None) -> tuple[int, int]:
    """(largest eta_rungs, largest eta_star_rungs) valid for ``fmt``: eta <= 1, eta_star <= 16, the ladder, the antilog."""
    star = min(fmt.code_max, MAX_STEP_RUNGS, math.floor(16.0 / fmt.eta0))
    while star * fmt.eta0 > 16.0:
        star -= 1
    if max_star is not None:
        star = min(star, max_star)
    eta = min(star, math.floor(1.0 / fmt.eta0))
    while eta * fmt.eta0 > 1.0:
        eta -= 1
    return eta, star


def _spread_int(lo: int, hi: int):
    """Integers in lo..hi, often small (a tenth of the draws log-uniform): step sizes span 1 .. the datapath's reach."""
    if hi - lo < 64:
        return st.integers(lo, hi)
    log_uniform = st.floats(0.0, math.log(hi - lo + 1)).map(lambda u: min(hi, lo + int(math.exp(u)) - 1))
    return st.one_of(st.integers(lo, min(hi, lo + 63)), log_uniform, st.just(hi))


@st.composite
def specs(draw, kind: str = "full", fmts=None, max_star: int | None = None, max_eta: int | None = None,
          datapath=None) -> Spec:
    """A valid Spec: format from ``fmts`` (default :func:`formats`), datapath from ``datapath`` (default
    :func:`datapaths` of ``kind``), eta and eta_star in whole rungs up to what the format and the datapath's
    precision allow (:attr:`MadamConfig.max_step_rungs`), bias correction on or off.

    ``max_star`` / ``max_eta`` cap eta_star_rungs / eta_rungs further (e.g. fidelity.measure needs
    eta_star_rungs <= code_max // 2).
    """
    fmt = draw(fmts if fmts is not None else formats())
    dp = draw(datapath if datapath is not None else datapaths(kind))
    reach = MadamConfig(**dp._asdict()).max_step_rungs
    eta_hi, star_hi = rung_limits(fmt, reach if max_star is None else min(max_star, reach))
    if max_eta is not None:
        eta_hi = min(eta_hi, max_eta)
    eta_rungs = draw(_spread_int(1, eta_hi))
    star_rungs = draw(_spread_int(eta_rungs, star_hi))
    cfg = MadamConfig.from_rungs(fmt, eta_rungs, star_rungs, bias_correction=draw(st.booleans()), **dp._asdict())
    return Spec(fmt, cfg)


def datapath_of(spec: Spec) -> Datapath:
    """The datapath fields of a spec."""
    c = spec.cfg
    return Datapath(c.grad_format.value, c.state_bits, c.beta_shift, c.log_frac_bits, c.table_index_bits)


# ---------------------------------------------------------------------------------------------- gradients


def grad_layout(spec: Spec) -> tuple[int, int, int]:
    """(width W, exponent field max, mantissa bits MB) of the spec's gradient format."""
    g = spec.cfg.grad_format
    return g.width, g.exp_field_max, g.man_bits


def max_finite_bits(spec: Spec, negative: bool = False) -> int:
    """Bit pattern of the largest finite gradient of the spec's format."""
    W, emax, MB = grad_layout(spec)
    return (int(negative) << (W - 1)) | ((emax - 1) << MB) | ((1 << MB) - 1)


def inf_bits(spec: Spec, negative: bool = False) -> int:
    """Bit pattern of +-Inf in the spec's gradient format."""
    W, emax, MB = grad_layout(spec)
    return (int(negative) << (W - 1)) | (emax << MB)


def classify(spec: Spec, bits) -> dict:
    """Boolean masks ``nan``, ``inf``, ``zero``, ``subnormal`` and the sign ``sg`` of gradient bit patterns."""
    W, emax, MB = grad_layout(spec)
    b = np.asarray(bits, dtype=np.int64)
    e = (b >> MB) & emax
    m = b & ((1 << MB) - 1)
    return {
        "sg": (b >> (W - 1)) & 1,
        "nan": (e == emax) & (m != 0),
        "inf": (e == emax) & (m == 0),
        "zero": (e == 0) & (m == 0),
        "subnormal": (e == 0) & (m != 0),
    }


@st.composite
def grad_bits(draw, spec: Spec, finite: bool = False) -> int:
    """One gradient bit pattern of the spec's format: NaN (any payload), +-Inf, +-0, subnormal, the largest
    finite value, a random normal value, or any raw pattern. ``finite`` excludes NaN and Inf."""
    W, emax, MB = grad_layout(spec)
    sign = draw(st.integers(0, 1)) << (W - 1)
    man = st.integers(0, (1 << MB) - 1)
    kinds = [
        st.just(0),  # zero
        st.integers(1, (1 << MB) - 1),  # subnormal
        st.builds(lambda e, m: e << MB | m, st.integers(1, emax - 1), man),  # normal
        st.just(max_finite_bits(spec)),
    ]
    if not finite:
        kinds += [
            st.just(emax << MB),  # Inf
            st.integers(1, (1 << MB) - 1).map(lambda m: emax << MB | m),  # NaN, any payload
            st.integers(0, (1 << (W - 1)) - 1),  # any pattern
        ]
    return sign | draw(st.one_of(kinds))


# ------------------------------------------------------------------------------------------ state words


def state_fields(spec: Spec, state) -> tuple[np.ndarray, np.ndarray]:
    """(exponent, mantissa) fields of state words."""
    WM = spec.cfg.state_man_bits
    s = np.asarray(state, dtype=np.int64)
    return s >> WM, s & ((1 << WM) - 1)


def valid_state_mask(spec: Spec, state) -> np.ndarray:
    """GoldenMadam's rule: exponent <= state_exp_max, mantissa normalised when the exponent is >= 1;
    and nothing above the state word's width."""
    E, M = state_fields(spec, state)
    WM = spec.cfg.state_man_bits
    fits = np.asarray(state, dtype=np.int64) < (1 << spec.cfg.state_bits)
    return fits & (E <= spec.state_exp_max) & ((E == 0) | (M >= 1 << (WM - 1)))


@st.composite
def state_words(draw, spec: Spec) -> int:
    """One valid state word: zero, a denormal (E = 0) word, or any exponent with a normalised mantissa."""
    WM = spec.cfg.state_man_bits
    E = draw(st.one_of(st.just(0), st.integers(0, spec.state_exp_max)))
    lo = 0 if E == 0 else 1 << (WM - 1)
    M = draw(st.one_of(st.just(lo), st.integers(lo, (1 << WM) - 1)))
    return E << WM | M
