"""Functional coverage of a verify run (host side, no cocotb): named bins over the datapath's corner classes.

The bins are counted from the golden model's stage values of the vectors actually run
(:func:`lnsim.golden.update_trace_arrays`, the same trace the mismatch localisation compares), in NumPy over
whole groups. :func:`bin_names` lists them; docs/reliability.md ("Functional coverage") says what each means.

* gradient class (stage 1): ``grad_zero``, ``grad_subnormal`` (``en < 1``), ``grad_normal``, ``grad_inf``, ``grad_nan``;
* the clamp at ``SSTAR`` (stage 4), for a finite non-zero gradient: ``clamp_hit`` (``n == SSTAR``), ``clamp_miss``;
* saturation of the code (stage 5): ``k_in_0``, ``k_in_kmax`` (the input at an end), ``k_reaches_0``,
  ``k_reaches_kmax`` (a non-NaN update from inside onto an end);
* ``log_segment_<i>``: the log table segment ``i`` (``LOG[i]..LOG[i+1]``) either log unit of stage 3
  interpolates in; ``antilog_segment_<i>``: the antilog table segment stage 4 interpolates in;
* input state: ``state_fresh`` (the word 0), ``state_bottom`` (non-zero with ``E <= 1``, the bottom of the
  exponent range: decayed, or the smallest gradient's term), ``state_warm`` (between), ``state_top`` (``E`` at
  or above the exponent of the largest finite gradient's term);
* the step's bias correction: ``bias_correction_none`` (``log_bc == 0``: off, or converged), ``bias_correction_early``
  (``log_bc >= 2**F``: ``vhat >= 2 v``), ``bias_correction_late`` (``0 < log_bc < 2**F``); the last two are not
  applicable (None) for a spec without bias correction;
* back-pressure, per cycle of the stream (the cocotb bench only: the batch engine's C++ harness does its stalls
  out of sight, so there they are None, not applicable): ``bp_input_gap`` (no input offered, output ready),
  ``bp_input_blocked`` (input offered, ``i.ready`` low), ``bp_output_stall`` (output valid, not ready),
  ``bp_both_stalled`` (no input offered and output not ready), ``bp_back_to_back`` (inputs accepted on two
  cycles in a row).
"""

from __future__ import annotations

import numpy as np

from lnsim.golden import update_trace, update_trace_arrays
from lnsim.golden.element import antilog_segment, log_segment
from lnsim.spec import Spec

__all__ = ["BACKPRESSURE_BINS", "FunctionalCoverage", "bin_names", "classify", "merge", "never_hit"]

#: The back-pressure bins (counted only by the cocotb bench, per cycle).
BACKPRESSURE_BINS = ("bp_input_gap", "bp_input_blocked", "bp_output_stall", "bp_both_stalled", "bp_back_to_back")
_BIAS_BINS = ("bias_correction_none", "bias_correction_early", "bias_correction_late")


def _segments(spec: Spec) -> int:
    return 2**spec.cfg.table_index_bits


def bin_names(spec: Spec) -> tuple:
    """Every bin name for ``spec``, in report order."""
    n = _segments(spec)
    return (("grad_zero", "grad_subnormal", "grad_normal", "grad_inf", "grad_nan", "clamp_hit", "clamp_miss",
             "k_in_0", "k_in_kmax", "k_reaches_0", "k_reaches_kmax")
            + tuple(f"log_segment_{i}" for i in range(n)) + tuple(f"antilog_segment_{i}" for i in range(n))
            + ("state_fresh", "state_bottom", "state_warm", "state_top") + _BIAS_BINS + BACKPRESSURE_BINS)


def _top_exponent(spec: Spec) -> int:
    """The state exponent of the largest finite gradient's EMA term (the golden model's ``Em`` from a fresh state)."""
    g = spec.cfg.grad_format
    largest = ((g.exp_field_max - 1) << g.man_bits) | (2**g.man_bits - 1)
    return update_trace(spec, 0, 0, largest, 0, log_eta=0, log_bc=0)["Em"]


def _per_element(spec: Spec, sw, k, g, st, log_eta, log_bc, top: int) -> dict:
    """``(bins, trace, active)``: bin name -> bool array for the element bins (not the segments), the golden
    trace of the group, and which elements ran stages 3-4 (not NaN, not zero)."""
    t = update_trace_arrays(spec, sw, k, g, st, log_eta=log_eta, log_bc=log_bc)
    nan, inf, zero = t["nan"] != 0, t["inf"] != 0, t["zero"] != 0
    finite = ~nan & ~inf & ~zero
    active = ~nan & ~zero
    k, k_new = np.asarray(k, np.int64), t["k_new"]
    kmax, sstar = spec.fmt.code_max, spec.eta_star_rungs
    E = np.asarray(st, np.int64) >> spec.cfg.state_man_bits
    st = np.asarray(st, np.int64)
    bc = np.broadcast_to(np.asarray(log_bc, np.int64), k.shape)
    one = 1 << spec.cfg.log_frac_bits
    bins = {
        "grad_zero": zero, "grad_subnormal": finite & (t["en"] < 1), "grad_normal": finite & (t["en"] >= 1),
        "grad_inf": inf, "grad_nan": nan,
        "clamp_hit": active & (t["n"] == sstar), "clamp_miss": active & (t["n"] < sstar),
        "k_in_0": k == 0, "k_in_kmax": k == kmax,
        "k_reaches_0": ~nan & (k_new == 0) & (k > 0), "k_reaches_kmax": ~nan & (k_new == kmax) & (k < kmax),
        "state_fresh": st == 0, "state_bottom": (st != 0) & (E <= 1), "state_warm": (E > 1) & (E < top),
        "state_top": E >= top,
    }
    if spec.cfg.bias_correction:
        bins.update(bias_correction_none=bc == 0, bias_correction_early=bc >= one,
                    bias_correction_late=(bc > 0) & (bc < one))
    else:
        bins.update(bias_correction_none=bc == 0)
    return bins, t, active


def classify(spec: Spec, sw, k, g, st, log_eta, log_bc, *, top: int | None = None) -> dict:
    """Bin name -> hits for one group of vectors (the element bins and the table segments; not back-pressure).

    ``sw, k, g, st``: the inputs as arrays (any integer dtype); ``log_eta``, ``log_bc``: per-element arrays or ints.
    A bin not applicable to ``spec`` is absent.
    """
    if top is None:
        top = _top_exponent(spec)
    bins, t, active = _per_element(spec, sw, k, g, st, log_eta, log_bc, top)
    counts = {name: int(np.count_nonzero(hit)) for name, hit in bins.items()}
    n, a, F = _segments(spec), spec.cfg.table_index_bits, spec.cfg.log_frac_bits
    # Both log units (|g|'s significand and v's) run for every non-zero, non-NaN gradient; the antilog unit too.
    logs = np.concatenate([log_segment(t["fg"][active], a), log_segment(t["fv16"][active], a)])
    alogs = antilog_segment(t["ph"][active], a, F)
    for prefix, idx in (("log_segment_", logs), ("antilog_segment_", alogs)):
        hist = np.bincount(idx[(idx >= 0) & (idx < n)], minlength=n)
        counts.update({f"{prefix}{i}": int(h) for i, h in enumerate(hist)})
    return counts


class FunctionalCoverage:
    """Running counts of the bins of :func:`bin_names` over a test; ``counts`` maps each to hits or None (not
    applicable: the back-pressure bins unless ``backpressure``, the bias-correction regimes without it)."""

    def __init__(self, spec: Spec, *, backpressure: bool):
        self.spec = spec
        self._top = _top_exponent(spec)
        self.counts = dict.fromkeys(bin_names(spec), None)
        for name in classify(spec, [0], [0], [0], [0], 0, 0, top=self._top):
            self.counts[name] = 0
        if backpressure:
            self.counts.update(dict.fromkeys(BACKPRESSURE_BINS, 0))
        self._accepted_before = False

    def add(self, sw, k, g, st, log_eta, log_bc) -> None:
        """Count one group of vectors (inputs as arrays, the step scalars per element or as ints)."""
        if len(k):
            for name, hits in classify(self.spec, sw, k, g, st, log_eta, log_bc, top=self._top).items():
                self.counts[name] += hits

    def cycle(self, in_valid: bool, in_ready: bool, out_valid: bool, out_ready: bool) -> None:
        """Count one cycle of the stream from the unit's handshake signals (back-pressure bins)."""
        c = self.counts
        accepted = in_valid and in_ready
        c["bp_input_gap"] += int(not in_valid and out_ready)
        c["bp_input_blocked"] += int(in_valid and not in_ready)
        c["bp_output_stall"] += int(out_valid and not out_ready)
        c["bp_both_stalled"] += int(not in_valid and not out_ready)
        c["bp_back_to_back"] += int(accepted and self._accepted_before)
        self._accepted_before = accepted


def merge(counts) -> dict:
    """Per-bin sums of several tests' ``counts`` (None where no test counted the bin)."""
    out: dict = {}
    for c in counts:
        for name, hits in c.items():
            prev = out.get(name)
            out[name] = hits if prev is None else (prev if hits is None else prev + hits)
    return out


def never_hit(counts: dict) -> list:
    """The applicable bins of ``counts`` with no hit, in order."""
    return [name for name, hits in counts.items() if hits == 0]
