"""The grid of a sweep: value lists per spec option ("axes"), and one validated :class:`~lnsim.spec.Spec` per point.

Every spec option of ``lnsim train`` is an axis (``bits``, ``base``, ``eta0``, ``frac_bits``, ``eta``, ...), plus
``dynamic_range``, which derives the base precision per bit width. An axis is given as a list (``6,8,10``), an
inclusive integer range (``6:12`` or ``6:12:2``), or in a grid file as a TOML/JSON array. The grid is the
Cartesian product of the axes; each point becomes the spec options ``lnsim train`` would take
(:func:`point_spec_args`), built and checked by the same code (:func:`lnsim.cli.spec_from_args`).
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import numbers
import os
from dataclasses import dataclass

from lnsim.cli import DEFAULT_ETA0, default_eta_rungs, default_eta_star_rungs, spec_from_args
from lnsim.spec import LN2, Base, LNSFormat, Spec, SpecError, check_int

__all__ = ["AXES", "DEFAULT_AXES", "Grid", "Point", "parse_axis", "read_grid_file", "point_spec_args", "eta0_for_range"]

#: Every axis a grid may vary, with the type of its values.
AXES = {
    "bits": int,
    "base": str,
    "eta0": float,
    "frac_bits": int,
    "dynamic_range": float,
    "eta": float,
    "eta_rungs": int,
    "eta_star": float,
    "eta_star_rungs": int,
    "beta_shift": int,
    "bias_correction": bool,
    "grad_format": str,
    "state_bits": int,
    "log_frac_bits": int,
    "table_index_bits": int,
}

#: Values of the axes that are not given (the defaults of ``lnsim train``).
DEFAULT_AXES = {"bits": (12,), "base": ("natural",), "beta_shift": (10,), "bias_correction": (True,),
                "grad_format": ("bfloat16",), "state_bits": (32,), "log_frac_bits": (16,), "table_index_bits": (7,)}

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
    if name not in AXES:
        raise SpecError(f"axis must be one of {', '.join(AXES)}, not {name!r}")
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


def eta0_for_range(bits: int, dynamic_range: float) -> float:
    """The natural-base eta0 whose ladder of 2**bits rungs spans ``dynamic_range``: ln(R) / (2**bits - 1)."""
    return math.log(dynamic_range) / (2**bits - 1)


def _frac_bits_for_range(bits: int, dynamic_range: float) -> int:
    # The finest pow2 base whose ladder still spans R: the largest m with ln2 / 2**m >= ln(R) / (2**B - 1).
    return max(0, math.floor(math.log2(LN2 / eta0_for_range(bits, dynamic_range)) + 1e-12))


def _check_range(value: float) -> float:
    if not value > 1:
        raise SpecError(f"dynamic_range must be a number > 1, not {value!r}")
    return value


def point_spec_args(values: dict, step_limit: str = "ladder") -> argparse.Namespace:
    """The ``lnsim train`` spec options (a namespace for :func:`lnsim.cli.spec_from_args`) of one grid point.

    ``values`` maps axis names to one value each (missing axes take :data:`DEFAULT_AXES`). The rules for what
    is not given: eta0 = ``DEFAULT_ETA0``, or ln(R) / (2**bits - 1) with ``dynamic_range`` R (base pow2: the
    largest frac_bits m whose ladder still spans R); eta = the whole number of rungs nearest 0.01 (at least 1), as
    ``lnsim train``; eta_star = 8 x eta. Derived steps are capped at the ladder (``step_limit="ladder"``,
    2**bits - 1 rungs) or half of it (``"half"``, what :func:`lnsim.fidelity.measure` needs); given ones never
    are. Raises :class:`SpecError` for a combination that cannot be built.
    """
    v = {name: default[0] for name, default in DEFAULT_AXES.items()} | values
    bits, base = v["bits"], v["base"]
    if "eta0" in values and "dynamic_range" in values:
        raise SpecError("give eta0 or dynamic_range, not both")
    if "frac_bits" in values and "dynamic_range" in values:
        raise SpecError("give frac_bits or dynamic_range, not both")
    check_int("bits", bits, 2, 24)
    eta0, frac_bits = v.get("eta0"), v.get("frac_bits")
    if base == Base.POW2.value:
        if "eta0" in values:
            raise SpecError(f"eta0 applies to base natural; base pow2 takes frac_bits (got eta0={eta0!r})")
        if "dynamic_range" in values:
            frac_bits = _frac_bits_for_range(bits, _check_range(v["dynamic_range"]))
    elif base == Base.NATURAL.value:
        if "frac_bits" in values:
            raise SpecError(f"frac_bits applies to base pow2; base natural takes eta0 (got frac_bits={frac_bits!r})")
        if "dynamic_range" in values:
            eta0 = eta0_for_range(bits, _check_range(v["dynamic_range"]))
        elif eta0 is None:
            eta0 = DEFAULT_ETA0
    ns = argparse.Namespace(
        bits=bits, base=base, eta0=eta0, frac_bits=frac_bits, eta=v.get("eta"), eta_rungs=v.get("eta_rungs"),
        eta_star=v.get("eta_star"), eta_star_rungs=v.get("eta_star_rungs"), beta_shift=v["beta_shift"],
        no_bias_correction=not v["bias_correction"], grad_format=v["grad_format"], state_bits=v["state_bits"],
        log_frac_bits=v["log_frac_bits"], table_index_bits=v["table_index_bits"],
    )
    fmt = LNSFormat(bits=bits, base=base, eta0=eta0, frac_bits=frac_bits)
    limit = fmt.code_max if step_limit == "ladder" else max(1, fmt.code_max // 2)
    if ns.eta is None and ns.eta_rungs is None:
        ns.eta_rungs = default_eta_rungs(fmt, limit)
    if ns.eta_star is None and ns.eta_star_rungs is None:
        rungs = ns.eta_rungs if ns.eta_rungs is not None else round(ns.eta / fmt.eta0)
        if isinstance(rungs, int):
            ns.eta_star_rungs = default_eta_star_rungs(rungs, fmt, limit)
    return ns


def _describe(values: dict) -> str:
    return " ".join(f"{name}={value:g}" if isinstance(value, float) else f"{name}={value}"
                    for name, value in values.items())


@dataclass(frozen=True)
class Point:
    """One grid point: the axis values chosen (``values``), its spec options and :class:`Spec`, and ``series``
    (the label of the line it belongs to in the plots: every varied axis but ``bits``)."""

    values: dict
    spec_args: argparse.Namespace
    spec: Spec
    series: str

    def describe(self) -> str:
        """The axis values, e.g. ``bits=8 eta0=0.016``."""
        return _describe(self.values)


@dataclass(frozen=True)
class Grid:
    """The axes of a sweep (axis name to a tuple of values; absent axes take :data:`DEFAULT_AXES`)."""

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
        bases = self.axes.get("base", DEFAULT_AXES["base"])
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
                precision = [("eta0", x) for x in self.axes.get("eta0", (DEFAULT_ETA0,))]
            else:
                raise SpecError(f"base must be one of 'natural', 'pow2', not {base!r}")
            if base == Base.POW2.value and "eta0" in self.axes and len(bases) == 1:
                raise SpecError("eta0 applies to base natural; base pow2 takes frac_bits or dynamic_range")
            for prec in precision:
                for rest in itertools.product(*(self.axes[name] for name in others)):
                    for bits in self.axes.get("bits", DEFAULT_AXES["bits"]):
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

        Raises :class:`SpecError` with one line naming the first invalid point, the parameter and the value
        (unless ``skip_invalid``, which leaves such points out and returns their messages).
        """
        points, invalid = [], []
        for values in self._combinations():
            try:
                args = point_spec_args(values, step_limit)
                spec = spec_from_args(args)
            except SpecError as e:
                invalid.append(f"grid point {_describe(values)}: {e}")
                continue
            points.append(Point(values=values, spec_args=args, spec=spec, series=self._series(values)))
        if invalid and not skip_invalid:
            more = f" (and {len(invalid) - 1} more invalid points; --skip-invalid leaves them out)" if len(invalid) > 1 else ""
            raise SpecError(invalid[0] + more)
        if not points:
            raise SpecError(f"the grid has no valid point ({len(invalid)} invalid, e.g. {invalid[0]})")
        return points, invalid
