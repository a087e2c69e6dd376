"""What both update-unit engines expect, without cocotb (host and simulator side): the golden model over a group
of vectors (:class:`GoldenModel`), the coverage bins counted from it (:class:`Coverage`), the stall profiles,
and the decoded values of a mismatch report (:func:`decoded`).

The cocotb bench (:mod:`lnsim_testbenches.update_unit_tb`) and the batch engine (:mod:`lnsim_testbenches.batch`)
both import them, so the two check the same thing and report it alike.
"""

from __future__ import annotations

import math
import time

import numpy as np

from lnsim.golden import grad_dtype, update_inplace
from lnsim.spec import Spec

__all__ = ["STALL_PROFILES", "GoldenModel", "Coverage", "decoded"]

#: Stall profiles: per segment of a run, the probability of valid (driver) / ready (monitor) in a cycle.
STALL_PROFILES = {"none": (1.0,), "random": (1.0, 1.0, 0.95, 0.7, 0.3)}


class GoldenModel:
    """The golden model over one group of vectors sharing the step's scalars (in bulk, on copies)."""

    def __init__(self, spec: Spec):
        self.spec = spec
        g = spec.cfg.grad_format
        self._mb, self._emaxf = g.man_bits, g.exp_field_max
        #: Time spent in the golden model (after a first call that loads its compiled kernel).
        self.seconds = 0.0
        one = np.zeros(1, np.uint8)
        self.update(one, np.zeros(1, spec.fmt.code_dtype), np.zeros(1, grad_dtype(spec)), np.zeros(1, np.uint32), 0, 0)
        self.seconds = 0.0

    def flags(self, g):
        """Stage 1's NaN and Inf flags (docs/datapath.md): exponent field all ones, mantissa non-zero / zero."""
        g = g.astype(np.uint64)
        e = (g >> np.uint64(self._mb)) & np.uint64(self._emaxf)
        m = g & np.uint64(2**self._mb - 1)
        top = e == self._emaxf
        return top & (m != 0), top & (m == 0)

    def update(self, sw, k, g, st, log_eta: int, log_bc: int):
        """``(k_new, st_new, nan, inf)`` for one step."""
        t0 = time.perf_counter()
        k_new, st_new = k.copy(), st.copy()
        n_nan, n_inf = update_inplace(self.spec, sw, k_new, g, st_new, log_eta=log_eta, log_bc=log_bc,
                                      parallel=False)
        self.seconds += time.perf_counter() - t0
        nan, inf = self.flags(g)
        if int(nan.sum()) != n_nan or int(inf.sum()) != n_inf:
            raise AssertionError(f"flag classification disagrees with the golden model's counts "
                                 f"({int(nan.sum())}/{n_nan} NaN, {int(inf.sum())}/{n_inf} Inf)")
        return k_new, st_new, nan, inf


class Coverage:
    """Counts of the cases a test reached, from the vectors and the golden model's outputs."""

    BINS = ("nan", "inf", "zero_grad", "subnormal", "fresh_state", "k_in_0", "k_in_kmax", "reaches_0",
            "reaches_kmax", "step_sstar", "step_0", "step_between")

    def __init__(self, spec: Spec):
        g = spec.cfg.grad_format
        self._mb, self._emaxf = g.man_bits, g.exp_field_max
        self._kmax, self._sstar = spec.fmt.code_max, spec.eta_star_rungs
        self.counts = dict.fromkeys(self.BINS, 0)

    def add(self, k, g, st, k_new, nan, inf) -> None:
        """Count one group: inputs ``k``, ``g``, ``st``, the golden ``k_new`` and flags (bool or 0/1 arrays)."""
        g = g.astype(np.int64)
        e, m = (g >> self._mb) & self._emaxf, g & (2**self._mb - 1)
        k, k_new = k.astype(np.int64), k_new.astype(np.int64)
        nan, inf = nan.astype(bool), inf.astype(bool)
        step = np.abs(k_new - k)  # a step of SSTAR is n = SSTAR (the clamp only shortens steps)
        c = self.counts
        for name, hits in (("nan", nan), ("inf", inf), ("zero_grad", (e == 0) & (m == 0)),
                           ("subnormal", (e == 0) & (m != 0)), ("fresh_state", st == 0), ("k_in_0", k == 0),
                           ("k_in_kmax", k == self._kmax), ("reaches_0", ~nan & (k_new == 0) & (k > 0)),
                           ("reaches_kmax", ~nan & (k_new == self._kmax) & (k < self._kmax)),
                           ("step_sstar", ~nan & (step == self._sstar)), ("step_0", ~nan & (step == 0)),
                           ("step_between", ~nan & (step > 0) & (step < self._sstar))):
            c[name] += int(np.count_nonzero(hits))


def _grad_value(spec: Spec, bits: int) -> float:
    name = spec.cfg.grad_format.value
    if name == "bfloat16":
        return float(np.array([bits << 16], np.uint32).view(np.float32)[0])
    if name == "float16":
        return float(np.array([bits], np.uint16).view(np.float16)[0])
    return float(np.array([bits], np.uint32).view(np.float32)[0])


def _state(spec: Spec, st: int) -> str:
    wm = spec.cfg.state_man_bits
    e, m = st >> wm, st & (2**wm - 1)
    return f"E={e} M={m:#x} v={math.ldexp(m, e - spec.state_exp_offset):.6g}"


def decoded(spec: Spec, x: dict, rtl: dict, gold: dict) -> dict:
    """The ``decoded`` part of a mismatch report: the gradient's value, the input, RTL and golden states as
    ``E=.. M=.. v=..``, and both k steps; ``x`` the lane's inputs, ``rtl`` and ``gold`` its output fields."""
    return {
        "g": _grad_value(spec, x["g"]),
        "st_in": _state(spec, x["st"]),
        "st_rtl": _state(spec, rtl["st"]),
        "st_golden": _state(spec, gold["st"]),
        "k_step_rtl": rtl["k"] - x["k"],
        "k_step_golden": gold["k"] - x["k"],
    }
