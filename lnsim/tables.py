"""Every table and per-step scalar of the integer datapath, generated from a :class:`~lnsim.spec.Spec`.

This module is the single source of the ROM contents: the golden model, the RTL and the docs read these
functions, never a copy of their formulas. Table entries are rounded to nearest (ties cannot occur for
the irrational values involved; exact values such as log2(1) = 0 are exact). See docs/datapath.md.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from lnsim.spec import Base, LNSFormat, Spec
from lnsim.validation import check_int

__all__ = [
    "ANTILOG_FRAC_BITS",
    "LOG_INPUT_BITS",
    "LADDER_MAN_BITS",
    "log_table",
    "antilog_table",
    "log_eta_term",
    "bias_correction_term",
    "ladder_tables",
    "ladder_split",
    "table_bits",
    "spec_summary",
    "normalised",
]

#: Fraction bits of the antilog table's entries: A[i] = round(2**24 * 2**(i / 2**a)).
ANTILOG_FRAC_BITS = 24
#: Width of the fraction fed to the log unit: log2(1 + f / 2**16).
LOG_INPUT_BITS = 16
#: Width of the normalised mantissas of the weight decoder's ladder tables (values in [2**15, 2**16)).
LADDER_MAN_BITS = 16


def _round(x: float) -> int:
    return int(math.floor(x + 0.5))


@lru_cache(maxsize=None)
def _log_table(frac_bits: int, index_bits: int) -> np.ndarray:
    n = 2**index_bits
    return np.array([_round(2.0**frac_bits * math.log2(1.0 + i / n)) for i in range(n + 1)], dtype=np.int32)


@lru_cache(maxsize=None)
def _antilog_table(index_bits: int) -> np.ndarray:
    n = 2**index_bits
    return np.array([_round(2.0**ANTILOG_FRAC_BITS * 2.0 ** (i / n)) for i in range(n + 1)], dtype=np.int32)


def log_table(spec: Spec) -> np.ndarray:
    """The log unit's table: ``round(2**F * log2(1 + i / 2**a))`` for i in 0..2**a (int32, read-only).

    F = ``cfg.log_frac_bits``, a = ``cfg.table_index_bits``. Interpolated linearly between entries.
    """
    t = _log_table(spec.cfg.log_frac_bits, spec.cfg.table_index_bits)
    t.flags.writeable = False
    return t


def antilog_table(spec: Spec) -> np.ndarray:
    """The antilog unit's table: ``round(2**24 * 2**(i / 2**a))`` for i in 0..2**a (int32, read-only)."""
    t = _antilog_table(spec.cfg.table_index_bits)
    t.flags.writeable = False
    return t


def log_eta_term(spec: Spec, eta_rungs: int | None = None) -> int:
    """Per-step scalar ``round(2**F * 2 * log2(eta_rungs))``: the learning rate, in the log domain.

    ``eta_rungs`` defaults to the spec's eta / eta0 and may be any whole number of rungs in
    1..eta_star_rungs, so a learning-rate schedule needs no new tables.
    """
    if eta_rungs is None:
        eta_rungs = spec.eta_rungs
    eta_rungs = check_int("eta_rungs", eta_rungs, 1, spec.eta_star_rungs, note=" (eta_star_rungs)")
    return _round(2.0**spec.cfg.log_frac_bits * 2.0 * math.log2(eta_rungs))


def bias_correction_term(spec: Spec, t: int) -> int:
    """Per-step scalar ``round(2**F * -log2(1 - beta**t))`` for step t >= 1 (0 without bias correction).

    Subtracting it from log2(g**2 / v) divides v by 1 - beta**t, as the authors' code does.
    """
    t = check_int("t", t, 1, note=" (the step count)")
    if not spec.cfg.bias_correction:
        return 0
    s = spec.cfg.beta_shift
    one_minus_beta_t = -math.expm1(int(t) * math.log1p(-(2.0**-s)))
    return _round(2.0**spec.cfg.log_frac_bits * -math.log2(one_minus_beta_t))


def normalised(x: float) -> tuple[int, int]:
    """(e, mu) with x ~= mu * 2**(e - 15), mu in [2**15, 2**16) rounded to nearest; x > 0."""
    frac, e = math.frexp(x)  # x = frac * 2**e, frac in [0.5, 1)
    mu = _round(frac * 2.0**LADDER_MAN_BITS)
    e -= 1
    if mu == 2**LADDER_MAN_BITS:
        mu, e = mu // 2, e + 1
    return e, mu


def ladder_split(fmt: LNSFormat) -> int:
    """Number of low code bits h of the natural-base decoder's table split k = kh * 2**h + kl."""
    return (fmt.bits + 1) // 2


@lru_cache(maxsize=None)
def _ladder_tables(fmt: LNSFormat):
    if fmt.base is Base.POW2:
        m = fmt.frac_bits
        lo = [normalised(2.0 ** (-j / 2**m)) for j in range(2**m)]
        hi = None
    else:
        h = ladder_split(fmt)
        lo = [normalised(math.exp(-j * fmt.eta0)) for j in range(2**h)]
        hi = [normalised(math.exp(-(j << h) * fmt.eta0)) for j in range(2 ** (fmt.bits - h))]

    def arrays(entries):
        if entries is None:
            return None
        e = np.array([x[0] for x in entries], dtype=np.int32)
        mu = np.array([x[1] for x in entries], dtype=np.int32)
        e.flags.writeable = mu.flags.writeable = False
        return e, mu

    return arrays(lo), arrays(hi)


def ladder_tables(fmt: LNSFormat):
    """The weight decoder's tables of exp(-k * eta0) as (exponent, 16-bit mantissa) pairs.

    Each entry (e, mu) stands for ``mu * 2**(e - 15)`` with mu in [2**15, 2**16), rounded to nearest.

    Returns
    -------
    lo, hi : tuple of (int32 array, int32 array) or None
        ``base="pow2"`` (eta0 = ln2/2**m): ``lo`` holds 2**(-j/2**m) for j in 0..2**m-1 and ``hi`` is None
        (the integer part of k / 2**m is a shift). ``base="natural"``: with h = :func:`ladder_split`,
        ``lo`` holds exp(-j*eta0) for j in 0..2**h-1 and ``hi`` holds exp(-(j << h)*eta0) for
        j in 0..2**(bits-h)-1.
    """
    return _ladder_tables(fmt)


def table_bits(spec: Spec) -> dict:
    """ROM bits per table (entries x entry width) of the update datapath and of the weight decoder."""
    a = spec.cfg.table_index_bits
    entries = 2**a + 1
    log_w = int(log_table(spec)[-1]).bit_length()
    alog_w = int(antilog_table(spec)[-1]).bit_length()
    lo, hi = ladder_tables(spec.fmt)
    # A ladder entry stores the mantissa without its leading one, plus the exponent offset it needs.
    def ladder(t):
        if t is None:
            return 0
        e_span = int(t[0].max() - t[0].min())
        return len(t[0]) * (LADDER_MAN_BITS - 1 + max(e_span, 1).bit_length())

    out = {
        "log": entries * log_w,
        "antilog": entries * alog_w,
        "decoder": ladder(lo) + ladder(hi),
    }
    out["update_total"] = out["log"] + out["antilog"]
    return out


def spec_summary(spec: Spec) -> dict:
    """:meth:`Spec.summary` (every input and derived quantity) plus ``table_bits`` (:func:`table_bits`), as
    plain JSON-able values: what the ``lnsim info`` JSON, the Verilog header and every report record."""
    return {**spec.summary(), "table_bits": table_bits(spec)}
