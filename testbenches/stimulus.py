"""Stimulus for the update-unit bench (:mod:`lnsim_testbenches.update_unit_tb`): groups of update vectors.

:class:`Stimulus` makes, from one ``numpy.random.Generator``:

* ``random_steps``: one group per step over a population of elements that evolves step after step (each
  step's ``log_eta`` and ``log_bc`` from :mod:`lnsim.tables`, the code and state fed back from the model's
  outputs), gradients with drifting log-uniform scales and jumps, raw random bit patterns and special
  values; populations start from empty state (first step) or from random valid states.
* ``corners``: every special gradient class (both zeros, each subnormal normalisation shift, smallest and
  largest normal, Inf, NaN payloads, both signs) against fresh, decayed, smallest, largest and
  ratio-matched states, k at 0 and at 2**B - 1, under four sets of step scalars.
* ``exhaustive``: all 2**16 gradient bit patterns (16-bit gradient formats) for four states.
* ``group``: a group from given rows (the bench's replay of listed vectors).

A group is a tuple ``(sw, k, g, st, log_eta, log_bc)``: four equal-length NumPy arrays, one element per
vector (``sw`` the weight's sign bit in uint8, ``k`` the code in ``spec.fmt.code_dtype``, ``g`` the
gradient bit pattern in :func:`lnsim.golden.grad_dtype`, ``st`` the state word in uint32, exponent above
``state_man_bits`` mantissa bits), then the step's two scalars as ints. ``random_steps`` and ``corners``
make groups whose length is a multiple of ``lanes``; ``exhaustive`` groups have 2**16 vectors; ``group``
keeps the rows it is given. ``random_steps`` appends a seventh item, the model's outputs ``(k_new, st_new,
nan, inf)`` for the group (it computes them to feed the state back), so the bench need not compute them
again. For the same spec, ``lanes`` and generator seed the vectors are the same.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from lnsim import tables
from lnsim.golden import grad_dtype, update_trace
from lnsim.spec import Spec


class StepModel(Protocol):
    """What :meth:`Stimulus.random_steps` needs of the golden model (the bench's ``GoldenModel``)."""

    def update(self, sw, k, g, st, log_eta: int, log_bc: int) -> tuple:
        """``(k_new, st_new, nan, inf)`` for one step."""
        ...


class Stimulus:
    """Vector groups (arrays ``sw, k, g, st`` plus one ``(log_eta, log_bc)``) for the tests."""

    def __init__(self, spec: Spec, lanes: int, rng: np.random.Generator, model: StepModel):
        self.spec, self.lanes, self.rng, self.model = spec, lanes, rng, model
        f, c, g = spec.fmt, spec.cfg, spec.cfg.grad_format
        self.KMAX, self.WM, self.EMAX = f.code_max, c.state_man_bits, spec.state_exp_max
        self.W, self.EB, self.MB, self.BIAS, self.EMAXF = g.width, g.exp_bits, g.man_bits, g.bias, g.exp_field_max
        self.gdtype = grad_dtype(spec)
        self.kdtype = np.dtype(f.code_dtype)

    # -- helpers -----------------------------------------------------------------------------------------
    def gbits(self, sign, e, m) -> int:
        return (sign << (self.W - 1)) | (e << self.MB) | m

    def to_bits(self, x: np.ndarray) -> np.ndarray:
        """Float64 values as gradient bit patterns (bfloat16 by truncation of float32)."""
        name = self.spec.cfg.grad_format.value
        with np.errstate(over="ignore", invalid="ignore"):
            if name == "bfloat16":
                return (x.astype(np.float32).view(np.uint32) >> 16).astype(np.uint16)
            if name == "float16":
                return x.astype(np.float16).view(np.uint16)
            return x.astype(np.float32).view(np.uint32)

    def specials(self) -> list:
        """Every special class of gradient, both signs: zeros, each subnormal shift, extremes, Inf, NaNs."""
        MB, EMAXF, BIAS = self.MB, self.EMAXF, self.BIAS
        out = []
        for s in (0, 1):
            b = lambda e, m: self.gbits(s, e, m)  # noqa: E731
            out += [b(0, 0), b(0, 2**MB - 1), b(1, 0), b(1, 2**MB - 1), b(BIAS, 0), b(BIAS, 1),
                    b(EMAXF - 1, 0), b(EMAXF - 1, 2**MB - 1), b(EMAXF, 0), b(EMAXF, 1), b(EMAXF, 2 ** (MB - 1)),
                    b(EMAXF, 2**MB - 1), b(EMAXF, 2 ** (MB - 1) + 1)]
            out += [b(0, 1 << p) for p in range(MB)]            # each leading-one position of a subnormal
            out += [b(0, (2 << p) - 1) for p in range(1, MB)]   # ... with all lower bits set
        return out

    def random_states(self, n: int, near_E=None) -> np.ndarray:
        """Valid state words: ``E >= 1`` with a normalised mantissa, or ``E = 0`` with any mantissa."""
        rng, WM, EMAX = self.rng, self.WM, self.EMAX
        if near_E is None:
            E = rng.integers(0, EMAX + 1, n)
        else:
            E = np.clip(near_E + rng.integers(-24, 25, n), 0, EMAX)
        M = rng.integers(2 ** (WM - 1), 2**WM, n)
        low = E == 0
        M[low] = rng.integers(0, 2**WM, int(low.sum()))
        return ((E.astype(np.uint64) << np.uint64(WM)) | M.astype(np.uint64)).astype(np.uint32)

    def term_exponent(self, log2_mag: np.ndarray) -> np.ndarray:
        """Roughly the state exponent the EMA term of a gradient of magnitude 2**log2_mag has."""
        en = np.floor(log2_mag) + self.BIAS
        return np.clip(2 * en + 2 * self.MB - 1, 0, self.EMAX).astype(np.int64)

    def scalars(self, t: int, eta_rungs: int | None = None) -> tuple:
        return tables.log_eta_term(self.spec, eta_rungs), tables.bias_correction_term(self.spec, t)

    # -- random steps ------------------------------------------------------------------------------------
    def random_steps(self, total: int, population: int = 2048):
        """Groups of one step each over an evolving population, ``total`` vectors in all."""
        rng, spec = self.rng, self.spec
        P = max(self.lanes, population // self.lanes * self.lanes)
        lo = 1 - self.BIAS - self.MB - 2
        hi = self.EMAXF - 1 - self.BIAS + 1
        specials = np.array(self.specials(), dtype=np.uint64)
        made = 0
        fresh = True
        while made < total:
            # A new population: fresh (first step, empty state; always the first) or with random valid states.
            sw = rng.integers(0, 2, P).astype(np.uint8)
            k = rng.integers(0, self.KMAX + 1, P)
            ends = rng.random(P)
            k[ends < 0.05] = 0
            k[ends > 0.95] = self.KMAX
            k = k.astype(self.kdtype)
            log2_scale = rng.uniform(lo, hi, P)
            if fresh:
                st, t = np.zeros(P, np.uint32), 1
            else:
                st, t = self.random_states(P, self.term_exponent(log2_scale)), int(rng.integers(1, 4000))
            fresh = rng.random() < 0.5
            for _ in range(int(rng.integers(4, 33))):
                if made >= total:
                    return
                n = min(P, -(-(total - made) // self.lanes) * self.lanes)
                # Drift the scales; a few elements jump (the largest and smallest ratios).
                log2_scale += rng.normal(0.0, 0.3, P)
                jump = rng.random(P) < 0.02
                log2_scale[jump] += rng.choice([-1.0, 1.0], int(jump.sum())) * rng.uniform(4, 40, int(jump.sum()))
                log2_scale = np.clip(log2_scale, lo, hi)
                g = self.to_bits(rng.standard_normal(P) * np.exp2(log2_scale))
                raw = rng.random(P) < 0.08
                g[raw] = rng.integers(0, 2**self.W, int(raw.sum()), dtype=np.uint64).astype(self.gdtype)
                spc = rng.random(P) < 0.01
                g[spc] = specials[rng.integers(0, len(specials), int(spc.sum()))].astype(self.gdtype)
                eta_rungs = None if rng.random() < 0.8 else int(rng.integers(1, spec.eta_star_rungs + 1))
                log_eta, log_bc = self.scalars(t, eta_rungs)
                expected = self.model.update(sw, k, g, st, log_eta, log_bc)
                yield (sw[:n], k[:n], g[:n], st[:n], log_eta, log_bc, tuple(x[:n] for x in expected))
                made += n
                # Feed back the new code and state (the golden model's, which the checker holds the RTL to).
                k, st = expected[0], expected[1]
                t += 1

    # -- directed corners --------------------------------------------------------------------------------
    def corners(self) -> list:
        """Groups covering the corner cases (see the module docstring)."""
        spec, WM, EMAX, KMAX = self.spec, self.WM, self.EMAX, self.KMAX
        grads = self.specials()
        generic = [0, 1, 2**WM - 1, 2 ** (self.spec.cfg.beta_shift - 1) - 1, (1 << WM) | 2 ** (WM - 1),
                   (1 << WM) | (2**WM - 1), (EMAX << WM) | (2**WM - 1), ((EMAX - 1) << WM) | 2 ** (WM - 1)]
        codes = [(sw, k) for sw in (0, 1) for k in (0, 1, KMAX // 2, KMAX - 1, KMAX)]
        SSTAR = spec.eta_star_rungs
        scalar_sets = [self.scalars(1, 1), self.scalars(1, SSTAR), self.scalars(10**6, SSTAR), self.scalars(7)]
        rows = []
        for g in grads:
            # States around this gradient's own term: ratio from the largest (E far below) to the smallest.
            Et = update_trace(spec, 0, 0, g, 0, log_eta=0, log_bc=0)["Em"]
            matched = [(int(np.clip(Et + d, 0, EMAX)) << WM) | (2 ** (WM - 1) if Et + d > 0 else 2**WM - 1)
                       for d in (-40, -2, -1, 0, 1, 3, 40)]
            for st in generic + matched:
                for sw, k in codes:
                    rows.append((sw, k, g, st))
        rows = np.array(rows, dtype=np.uint64)
        groups = []
        for log_eta, log_bc in scalar_sets:
            n = len(rows) // self.lanes * self.lanes
            groups.append(self.group(rows[:n], log_eta, log_bc))
        return groups

    def group(self, rows, log_eta, log_bc):
        """A group from ``rows`` (an ``(n, 4)`` uint64 array of ``sw, k, g, st``) and the step's scalars."""
        return (rows[:, 0].astype(np.uint8), rows[:, 1].astype(self.kdtype), rows[:, 2].astype(self.gdtype),
                rows[:, 3].astype(np.uint32), log_eta, log_bc)

    # -- exhaustive gradients ----------------------------------------------------------------------------
    def exhaustive(self) -> list:
        """All 2**16 gradient bit patterns for four states (empty, typical, smallest normalised, large)."""
        rng, WM = self.rng, self.WM
        g = np.arange(2**16, dtype=np.uint64)
        one = self.gbits(0, self.BIAS, 0)
        E1 = update_trace(self.spec, 0, 0, one, 0, log_eta=0, log_bc=0)["Em"]
        states = [(0, self.scalars(1)),
                  ((E1 << WM) | (3 << (WM - 2)), self.scalars(100)),
                  ((1 << WM) | 2 ** (WM - 1), self.scalars(5000)),
                  ((min(self.EMAX, 2 * E1) << WM) | (2**WM - 1), self.scalars(2))]
        groups = []
        for st, (log_eta, log_bc) in states:
            sw = rng.integers(0, 2, g.size).astype(np.uint64)
            k = rng.integers(0, self.KMAX + 1, g.size).astype(np.uint64)
            rows = np.stack([sw, k, g, np.full(g.size, st, np.uint64)], axis=1)
            groups.append(self.group(rows, log_eta, log_bc))
        return groups
