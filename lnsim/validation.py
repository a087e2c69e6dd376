"""The checks every parameter of lnsim goes through, and the one error they raise.

Each check returns the value in its canonical type, or raises :class:`SpecError` (a :class:`ValueError`) with
one line ``"<name> must be <what is allowed>, not <value!r>"``. This is the bottom layer: it imports nothing
of lnsim, so the spec, the datapath models, the RTL, the trainer and the command line all check alike.
"""

from __future__ import annotations

import math
import numbers

__all__ = ["SpecError", "check_int", "check_positive", "check_non_negative", "check_interval", "check_bool",
           "check_enum", "check_choice", "is_real"]


class SpecError(ValueError):
    """An invalid parameter value; the message names the parameter, the value and what is allowed."""


def _is_bool(value) -> bool:
    """Whether ``value`` is a bool, Python's or NumPy's (``numpy.bool``, formerly ``numpy.bool_``)."""
    return isinstance(value, bool) or (type(value).__module__ == "numpy" and type(value).__name__ in ("bool", "bool_"))


def is_real(value) -> bool:
    """Whether ``value`` is a real number and not a bool (NumPy's bool included)."""
    return isinstance(value, numbers.Real) and not _is_bool(value)


def check_int(name: str, value, lo: int, hi: int | None = None, *, note: str = "") -> int:
    """``value`` as an int if it is an integer (not a bool) in ``lo..hi`` (``hi=None``: no upper bound), else a
    SpecError naming ``name``, the allowed range (followed by ``note``, e.g. " (the step count)") and ``value``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < lo or (hi is not None and value > hi):
        allowed = f"in {lo}..{hi}" if hi is not None else f">= {lo}"
        raise SpecError(f"{name} must be an integer {allowed}{note}, not {value!r}")
    return int(value)


def check_positive(name: str, value, hi: float | None = None) -> float:
    """``value`` as a float if it is a finite real number > 0 (and at most ``hi`` if given), else a SpecError."""
    ok = is_real(value) and math.isfinite(value) and value > 0
    if ok and hi is not None:
        ok = value <= hi
    if not ok:
        allowed = f"a finite number in (0, {hi:g}]" if hi is not None else "a finite number > 0"
        raise SpecError(f"{name} must be {allowed}, not {value!r}")
    return float(value)


def check_non_negative(name: str, value) -> float:
    """``value`` as a float if it is a finite real number >= 0, else a SpecError."""
    if not (is_real(value) and math.isfinite(value) and value >= 0):
        raise SpecError(f"{name} must be a finite number >= 0, not {value!r}")
    return float(value)


def check_interval(name: str, value, lo: float, hi: float, *, closed_low: bool = True) -> float:
    """``value`` as a float if it is a real number in ``[lo, hi)`` (``(lo, hi)`` when not ``closed_low``), else
    a SpecError such as ``"momentum must be a number in [0, 1), not 1"``."""
    ok = is_real(value) and (lo <= value if closed_low else lo < value) and value < hi
    if not ok:
        raise SpecError(f"{name} must be a number in {'[' if closed_low else '('}{lo:g}, {hi:g}), not {value!r}")
    return float(value)


def check_bool(name: str, value) -> bool:
    """``value`` as a bool if it is one (NumPy's bool included), else a SpecError."""
    if not _is_bool(value):
        raise SpecError(f"{name} must be True or False, not {value!r}")
    return bool(value)


def check_enum(name: str, value, enum_type):
    """``value`` as a member of ``enum_type`` (by value), or a SpecError naming ``name`` and the allowed values."""
    if isinstance(value, enum_type):
        return value
    try:
        return enum_type(value)
    except ValueError:
        allowed = ", ".join(repr(m.value) for m in enum_type)
        raise SpecError(f"{name} must be one of {allowed}, not {value!r}") from None


def check_choice(name: str, value, allowed, *, hint: str = ""):
    """``value`` if it is one of the names ``allowed``, else a SpecError listing them (then ``hint``)."""
    if not isinstance(value, str) or value not in allowed:
        raise SpecError(f"{name} must be one of {', '.join(allowed)}, not {value!r}{hint}")
    return value
