"""Specs that are legal but degenerate: one-line warnings for a spec that runs, but not as a user means it.

:func:`spec_warnings` names, in this order:

* a ladder of fewer than :data:`MIN_LADDER_RUNGS` rungs (``bits`` below 4): every weight is one of a handful of
  magnitudes;
* a dynamic range ``exp((2**bits - 1) * eta0)`` below :data:`MIN_DYNAMIC_RANGE`: the weights of a tensor cannot
  differ in magnitude by more than that factor (``lnsim info --eta0 1e-9``: 1.000004);
* eta of the whole ladder (the default eta, 0.01, capped at the ladder when eta0 is tiny): a step at
  |g/gbar| = 1 moves a weight from one end of the ladder to the other;
* otherwise eta_star of the whole ladder (8 x eta capped at it, as for every default at 4 bits): the clamp lets
  one step cross the whole ladder.

The command line prints each as ``lnsim: warning: <message>`` on stderr and goes on.
"""

from __future__ import annotations

from lnsim.spec.core import Spec
from lnsim.spec.madam import DEFAULT_ETA, DEFAULT_STAR_FACTOR

__all__ = ["MIN_DYNAMIC_RANGE", "MIN_LADDER_RUNGS", "spec_warnings"]

#: Smallest dynamic range that draws no warning. In the MLP sweep of docs/explore.md (digits, 100 epochs) B-bit
#: Madam comes within a third of a point of FP32 Madam once the range is about 8, loses 1.4 points at 2.8 and 23
#: points at 1.29; the defaults (B = 12, eta0 = 0.001) have 60.
MIN_DYNAMIC_RANGE = 8.0

#: Fewest rungs (2**bits) that draw no warning: 4 bits.
MIN_LADDER_RUNGS = 16


def spec_warnings(spec: Spec) -> list[str]:
    """One-line warnings (no trailing period) for a legal but degenerate ``spec``, in the order of the module's
    list; an empty list for a sound one such as the defaults."""
    fmt = spec.fmt
    rungs, out = fmt.code_max + 1, []
    if rungs < MIN_LADDER_RUNGS:
        out.append(f"bits={fmt.bits} gives a ladder of only {rungs} rungs: every weight is one of {rungs} magnitudes "
                   f"(fewer than {MIN_LADDER_RUNGS} rungs)")
    if fmt.dynamic_range < MIN_DYNAMIC_RANGE:
        out.append(f"dynamic range {fmt.dynamic_range:.7g} ({fmt.describe()}) is below {MIN_DYNAMIC_RANGE:g}: a "
                   f"tensor's weights can differ in magnitude by at most that factor, and training loses accuracy "
                   f"(docs/explore.md); use a coarser eta0 or more bits")
    if spec.eta_rungs >= fmt.code_max:
        nominal = round(DEFAULT_ETA / fmt.eta0)
        default = (f"; the default eta {DEFAULT_ETA:g} would be {nominal:,} rungs of eta0={fmt.eta0:.6g}"
                   if nominal > spec.eta_rungs else "")
        out.append(f"eta is the whole ladder, {spec.eta_rungs} rungs ({spec.cfg.eta:.6g} nepers): one step at "
                   f"|g/gbar| = 1 moves a weight from one end to the other{default}")
    elif spec.eta_star_rungs >= fmt.code_max:
        wanted = DEFAULT_STAR_FACTOR * spec.eta_rungs
        capped = f", not {DEFAULT_STAR_FACTOR} x eta = {wanted} rungs" if wanted > spec.eta_star_rungs else ""
        out.append(f"eta_star is the whole ladder, {spec.eta_star_rungs} rungs{capped} (clamp |g/gbar| at "
                   f"{spec.clamp_ratio:g}): one step can move a weight from one end to the other")
    return out
