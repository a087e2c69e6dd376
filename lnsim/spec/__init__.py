"""The one validated specification of an LNS weight format and a B-bit Madam update datapath.

Three frozen dataclasses hold everything a hardware architect varies:

* :class:`LNSFormat` -- the weight ladder ``w = sign * sigma_star * exp(-k * eta0)``, ``k in 0 .. 2**bits - 1``;
* :class:`MadamConfig` -- the optimiser (eta, eta_star, beta, bias correction, gradient format, state width,
  table precision);
* :class:`Spec` -- the two together, checked against each other, with every derived width and constant of
  the integer datapath described in ``docs/datapath.md``; :meth:`Spec.from_options` builds one from user
  options with every default and derivation rule.

Each field carries its :class:`~lnsim.spec.schema.Option` (range, default, unit, help): :data:`SPEC_OPTIONS`
is the list the command line, the sweep's grid axes and the docs' option table are made from.

:attr:`Spec.bits_per_weight` (:class:`BitsPerWeight`) counts what each weight stores: code, sign and state.

:func:`spec_warnings` names what is legal but degenerate (a tiny dynamic range, a step of the whole ladder).

Every invalid value raises :class:`SpecError` (a :class:`ValueError`) whose one-line message names the
parameter, the value and what is allowed.
"""

from lnsim.spec.core import (DEPTH, DYNAMIC_RANGE, FIELD_NAMES, LANES, MAX_DEPTH, MAX_LANES, SPEC_OPTIONS, Spec, check_depth,
                             engine_depth, eta0_for_range, whole_rungs)
from lnsim.spec.formats import DEFAULT_ETA0, LN2, MAX_LADDER_DEPTH, RUNG_TOLERANCE, Base, GradFormat, LNSFormat
from lnsim.spec.madam import DEFAULT_ETA, DEFAULT_STAR_FACTOR, MAX_STEP_RUNGS, ONE_RUNG_BUDGET, MadamConfig
from lnsim.spec.schema import Option, options_table
from lnsim.spec.storage import BitsPerWeight, bits_per_weight
from lnsim.spec.warnings import MIN_DYNAMIC_RANGE, MIN_LADDER_RUNGS, spec_warnings
from lnsim.validation import SpecError

__all__ = ["SpecError", "Base", "GradFormat", "LNSFormat", "MadamConfig", "Spec", "Option", "SPEC_OPTIONS", "FIELD_NAMES",
           "BitsPerWeight", "bits_per_weight",
           "DYNAMIC_RANGE", "LANES", "MAX_LANES", "DEPTH", "MAX_DEPTH", "check_depth", "engine_depth", "ONE_RUNG_BUDGET", "MAX_STEP_RUNGS", "MAX_LADDER_DEPTH",
           "RUNG_TOLERANCE", "LN2", "DEFAULT_ETA0", "DEFAULT_ETA", "DEFAULT_STAR_FACTOR", "whole_rungs",
           "eta0_for_range", "options_table", "spec_warnings", "MIN_DYNAMIC_RANGE", "MIN_LADDER_RUNGS"]
