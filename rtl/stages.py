"""The combinational stages of the B-bit Madam update datapath (docs/datapath.md, stages 1-5), in one namespace.

Each stage is a small :class:`wiring.Component` whose port names are the variable names of
docs/datapath.md and of :func:`lnsim.golden.update_trace`, so each can be checked alone against the golden
model's intermediate values. Stages 1-4 are each a chain of smaller parts (:func:`unpack_parts`,
:func:`ema_parts`, :func:`log_ratio_parts`, :func:`rung_step_parts`): the stage component chains them
combinationally (the reference), :class:`~lnsim_rtl.UpdateUnit` with a pipeline register after each.

One module per stage (:mod:`~lnsim_rtl.unpack`, :mod:`~lnsim_rtl.ema`, :mod:`~lnsim_rtl.log_ratio`,
:mod:`~lnsim_rtl.rung_step`, :mod:`~lnsim_rtl.saturating_add`), the interpolators they share
(:mod:`~lnsim_rtl.interpolator`) and :class:`Widths` (:mod:`~lnsim_rtl.widths`); this module gathers their
public names.

Widths follow the "Bit widths" table of docs/datapath.md; a value that can be negative is signed. One is
wider than that table, so that no port value can overflow: ``Y`` is signed F + 9 (the table's F + 8 holds
every ``log_eta`` and ``log_bc`` a host computes, F + 9 every value their ports can carry).

Every stage is exact for every input word, including state words that break the normalisation invariant
of docs/datapath.md stage 2 (see :class:`Interpolator`): the RTL then still agrees with the golden model.
"""

from __future__ import annotations

from .ema import HI_SQ, Ema, EmaAlign, EmaHalve, EmaNorm, EmaRound, EmaSquare, EmaSum, ema_parts
from .interpolator import (ROM_BANK_BITS, Interpolator, InterpolatorAdd, InterpolatorLookup, InterpolatorProduct,
                           InterpolatorSelect)
from .log_ratio import (LogRatio, LogRatioClamp, LogRatioExp, LogRatioIndex, LogRatioLookup, LogRatioSum,
                        log_ratio_parts)
from .rung_step import (RungStep, RungStepLookup, RungStepRound, RungStepScalars, RungStepShift, RungStepSum,
                        rung_step_parts)
from .saturating_add import SaturatingAdd
from .unpack import Unpack, UnpackClassify, UnpackNormalise, unpack_parts
from .widths import Widths

__all__ = ["Interpolator", "InterpolatorLookup", "InterpolatorSelect", "InterpolatorProduct", "InterpolatorAdd",
           "ROM_BANK_BITS",
           "Unpack", "UnpackClassify", "UnpackNormalise", "unpack_parts",
           "Ema", "EmaSquare", "EmaRound", "EmaAlign", "EmaHalve", "EmaSum", "EmaNorm", "ema_parts", "HI_SQ",
           "LogRatio", "LogRatioExp", "LogRatioIndex", "LogRatioLookup", "LogRatioClamp", "LogRatioSum",
           "log_ratio_parts",
           "RungStep", "RungStepScalars", "RungStepSum", "RungStepLookup", "RungStepShift", "RungStepRound",
           "rung_step_parts",
           "SaturatingAdd", "Widths"]
