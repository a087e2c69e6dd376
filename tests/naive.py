"""Slow, obviously correct, pure-Python integer model of ``docs/datapath.md`` (the test oracle).

Written only from the normative page ``docs/datapath.md``. It deliberately does not read or import
``lnsim.tables`` or ``lnsim.golden``: a bug shared by those must not hide here. From ``lnsim.spec`` it
reads only the *input* parameters; every derived constant (WE, WM, E0, EMAX, KMAX, h, ...) and every
table entry is recomputed here from its definition in the page.

All datapath arithmetic is on plain Python ints (``>>`` is floor division by a power of two, as the page
says). Tables and host-side scalars are computed with 60-digit ``decimal`` arithmetic and exact
``fractions``, and rounded with ``round(x) = floor(x + 1/2)`` as the page defines it.

Variable names follow the page's pseudo-code line by line.
"""

from __future__ import annotations

import functools
import math
from decimal import Decimal, localcontext
from fractions import Fraction

from lnsim.spec import Base

__all__ = [
    "naive_constants",
    "naive_tables",
    "naive_log_eta",
    "naive_log_bc",
    "naive_update",
    "naive_sigma_star",
    "naive_decode_bf16",
]

#: Decimal digits used for every transcendental table entry.
_PREC = 60

#: Gradient formats, from the page's parameter table: (EB, MB, BIAS, W).
_GRAD_FORMATS = {
    "bfloat16": (8, 7, 127, 16),
    "float16": (5, 10, 15, 16),
    "float32": (8, 23, 127, 32),
}


# --------------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------------


def _round(x) -> int:
    """The page's ``round(x) = floor(x + 1/2)``, exactly, for an int, Fraction or Decimal ``x``."""
    return math.floor(Fraction(x) + Fraction(1, 2))


def _clamp(x: int, lo: int, hi: int) -> int:
    """``min(max(x, lo), hi)``."""
    return min(max(x, lo), hi)


def _ln2() -> Decimal:
    """ln 2 to the current decimal context's precision."""
    return Decimal(2).ln()


def _log2(x: Decimal) -> Decimal:
    """log2 of a positive Decimal, to the current context's precision."""
    return x.ln() / _ln2()


def _split(x) -> tuple[int, int]:
    """Round a positive real to the page's pair ``(e, mu)``: ``x ~= mu * 2**(e - 15)``, ``mu`` in [2**15, 2**16).

    ``mu`` is rounded to nearest (``floor(y + 1/2)``); a rounding up to 2**16 carries into ``e``.

    Parameters
    ----------
    x : int, float, Fraction or Decimal
        Positive value; converted exactly to a Fraction.

    Returns
    -------
    (int, int)
        ``(e, mu)``.
    """
    x = Fraction(x)
    assert x > 0
    # exact e = floor(log2(x)): start from an estimate and correct with exact comparisons
    e = x.numerator.bit_length() - x.denominator.bit_length()
    while x < Fraction(2) ** e:
        e -= 1
    while x >= Fraction(2) ** (e + 1):
        e += 1
    mu = _round(x * Fraction(2) ** (15 - e))
    assert 2**15 <= mu <= 2**16
    if mu == 2**16:
        mu, e = 2**15, e + 1
    return e, mu


# --------------------------------------------------------------------------------------------------
# parameters, derived constants, tables, per-step scalars
# --------------------------------------------------------------------------------------------------


def naive_constants(spec) -> dict:
    """Every parameter and derived constant of the page, recomputed from its formula.

    Parameters
    ----------
    spec : lnsim.spec.Spec
        Only its input parameters are read.

    Returns
    -------
    dict
        Keys ``B KMAX SSTAR s EB MB BIAS W EMAXF WE WM EMAX E0 F a base m h``
        (``m`` is None for the natural base, ``h`` is None for the pow2 base).
    """
    fmt, cfg = spec.fmt, spec.cfg
    B = fmt.bits
    KMAX = 2**B - 1
    SSTAR = spec.eta_star_rungs
    s = cfg.beta_shift
    EB, MB, BIAS, W = _GRAD_FORMATS[cfg.grad_format.value]
    EMAXF = 2**EB - 1
    WE = (2 * (EMAXF - 1) + 2 * MB + s + 2).bit_length()
    WM = cfg.state_bits - WE
    EMAX = 2**WE - 1
    E0 = 2 * BIAS + WM + s + 2 * MB - 2
    F = cfg.log_frac_bits
    a = cfg.table_index_bits
    pow2 = fmt.base is Base.POW2
    m = fmt.frac_bits if pow2 else None
    h = None if pow2 else (B + 1) // 2  # ceil(B / 2)

    # the page's parameter ranges
    assert 2 <= B <= 24
    assert 1 <= SSTAR <= min(KMAX, 2**22 - 1)
    assert 1 <= s <= 16
    assert WE + s + 8 <= cfg.state_bits <= 32
    assert 8 <= F <= 20
    assert 3 <= a <= min(12, F + 1)
    return dict(
        B=B, KMAX=KMAX, SSTAR=SSTAR, s=s, EB=EB, MB=MB, BIAS=BIAS, W=W, EMAXF=EMAXF, WE=WE, WM=WM,
        EMAX=EMAX, E0=E0, F=F, a=a, base="pow2" if pow2 else "natural", m=m, h=h,
    )  # fmt: skip


@functools.lru_cache(maxsize=None)
def _log_alog(F: int, a: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """LOG and ALOG of the page, ``2**a + 1`` entries each."""
    with localcontext() as ctx:
        ctx.prec = _PREC
        LOG = []
        ALOG = []
        for i in range(2**a + 1):
            frac = Decimal(i) / Decimal(2**a)  # exact
            LOG.append(_round(Decimal(2**F) * _log2(1 + frac)))  # round(2**F * log2(1 + i / 2**a))
            ALOG.append(_round(Decimal(2**24) * (frac * _ln2()).exp()))  # round(2**24 * 2**(i / 2**a))
    return tuple(LOG), tuple(ALOG)


@functools.lru_cache(maxsize=None)
def _ladder(bits: int, base: Base, eta0: float, frac_bits) -> tuple[tuple, tuple | None]:
    """Decoder ladder tables LO and HI (HI None for the pow2 base) as tuples of ``(e, mu)``."""
    with localcontext() as ctx:
        ctx.prec = _PREC
        if base is Base.POW2:
            m = frac_bits
            # LO[j] = 2**(-j / 2**m), j < 2**m  (exactly, not through the float eta0)
            LO = tuple(_split((-(Decimal(j) / Decimal(2**m)) * _ln2()).exp()) for j in range(2**m))
            return LO, None
        B = bits
        h = (B + 1) // 2  # ceil(B / 2)
        eta0_d = Decimal(eta0)  # the float's exact value
        LO = tuple(_split((-(Decimal(j) * eta0_d)).exp()) for j in range(2**h))  # exp(-j * eta0)
        HI = tuple(_split((-(Decimal(j << h) * eta0_d)).exp()) for j in range(2 ** (B - h)))  # exp(-(j << h) * eta0)
        return LO, HI


def _ladder_of(fmt):
    return _ladder(fmt.bits, fmt.base, fmt.eta0, fmt.frac_bits)


def naive_tables(spec) -> dict:
    """The page's tables, computed from their definitions.

    Parameters
    ----------
    spec : lnsim.spec.Spec

    Returns
    -------
    dict
        ``"LOG"`` and ``"ALOG"``: lists of ``2**a + 1`` ints; ``"LO"`` and ``"HI"``: the weight decoder's
        ladder tables as lists of ``(e, mu)`` tuples (``"HI"`` is None for the pow2 base).
    """
    c = naive_constants(spec)
    LOG, ALOG = _log_alog(c["F"], c["a"])
    LO, HI = _ladder_of(spec.fmt)
    return {"LOG": list(LOG), "ALOG": list(ALOG), "LO": list(LO), "HI": None if HI is None else list(HI)}


def naive_log_eta(spec, r_t: int) -> int:
    """``log_eta = round(2**F * 2 * log2(r_t))`` for a step of ``r_t`` whole rungs, ``1 <= r_t <= SSTAR``.

    Parameters
    ----------
    spec : lnsim.spec.Spec
    r_t : int
        The step's eta in whole rungs.

    Returns
    -------
    int
    """
    c = naive_constants(spec)
    assert isinstance(r_t, int) and 1 <= r_t <= c["SSTAR"], r_t
    with localcontext() as ctx:
        ctx.prec = _PREC
        return _round(Decimal(2 ** c["F"]) * 2 * _log2(Decimal(r_t)))


def naive_log_bc(spec, t: int) -> int:
    """``log_bc = round(2**F * -log2(1 - beta**t))`` at step ``t >= 1`` with bias correction, else 0.

    Parameters
    ----------
    spec : lnsim.spec.Spec
    t : int
        Step number, from 1.

    Returns
    -------
    int
    """
    if not spec.cfg.bias_correction:
        return 0
    c = naive_constants(spec)
    assert isinstance(t, int) and t >= 1, t
    with localcontext() as ctx:
        ctx.prec = _PREC
        beta = 1 - Decimal(2) ** -c["s"]  # exact
        one_minus = 1 - beta**t
        return _round(Decimal(2 ** c["F"]) * -_log2(one_minus))


# --------------------------------------------------------------------------------------------------
# the update unit, one element, stages 1-5
# --------------------------------------------------------------------------------------------------


def naive_update(spec, sw: int, k: int, gbits: int, st: int, log_eta: int, log_bc: int):
    """One element through stages 1-5 of the page.

    Parameters
    ----------
    spec : lnsim.spec.Spec
    sw : int
        Frozen weight sign bit (0 = positive).
    k : int
        Code, ``0 .. KMAX``.
    gbits : int
        Gradient bit pattern, ``W`` bits.
    st : int
        State word ``E << WM | M`` (0 for a fresh element); must satisfy the page's invariant
        (``E >= 1`` implies ``M`` normalised).
    log_eta, log_bc : int
        The per-step scalars (:func:`naive_log_eta`, :func:`naive_log_bc`).

    Returns
    -------
    (int, int, bool, bool)
        ``(k', st', nan, inf)``.
    """
    c = naive_constants(spec)
    KMAX, SSTAR, s = c["KMAX"], c["SSTAR"], c["s"]
    MB, W, EMAXF = c["MB"], c["W"], c["EMAXF"]
    WE, WM, EMAX, F, a = c["WE"], c["WM"], c["EMAX"], c["F"], c["a"]
    LOG, ALOG = _log_alog(F, a)

    assert sw in (0, 1)
    assert 0 <= k <= KMAX
    assert 0 <= gbits < 2**W
    assert 0 <= st < 2 ** (WE + WM)
    assert (st >> WM) == 0 or 2 ** (WM - 1) <= (st & (2**WM - 1)), "state word violates the invariant"

    # ---- Stage 1: unpack the gradient ----
    sg = gbits >> (W - 1)
    e = (gbits >> MB) & EMAXF
    m = gbits & (2**MB - 1)
    nan = (e == EMAXF) and (m != 0)
    inf = (e == EMAXF) and (m == 0)
    if nan:  # NaN rule: element untouched, flagged
        return k, st, True, False
    if inf:  # Inf rule: the largest finite magnitude, same sign
        e, m = EMAXF - 1, 2**MB - 1
    zero = (e == 0) and (m == 0)
    S = m + (2**MB if e > 0 else 0)
    x = max(e, 1)
    if not zero:
        p = S.bit_length() - 1
        assert 0 <= p <= MB
        Sn = S << (MB - p)
        assert 2**MB <= Sn < 2 ** (MB + 1)
        en = x - (MB - p)
        S16 = Sn << (15 - MB) if MB <= 15 else Sn >> (MB - 15)
        assert 2**15 <= S16 < 2**16

    # ---- Stage 2: second-moment EMA (linear pseudo-float) ----
    E = st >> WM
    M = st & (2**WM - 1)
    M1 = M - ((M + 2 ** (s - 1)) >> s)  # beta * v, rounded to nearest
    if zero:
        Et, Mt = 0, 0
    else:  # (1 - beta) * g**2 = g**2 * 2**-s
        sq = S16 * S16
        assert 2**30 <= sq < 2**32
        hi = sq >> 31
        sqn = sq << (1 - hi)
        assert 2**31 <= sqn < 2**32
        Mt = (sqn + 2 ** (31 - WM)) >> (32 - WM)
        assert 2 ** (WM - 1) <= Mt <= 2**WM
        Et = 2 * en + hi + 2 * MB - 1
        assert Et >= 1
    Em = max(E, Et)
    dv = min(Em - E, 31)
    dt = min(Em - Et, 31)
    Av = (M1 + ((1 << dv) >> 1)) >> dv  # align, rounding to nearest (half up)
    At = (Mt + ((1 << dt) >> 1)) >> dt
    Sm = Av + At
    assert Sm < 2 ** (WM + 1)
    if Sm >= 2**WM:
        Sm, Em = Sm >> 1, Em + 1  # truncating
    elif Sm < 2 ** (WM - 1) and Em > 0:
        Sm, Em = Sm << 1, Em - 1
    if Em > EMAX:
        Sm, Em = 2**WM - 1, EMAX  # saturate
    # one renormalising shift is always enough (the page's claim)
    assert Sm < 2**WM and (Em == 0 or Sm >= 2 ** (WM - 1))
    st_new = Em << WM | Sm

    if zero:
        n = 0
    else:
        # ---- Stage 3: logarithms and the ratio ----
        def LOGU(f: int) -> int:
            assert 0 <= f < 2**16
            i = f >> (16 - a)
            l = f & (2 ** (16 - a) - 1)
            return LOG[i] + (((LOG[i + 1] - LOG[i]) * l) >> (16 - a))

        assert Em >= Et >= 1 and 2 ** (WM - 1) <= Sm < 2**WM
        Lg = LOGU((S16 - 2**15) << 1)  # log2 of |g|'s significand
        fv = Sm - 2 ** (WM - 1)  # WM - 1 fraction bits of v
        Lv = LOGU(fv >> (WM - 17) if WM >= 17 else fv << (17 - WM))  # log2 of v's significand
        I = _clamp(2 * en - Em + 2 * MB - 1 + s, -64, 64)  # log2(g**2 / v) less the significands' logs
        X = I * 2**F + 2 * Lg - Lv  # ~= 2**F * log2(g**2 / v)
        assert -(2 ** (F + 7)) <= X < 2 ** (F + 7)  # fits F + 8 bits, signed

        # ---- Stage 4: ratio to rung step ----
        Y = X + log_eta - log_bc
        assert -(2 ** (F + 7)) <= Y < 2 ** (F + 7)  # fits F + 8 bits, signed
        q = Y >> (F + 1)
        ph = Y & (2 ** (F + 1) - 1)
        i = ph >> (F + 1 - a)
        l = ph & (2 ** (F + 1 - a) - 1)
        A = ALOG[i] + (((ALOG[i + 1] - ALOG[i]) * l) >> (F + 1 - a))
        assert 2**24 <= A < 2**25
        qc = _clamp(q, -2, 23)
        n = min(((A >> (23 - qc)) + 1) >> 1, SSTAR)  # round half up, then the clamp

    # ---- Stage 5: saturating add ----
    d = n if sw == sg else -n
    k_new = _clamp(k + d, 0, KMAX)
    return k_new, st_new, False, inf


# --------------------------------------------------------------------------------------------------
# the weight decoder
# --------------------------------------------------------------------------------------------------


def naive_sigma_star(sigma_star) -> tuple[int, int]:
    """Host-side rounding of ``sigma_star`` to ``(es, mus)``: ``sigma_star ~= mus * 2**(es - 15)``.

    Parameters
    ----------
    sigma_star : float
        Positive, finite, below 2**127.

    Returns
    -------
    (int, int)
        ``(es, mus)``, ``mus`` in [2**15, 2**16), rounded to nearest (``floor(x + 1/2)``) from the exact
        value of ``sigma_star``.
    """
    assert math.isfinite(sigma_star) and 0 < sigma_star < 2**127, sigma_star
    return _split(sigma_star)


def naive_decode_bf16(fmt, sw: int, k: int, sigma_star) -> int:
    """bfloat16 bit pattern of ``(-1)**sw * sigma_star * exp(-k * eta0)``, as the page's weight decoder.

    Parameters
    ----------
    fmt : lnsim.spec.LNSFormat
    sw : int
        Sign bit.
    k : int
        Code, ``0 .. 2**bits - 1``.
    sigma_star : float
        Ladder top, rounded by :func:`naive_sigma_star`.

    Returns
    -------
    int
        16-bit pattern.

    Notes
    -----
    ``sh = 23 + hi``: ``p`` has ``31 + hi`` bits, so this keeps 8 significant bits, matching the
    ``ex = es + el + hi + 127`` line. (An earlier revision of the page wrote ``24 + hi``, which keeps 7.)
    """
    B = fmt.bits
    assert sw in (0, 1) and 0 <= k <= 2**B - 1
    es, mus = naive_sigma_star(sigma_star)
    LO, HI = _ladder_of(fmt)
    if fmt.base is Base.POW2:
        m = fmt.frac_bits
        j = k & (2**m - 1)
        el, mul = LO[j][0] - (k >> m), LO[j][1]
    else:
        h = (B + 1) // 2  # ceil(B / 2)
        kh, kl = k >> h, k & (2**h - 1)
        p = HI[kh][1] * LO[kl][1]
        assert 2**30 <= p < 2**32
        hi = p >> 31
        mul = (p + 2 ** (14 + hi)) >> (15 + hi)  # round to nearest, 16 bits
        el = HI[kh][0] + LO[kl][0] + hi
        if mul == 2**16:
            mul, el = 2**15, el + 1
    assert 2**15 <= mul < 2**16

    p = mus * mul
    assert 2**30 <= p < 2**32
    hi = p >> 31
    sh = 23 + hi  # keep 8 significant bits
    man = p >> sh
    rem = p & (2**sh - 1)
    half = 2 ** (sh - 1)
    assert 2**7 <= man < 2**8
    man += 1 if rem > half or (rem == half and man & 1) else 0  # round to nearest even
    ex = es + el + hi + 127 + (1 if man == 2**8 else 0)
    man = 2**7 if man == 2**8 else man
    assert ex <= 254
    bits = sw << 15 | ex << 7 | (man - 2**7) if ex >= 1 else sw << 15  # flush to +-0 below the normal range
    return bits
