"""Fidelity of the golden integer datapath to float64 Madam on the same quantised gradients.

The rung step of every update is compared with ``round((eta/eta0) * clamp(g / gbar, eta_star/eta))``
computed in float64 from the same gradient bit patterns, with a float64 EMA and bias correction. Every
valid spec keeps its estimated worst error (:attr:`lnsim.Spec.precision_budget`) at most half a rung.

It also counts stalls: element-steps with a non-zero finite gradient whose integer second-moment word did not
change (the EMA's update rounded back to the stored word), read from the golden model's state.
"""

from __future__ import annotations

import numpy as np

from lnsim import tables
from lnsim.codecs import bits_to_grad, grad_to_bits
from lnsim.golden.datapath import update_inplace
from lnsim.spec import Spec, SpecError

__all__ = ["drifting_gradients", "measure", "measure_gradients"]


def drifting_gradients(n: int, steps: int, seed: int, *, lo: float = 1e-6, hi: float = 10.0, drift: float = 0.1):
    """Yield ``steps`` float32 gradient arrays of ``n`` elements whose per-element scales are log-uniform
    over ``lo..hi`` and drift as a geometric random walk (``drift`` in nepers per step)."""
    rng = np.random.default_rng(seed)
    log_scale = rng.uniform(np.log(lo), np.log(hi), n)
    for _ in range(steps):
        yield (np.exp(log_scale) * rng.standard_normal(n)).astype(np.float32)
        log_scale += drift * rng.standard_normal(n)


def measure(spec: Spec, *, n: int = 1_000_000, steps: int = 30, seed: int = 0) -> dict:
    """Run golden and float64 Madam side by side on :func:`drifting_gradients` and compare every rung step.

    The same as :func:`measure_gradients` on ``drifting_gradients(n, steps, seed)``.

    Returns
    -------
    dict with ``updates`` (compared), ``exact`` (share equal), ``max_error`` (largest |difference| in
    rungs), ``off_by_one`` (count), ``clamped`` (share of reference steps at the clamp), ``stalled`` and
    ``stall_rate`` (see :func:`measure_gradients`) and ``table_bits``.
    """
    return measure_gradients(spec, drifting_gradients(n, steps, seed))


def measure_gradients(spec: Spec, gradients) -> dict:
    """Run golden and float64 Madam side by side on ``gradients`` and compare every rung step.

    ``gradients`` yields one array of gradients per step (at least one step), all of the same number of
    elements (at least one); each is quantised to the spec's gradient format, as the datapath sees it. Every
    step starts each code at the middle of the ladder, so no step saturates; the state words carry over.

    Returns
    -------
    dict with the spec's description and datapath widths, ``updates`` (elements x steps compared),
    ``exact`` (share of golden steps equal to float64 Madam's), ``off_by_one`` (count), ``max_error``
    (largest |difference| in rungs), ``clamped`` (share of reference steps at the clamp), ``nonzero``
    (element-steps with a non-zero finite quantised gradient), ``stalled`` (those of them whose golden state
    word came out of the step unchanged), ``stall_rate`` (``stalled / nonzero``, 0.0 when ``nonzero`` is 0)
    and ``table_bits`` (the update tables' ROM bits).
    """
    half = spec.fmt.half_ladder
    if spec.eta_star_rungs > half:
        raise SpecError(
            f"eta_star must be at most half the ladder ({half} rungs) to measure fidelity, not {spec.eta_star_rungs} rungs"
        )
    beta = spec.cfg.beta
    r, sstar = spec.eta_rungs, spec.eta_star_rungs
    log_eta = tables.log_eta_term(spec)
    n = None
    updates = exact = off_by_one = clamped = nonzero = stalled = 0
    max_error = 0
    for t, g_in in enumerate(gradients, start=1):
        bits = grad_to_bits(np.asarray(g_in).reshape(-1), spec.cfg.grad_format)
        if n is None:
            n = bits.size
            if n == 0:
                raise SpecError("gradients must have at least one element per step, not 0")
            sign = np.zeros(n, np.uint8)
            k = np.empty(n, spec.fmt.code_dtype)
            state = np.zeros(n, np.uint32)
            v = np.zeros(n)
        elif bits.size != n:
            raise SpecError(f"gradients must have {n} elements at every step (as the first), not {bits.size} at step {t}")
        g = bits_to_grad(bits, spec.cfg.grad_format).astype(np.float64)
        k.fill(half)
        before = state.copy()
        update_inplace(spec, sign, k, bits, state, log_eta=log_eta, log_bc=tables.bias_correction_term(spec, t))
        # Stall: a non-zero finite gradient whose integer state word the EMA left unchanged.
        moving = np.isfinite(g) & (g != 0)
        nonzero += int(moving.sum())
        stalled += int((moving & (state == before)).sum())
        golden = k.astype(np.int64) - half
        v = beta * v + (1.0 - beta) * g * g
        vhat = v / (1.0 - beta**t) if spec.cfg.bias_correction else v
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.nan_to_num(g / np.sqrt(vhat), nan=0.0)
        ref = np.rint(np.clip(r * ratio, -sstar, sstar)).astype(np.int64)
        err = np.abs(golden - ref)
        updates += n
        exact += int((err == 0).sum())
        off_by_one += int((err == 1).sum())
        clamped += int((np.abs(ref) == sstar).sum())
        max_error = max(max_error, int(err.max()))
    if n is None:
        raise SpecError("gradients must have at least one step, not 0")
    return {
        "spec": spec.fmt.describe(),
        "grad_format": spec.cfg.grad_format.value,
        "log_frac_bits": spec.cfg.log_frac_bits,
        "table_index_bits": spec.cfg.table_index_bits,
        "state_bits": spec.cfg.state_bits,
        "updates": updates,
        "exact": exact / updates,
        "off_by_one": off_by_one,
        "max_error": max_error,
        "clamped": clamped / updates,
        "nonzero": nonzero,
        "stalled": stalled,
        "stall_rate": stalled / nonzero if nonzero else 0.0,
        "table_bits": tables.table_bits(spec)["update_total"],
    }
