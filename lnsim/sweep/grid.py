"""The grid of a sweep: value lists per spec option ("axes"), and one validated :class:`~lnsim.spec.Spec` per point.

Every spec option (:data:`lnsim.spec.SPEC_OPTIONS`: ``bits``, ``base``, ``eta0``, ``frac_bits``, ``eta``, ...) is
an axis, plus ``dynamic_range``, which derives the base precision per bit width. An axis is given as a list
(``6,8,10``), an inclusive integer range (``6:12`` or ``6:12:2``), or in a grid file as a TOML/JSON array. The
grid is the Cartesian product of the axes; each point's values are spec options, built and checked by the
one constructor every command uses (:meth:`lnsim.spec.Spec.from_options`).
"""

from __future__ import annotations

import itertools
import json
import math
import numbers
import os
from dataclasses import dataclass

from lnsim.spec import DYNAMIC_RANGE, SPEC_OPTIONS, Base, Spec, SpecError
from lnsim.validation import check_choice, check_enum

__all__ = ["AXES", "Grid", "Point", "parse_axis", "read_grid_file"]

#: Every axis a grid may vary (the spec's options and ``dynamic_range``), with the type of its values.
AXES = {opt.name: opt.kind for opt in (*SPEC_OPTIONS, DYNAMIC_RANGE)}
#: The value of an axis that is not given.
_DEFAULTS = {opt.name: opt.default for opt in SPEC_OPTIONS}

_PRECISION = ("eta0", "frac_bits", "dynamic_range")

_WHAT = {
    int: "integers: a list like 6,8,10 or an inclusive range lo:hi or lo:hi:step",
    float: "finite numbers: a list like 0.001,0.004",
    str: "names: a list like natural,pow2",
    bool: "true or false",
}


def _bad(name: str, value) -> SpecError:
    return SpecError(f"{name} must be {_WHAT[AXES[name]]}, not {value!r}")


def _int_range(name: str, text: str) -> list[int]:
    parts = text.split(":")
    try:
        numbers_ = [int(p) for p in parts]
    except ValueError:
        raise _bad(name, text) from None
    if len(numbers_) not in (2, 3):
        raise _bad(name, text)
    lo, hi, step = (*numbers_, 1) if len(numbers_) == 2 else numbers_
    if step < 1 or lo > hi:
        raise SpecError(f"{name} range must be lo:hi[:step] with lo <= hi and step >= 1, not {text!r}")
    return list(range(lo, hi + 1, step))


def _text_values(name: str, text: str) -> list:
    kind = AXES[name]
    if kind is int and ":" in text:
        return _int_range(name, text)
    try:
        if kind is int:
            return [int(text)]
        if kind is float:
            value = float(text)
            if not math.isfinite(value):
                raise ValueError
            return [value]
    except ValueError:
        raise _bad(name, text) from None
    if kind is bool:
        flags = {"true": True, "on": True, "yes": True, "1": True, "false": False, "off": False, "no": False, "0": False}
        if text.lower() not in flags:
            raise _bad(name, text)
        return [flags[text.lower()]]
    if not text:
        raise _bad(name, text)
    return [text]


def _typed_value(name: str, item):
    kind = AXES[name]
    if kind is bool:
        ok = isinstance(item, bool)
    elif kind is int:
        ok = isinstance(item, numbers.Integral) and not isinstance(item, bool)
    elif kind is float:
        ok = isinstance(item, numbers.Real) and not isinstance(item, bool) and math.isfinite(item)
    else:
        ok = False
    if not ok:
        raise _bad(name, item)
    return kind(item)


def parse_axis(name: str, value) -> tuple:
    """The values of axis ``name`` given as text (``"4:16"``, ``"0.001,0.004"``), a number, or a list of either.

    Returns a tuple of distinct values in the order given. Raises :class:`SpecError` naming the axis and the
    value for anything else.
    """
    check_choice("axis", name, tuple(AXES))
    items = list(value) if isinstance(value, (list, tuple)) else [value]
    out = []
    for item in items:
        if isinstance(item, str):
            for part in item.split(","):
                out.extend(_text_values(name, part.strip()))
        else:
            out.append(_typed_value(name, item))
    if not out:
        raise _bad(name, value)
    return tuple(dict.fromkeys(out))


def _toml(path: str):
    try:
        import tomllib
    except ImportError:  # pragma: no cover - Python 3.10
        raise ValueError(f"grid {path!r}: TOML needs Python >= 3.11; use a .yaml or .json grid file") from None
    return tomllib


def read_grid_file(path: str, allowed) -> dict:
    """The options of a grid file (``.toml``, ``.yaml``/``.yml`` or ``.json``: one flat table of option names to values).

    Option names may be spelled with ``-`` or ``_``; every name must be in ``allowed``. Raises ``ValueError``
    with one line for an unreadable file, a syntax error or an unknown option.
    """
    ext = os.path.splitext(path)[1].lower()
    kinds = {".toml": "TOML", ".json": "JSON", ".yaml": "YAML", ".yml": "YAML"}
    if ext not in kinds:
        raise ValueError(f"grid must be a .toml, .yaml or .json file, not {path!r}")
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as e:
        raise ValueError(f"grid must be a readable file, not {path!r} ({e.strerror})") from None
    import yaml

    try:
        text = raw.decode("utf-8")
        data = _toml(path).loads(text) if ext == ".toml" else json.loads(text) if ext == ".json" else yaml.safe_load(text)
    except (ValueError, UnicodeDecodeError, yaml.YAMLError) as e:
        if "TOML needs" in str(e):
            raise
        raise ValueError(f"grid {path!r} is not valid {kinds[ext]}: {' '.join(str(e).split())}") from None
    if not isinstance(data, dict):
        raise ValueError(f"grid {path!r} must hold one table of options, not {type(data).__name__}")
    options = {}
    for key, value in data.items():
        name = key.replace("-", "_")
        if name not in allowed:
            raise ValueError(f"grid {path!r}: option must be one of {', '.join(sorted(allowed))}, not {key!r}")
        if isinstance(value, dict):
            raise ValueError(f"grid {path!r}: {key} must be a value or a list, not a table")
        options[name] = value
    return options


def _describe(values: dict) -> str:
    return " ".join(f"{name}={value:g}" if isinstance(value, float) else f"{name}={value}"
                    for name, value in values.items())


@dataclass(frozen=True)
class Point:
    """One grid point: the axis values chosen (``values``, spec options), its :class:`Spec`, and ``series``
    (the label of the line it belongs to in the plots: every varied axis but ``bits``)."""

    values: dict
    spec: Spec
    series: str

    def describe(self) -> str:
        """The axis values, e.g. ``bits=8 eta0=0.016``."""
        return _describe(self.values)


@dataclass(frozen=True)
class Grid:
    """The axes of a sweep (axis name to a tuple of values; an absent axis takes its option's default)."""

    axes: dict

    @classmethod
    def from_options(cls, options: dict) -> "Grid":
        """The grid named by ``options`` (axis name to raw value, None for not given), parsed by :func:`parse_axis`."""
        axes = {name: parse_axis(name, value) for name, value in options.items() if name in AXES and value is not None}
        if "eta0" in axes and "dynamic_range" in axes:
            raise SpecError("give eta0 or dynamic_range, not both")
        return cls(axes)

    def _combinations(self):
        """Axis-value dicts of every point: per base its own precision axis; bits varies fastest."""
        bases = self.axes.get("base", (_DEFAULTS["base"],))
        others = [name for name in AXES if name in self.axes and name not in ("bits", "base", *_PRECISION)]
        for base in bases:
            if "dynamic_range" in self.axes:
                precision = [("dynamic_range", x) for x in self.axes["dynamic_range"]]
            elif base == Base.POW2.value:
                if "frac_bits" not in self.axes:
                    raise SpecError("frac_bits must be given for base pow2 (or dynamic_range), e.g. --frac-bits 8:12")
                precision = [("frac_bits", m) for m in self.axes["frac_bits"]]
            elif base == Base.NATURAL.value:
                if "frac_bits" in self.axes and len(bases) == 1:
                    raise SpecError("frac_bits applies to base pow2; base natural takes eta0 or dynamic_range")
                precision = [("eta0", x) for x in self.axes.get("eta0", (_DEFAULTS["eta0"],))]
            else:
                check_enum("base", base, Base)
                raise SpecError(f"base must be given by its name in a grid, not {base!r}")
            if base == Base.POW2.value and "eta0" in self.axes and len(bases) == 1:
                raise SpecError("eta0 applies to base natural; base pow2 takes frac_bits or dynamic_range")
            for prec in precision:
                for rest in itertools.product(*(self.axes[name] for name in others)):
                    for bits in self.axes.get("bits", (_DEFAULTS["bits"],)):
                        yield {"bits": bits, "base": base, prec[0]: prec[1], **dict(zip(others, rest))}

    def _series(self, values: dict) -> str:
        parts = []
        if len(self.axes.get("base", ())) > 1 or values["base"] == Base.POW2.value:
            parts.append(values["base"])
        for name, value in values.items():
            if name in _PRECISION:
                label = {"eta0": "eta0", "frac_bits": "m", "dynamic_range": "R"}[name]
                parts.append(f"{label}={value:g}")
            elif name not in ("bits", "base") and len(self.axes.get(name, ())) > 1:
                parts.append(_describe({name: value}))
        return " ".join(parts)

    def points(self, *, step_limit: str = "ladder", skip_invalid: bool = False) -> tuple[list[Point], list[str]]:
        """Every point with its spec, validated up front, and the messages of the points left out.

        ``step_limit`` caps the derived steps of each point (see :meth:`lnsim.spec.Spec.from_options`). Raises :class:`SpecError` with one line naming the first invalid point, the parameter and the value
        (unless ``skip_invalid``, which leaves such points out and returns their messages).
        """
        points, invalid = [], []
        for values in self._combinations():
            try:
                spec = Spec.from_options(**values, step_limit=step_limit)
            except SpecError as e:
                invalid.append(f"grid point {_describe(values)}: {e}")
                continue
            points.append(Point(values=values, spec=spec, series=self._series(values)))
        if invalid and not skip_invalid:
            more = f" (and {len(invalid) - 1} more invalid points; --skip-invalid leaves them out)" if len(invalid) > 1 else ""
            raise SpecError(invalid[0] + more)
        if not points:
            raise SpecError(f"the grid has no valid point ({len(invalid)} invalid, e.g. {invalid[0]})")
        return points, invalid
