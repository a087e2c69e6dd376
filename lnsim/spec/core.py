"""The one validated specification: :class:`Spec`, an :class:`LNSFormat` and a :class:`MadamConfig` checked
against each other, with every derived width and constant of the integer datapath (``docs/datapath.md``),
and :meth:`Spec.from_options`, the one place that turns user options into a spec.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field, replace

from lnsim.spec.formats import DEFAULT_ETA0, LN2, RUNG_TOLERANCE, Base, LNSFormat, _set
from lnsim.spec.madam import DEFAULT_ETA, DEFAULT_STAR_FACTOR, MAX_STEP_RUNGS, ONE_RUNG_BUDGET, MadamConfig
from lnsim.spec.schema import Option, field_options, options_table
from lnsim.spec.storage import BitsPerWeight, bits_per_weight
from lnsim.validation import SpecError, check_choice, check_int, is_real

__all__ = ["Spec", "SPEC_OPTIONS", "FIELD_NAMES", "DYNAMIC_RANGE", "LANES", "MAX_LANES", "DEPTH", "MAX_DEPTH",
           "check_depth", "engine_depth", "whole_rungs", "eta0_for_range", "options_markdown"]

#: Most lanes (elements per clock) the hardware commands accept.
MAX_LANES = 64

#: The options of a spec that are not fields: eta and eta_star in rungs, the dynamic range that derives
#: eta0 (a sweep axis), and the lanes of the hardware.
ETA_RUNGS = Option(name="eta_rungs", kind=int, range=">= 1", unit="rungs", help="learning rate in rungs (instead of --eta)")
ETA_STAR_RUNGS = Option(name="eta_star_rungs", kind=int, range=">= 1", unit="rungs",
                        help="largest step in rungs (instead of --eta-star)")
DYNAMIC_RANGE = Option(name="dynamic_range", kind=float, range="> 1", metavar="R",
                       help="derive eta0 per bit width from the dynamic range R (instead of --eta0; base pow2: the "
                            "finest frac_bits spanning R)")
LANES = Option(name="lanes", kind=int, default=1, bounds=(1, MAX_LANES),
               help="elements per clock (default {default})")
#: Most rows of the update engine's memory the hardware commands accept (2**20: beyond every target's block RAM).
MAX_DEPTH = 2**20
DEPTH = Option(name="depth", kind=int, bounds=(1, MAX_DEPTH),
               help="rows of the update engine's memory, {range} (--unit engine only)")


def check_depth(depth) -> int:
    """``depth``, the rows of the update engine's memory, as an int in 1..:data:`MAX_DEPTH`, else a SpecError."""
    return check_int("depth", depth, *DEPTH.bounds)


def engine_depth(engine: bool, depth) -> int | None:
    """The engine's rows (:func:`check_depth`) when ``engine``, None when not; a SpecError when ``depth`` is
    missing with the engine or given without it (the hardware commands' ``--unit engine --depth N``)."""
    if engine != (depth is not None):
        raise SpecError("depth must be given with --unit engine, and only then")
    return check_depth(depth) if engine else None


@dataclass(frozen=True)
class Spec:
    """An :class:`LNSFormat` and a :class:`MadamConfig` checked against each other, with derived quantities.

    Raises
    ------
    SpecError
        If eta or eta_star is not a whole multiple of the format's eta0, or the clamp in rungs exceeds the
        ladder or the antilog stage's reach.
    """

    fmt: LNSFormat
    cfg: MadamConfig = field(default_factory=MadamConfig)

    def __post_init__(self):
        if not isinstance(self.fmt, LNSFormat):
            raise SpecError(f"fmt must be an LNSFormat, not {self.fmt!r}")
        if not isinstance(self.cfg, MadamConfig):
            raise SpecError(f"cfg must be a MadamConfig, not {self.cfg!r}")
        eta_rungs = _whole_rungs("eta", self.cfg.eta, self.fmt)
        eta_star_rungs = _whole_rungs("eta_star", self.cfg.eta_star, self.fmt)
        limit = min(self.fmt.code_max, MAX_STEP_RUNGS)
        if eta_star_rungs > limit:
            raise SpecError(
                f"eta_star must be at most {limit} rungs (2**bits - 1) for {self.fmt.describe()}, "
                f"not {self.cfg.eta_star!r} ({eta_star_rungs} rungs)"
            )
        _set(self, "eta_rungs", eta_rungs)
        _set(self, "eta_star_rungs", eta_star_rungs)
        if self.precision_budget > ONE_RUNG_BUDGET:
            raise SpecError(_precision_message(self))

    #: eta / eta0, the rung step for |g/gbar| = 1 (set in __post_init__).
    eta_rungs: int = field(init=False)
    #: eta_star / eta0, the largest rung step (the clamp of the paper, in rungs).
    eta_star_rungs: int = field(init=False)

    @property
    def clamp_ratio(self) -> float:
        """The paper's clamp on |g / gbar|: eta_star / eta."""
        return self.eta_star_rungs / self.eta_rungs

    @property
    def precision_budget(self) -> float:
        """Estimated worst error of a rung step, in rungs: ``eta_star_rungs * cfg.ratio_precision``.

        A step is at most eta_star_rungs (the clamp) whatever the step's eta, so this bounds every step of a
        learning-rate schedule. Valid specs keep it at most :data:`ONE_RUNG_BUDGET` (0.0037 for the
        defaults), where every update is within one rung of float Madam (docs/datapath.md, "Precision").
        """
        return self.eta_star_rungs * self.cfg.ratio_precision

    @property
    def bits_per_weight(self) -> BitsPerWeight:
        """Bits each weight stores: code, sign and state word, and their total (:func:`lnsim.spec.storage.bits_per_weight`;
        per-tensor words are not counted)."""
        return bits_per_weight(self)

    @property
    def state_exp_max(self) -> int:
        """Largest value of the state's exponent field."""
        return 2**self.cfg.state_exp_bits - 1

    @property
    def state_exp_offset(self) -> int:
        """E0 in v = M * 2**(E - E0): chosen so the smallest non-zero gradient's EMA term has E = 1."""
        g = self.cfg.grad_format
        return 2 * g.bias + self.cfg.state_man_bits + self.cfg.beta_shift + 2 * g.man_bits - 2

    def to_dict(self) -> dict:
        """The constructor arguments of the format and config, as plain JSON-able values (see :meth:`from_dict`),
        in the order of :data:`SPEC_OPTIONS`."""
        return {name: _plain(getattr(self.fmt if name in _FORMAT_FIELDS else self.cfg, name)) for name in FIELD_NAMES}

    @classmethod
    def from_dict(cls, d: dict) -> "Spec":
        """Rebuild (and validate) the :class:`Spec` that :meth:`to_dict` described."""
        fmt = LNSFormat(**{name: d[name] for name in FIELD_NAMES if name in _FORMAT_FIELDS})
        return cls(fmt, MadamConfig(**{name: d[name] for name in FIELD_NAMES if name not in _FORMAT_FIELDS}))

    def info_rows(self, table_bits: dict) -> list:
        """The ``lnsim info`` table: ``(label, text)`` rows of every input and derived quantity, given the
        datapath's ROM sizes ``table_bits`` (:func:`lnsim.tables.table_bits`)."""
        s, tb = self.summary(), table_bits
        return [
            ("format", self.fmt.describe()),
            ("code k", f"0..{s['code_max']} ({s['code_dtype']}; packed with sign: {s['packed_dtype']})"),
            ("rung ratio", f"exp(-eta0) = {s['rung_ratio']:.9g}"),
            ("dynamic range", f"exp((2**B - 1) * eta0) = {s['dynamic_range']:.6g}"),
            ("eta", f"{s['eta']:.6g} = {s['eta_rungs']} rungs"),
            ("eta_star", f"{s['eta_star']:.6g} = {s['eta_star_rungs']} rungs (clamp |g/gbar| at {s['clamp_ratio']:g})"),
            ("beta", f"1 - 2**-{s['beta_shift']} = {s['beta']:.9g}"),
            ("bias correction", "on" if s["bias_correction"] else "off"),
            ("gradient format", s["grad_format"]),
            ("state", f"{s['state_bits']} bits = {s['state_exp_bits']}-bit exponent + {s['state_man_bits']}-bit mantissa"),
            ("bits per weight", f"{self.bits_per_weight.describe()} (per tensor, not counted: sigma_star, step count)"),
            ("log domain", f"F = {s['log_frac_bits']} fraction bits, tables of 2**{s['table_index_bits']} + 1 entries"),
            ("update tables", f"log {tb['log']} + antilog {tb['antilog']} = {tb['update_total']} bits"),
            ("decoder tables", f"{tb['decoder']} bits"),
            ("step precision", f"estimated worst error {self.precision_budget:.3g} rungs per step (at most "
                               f"{ONE_RUNG_BUDGET}; this datapath resolves eta_star up to {self.cfg.max_step_rungs} rungs)"),
        ]

    @classmethod
    def from_options(cls, *, step_limit: str = "ladder", **options) -> "Spec":
        """The spec named by user options (the keywords of :data:`SPEC_OPTIONS` and ``dynamic_range``), with
        every rule for what is not given; ``None`` means not given.

        * eta0: ``DEFAULT_ETA0`` on the natural base, or ln(R) / (2**bits - 1) for ``dynamic_range`` R; on the
          pow2 base, ``dynamic_range`` picks the largest frac_bits m whose ladder still spans R.
        * eta (or ``eta_rungs``, in rungs): the whole number of rungs nearest ``DEFAULT_ETA``, at least 1.
        * eta_star (or ``eta_star_rungs``): ``DEFAULT_STAR_FACTOR`` x eta in rungs, never below eta.
        * Derived steps are capped at the ladder (``step_limit="ladder"``, 2**bits - 1 rungs) or half of it
          (``"half"``, what :func:`lnsim.fidelity.measure` needs); given ones never are.
        * Every other option takes its field's default.

        Raises :class:`SpecError` (one line) for an unknown option, a value out of range, or options that
        exclude each other (eta and eta_rungs, eta_star and eta_star_rungs, eta0 or frac_bits and dynamic_range).
        """
        check_choice("step_limit", step_limit, ("ladder", "half"))
        for name in options:
            if name not in _OPTION_NAMES:
                raise SpecError(f"option must be one of {', '.join(_OPTION_NAMES)}, not {name!r}")
        given = {name: value for name, value in options.items() if value is not None}
        o = {opt.name: opt.default for opt in SPEC_OPTIONS} | given
        fmt = _format_from_options(o, given)
        limit = fmt.code_max if step_limit == "ladder" else fmt.half_ladder
        for a, b in (("eta", "eta_rungs"), ("eta_star", "eta_star_rungs")):
            if a in given and b in given:
                raise SpecError(f"give {a} or {b}, not both")
        if "eta_rungs" in given:
            eta = check_int("eta_rungs", given["eta_rungs"], 1) * fmt.eta0
        elif "eta" in given:
            eta = given["eta"]
        else:
            eta = _default_eta_rungs(fmt, limit) * fmt.eta0
        if "eta_star_rungs" in given:
            eta_star = check_int("eta_star_rungs", given["eta_star_rungs"], 1) * fmt.eta0
        elif "eta_star" in given:
            eta_star = given["eta_star"]
        elif (rungs := whole_rungs(eta, fmt)) is not None:
            eta_star = max(rungs, min(DEFAULT_STAR_FACTOR * rungs, limit)) * fmt.eta0
        else:  # eta is not a whole number of rungs: MadamConfig or Spec names what is wrong with it
            eta_star = DEFAULT_STAR_FACTOR * eta if is_real(eta) else eta
        rest = {name: o[name] for name in FIELD_NAMES if name not in _FORMAT_FIELDS and name not in ("eta", "eta_star")}
        return cls(fmt, MadamConfig(eta=eta, eta_star=eta_star, **rest))

    def summary(self) -> dict:
        """Every input (:meth:`to_dict`) and derived quantity, as plain JSON-able values."""
        f, c = self.fmt, self.cfg
        return {
            **self.to_dict(),
            "code_max": f.code_max,
            "rung_ratio": f.rung_ratio,
            "dynamic_range": f.dynamic_range,
            "eta_rungs": self.eta_rungs,
            "eta_star_rungs": self.eta_star_rungs,
            "clamp_ratio": self.clamp_ratio,
            "precision_budget": self.precision_budget,
            "max_step_rungs": c.max_step_rungs,
            "beta": c.beta,
            "state_exp_bits": c.state_exp_bits,
            "state_man_bits": c.state_man_bits,
            "code_dtype": f.code_dtype,
            "packed_dtype": f.packed_dtype,
        }


def _finest_fit(spec: Spec) -> tuple[int, int] | None:
    """The (log_frac_bits, table_index_bits) with the smallest tables (fewest entries, then narrowest) that
    resolves spec's eta_star, or None."""
    fits = [
        (a, F)
        for F in range(8, 21)
        for a in range(3, min(12, F + 1) + 1)
        if spec.eta_star_rungs <= replace(spec.cfg, log_frac_bits=F, table_index_bits=a).max_step_rungs
    ]
    return min(fits)[::-1] if fits else None


def _precision_message(spec: Spec) -> str:
    c = spec.cfg
    fit = _finest_fit(spec)
    fix = (f"or use log_frac_bits={fit[0]}, table_index_bits={fit[1]}" if fit is not None
           else "(no log_frac_bits/table_index_bits reach it with this state and gradient format)")
    return (
        f"eta_star must be at most {c.max_step_rungs} rungs for log_frac_bits={c.log_frac_bits}, "
        f"table_index_bits={c.table_index_bits}, state_bits={c.state_bits}, grad_format={c.grad_format.value!r} "
        f"(larger steps can be 2+ rungs off float Madam: docs/datapath.md, \"Precision\"), not {c.eta_star!r} "
        f"({spec.eta_star_rungs} rungs); lower eta_star {fix}"
    )


def whole_rungs(value, fmt: LNSFormat) -> int | None:
    """``value / eta0`` as a whole number of rungs >= 1 (within :data:`RUNG_TOLERANCE`), else None."""
    if not is_real(value):
        return None
    rungs = value / fmt.eta0
    whole = round(rungs)
    return int(whole) if whole >= 1 and abs(rungs - whole) <= RUNG_TOLERANCE * max(1.0, rungs) else None


def _whole_rungs(name: str, value: float, fmt: LNSFormat) -> int:
    whole = whole_rungs(value, fmt)
    if whole is None:
        rungs = value / fmt.eta0
        lo, hi = max(1, math.floor(rungs)), max(1, math.ceil(rungs))
        options = f"{lo * fmt.eta0:.9g} ({lo} rungs)" + (f" or {hi * fmt.eta0:.9g} ({hi} rungs)" if hi != lo else "")
        raise SpecError(
            f"{name} must be a whole multiple of eta0={fmt.eta0:.9g}, not {value!r} ({rungs:.6g} rungs); "
            f"nearest: {options}"
        )
    return whole


def _plain(value):
    return value.value if isinstance(value, enum.Enum) else value


def _options_by_name(*classes) -> dict:
    return {o.name: o for cls in classes for o in field_options(cls)}


_FIELDS = _options_by_name(LNSFormat, MadamConfig)

#: Every option of a spec, in the order of the command line's flags and of :meth:`Spec.to_dict`.
SPEC_OPTIONS = (
    *(_FIELDS[name] for name in ("bits", "base", "eta0", "frac_bits", "eta", "eta_star")),
    ETA_RUNGS,
    ETA_STAR_RUNGS,
    *(o for o in field_options(MadamConfig) if o.name not in ("eta", "eta_star")),
)
if {o.name for o in SPEC_OPTIONS} != {*_FIELDS, "eta_rungs", "eta_star_rungs"}:
    raise ImportError("SPEC_OPTIONS must name every field option of LNSFormat and MadamConfig")

_FORMAT_FIELDS = frozenset(o.name for o in field_options(LNSFormat))
#: The keys of :meth:`Spec.to_dict`: the options that are fields, in :data:`SPEC_OPTIONS` order.
FIELD_NAMES = tuple(o.name for o in SPEC_OPTIONS if o.name in _FIELDS)
_OPTION_NAMES = (*(o.name for o in SPEC_OPTIONS), DYNAMIC_RANGE.name)


def _format_from_options(o: dict, given: dict) -> LNSFormat:
    """The format of :meth:`Spec.from_options`: the precision from eta0, frac_bits or dynamic_range."""
    for name in ("eta0", "frac_bits"):
        if name in given and "dynamic_range" in given:
            raise SpecError(f"give {name} or dynamic_range, not both")
    bits, base = o["bits"], o["base"]
    pow2 = base is Base.POW2 or base == Base.POW2.value
    eta0, frac_bits = given.get("eta0"), given.get("frac_bits")
    if "dynamic_range" in given:
        check_int("bits", bits, *_FIELDS["bits"].bounds)
        r = given["dynamic_range"]
        if not (is_real(r) and r > 1):
            raise SpecError(f"dynamic_range must be a number > 1, not {r!r}")
        if pow2:
            # The finest pow2 base whose ladder still spans R: the largest m with ln2 / 2**m >= ln(R) / (2**B - 1).
            frac_bits = max(0, math.floor(math.log2(LN2 / eta0_for_range(bits, r)) + 1e-12))
        else:
            eta0 = eta0_for_range(bits, r)
    elif not pow2 and eta0 is None:
        eta0 = DEFAULT_ETA0
    rest = {name: o[name] for name in _FORMAT_FIELDS if name not in ("eta0", "frac_bits")}
    return LNSFormat(**rest, eta0=eta0, frac_bits=frac_bits)


def options_markdown() -> str:
    """The Markdown table of every spec option, the dynamic range and the lanes (``python -m lnsim.spec``)."""
    return options_table((*SPEC_OPTIONS, DYNAMIC_RANGE, LANES))


def _default_eta_rungs(fmt: LNSFormat, limit: int) -> int:
    """eta when none is given, in rungs: the whole number nearest DEFAULT_ETA / eta0, at least 1, at most ``limit``."""
    return min(max(1, math.floor(DEFAULT_ETA / fmt.eta0 + 0.5)), limit)


def eta0_for_range(bits: int, dynamic_range: float) -> float:
    """The natural-base eta0 whose ladder of 2**bits rungs spans ``dynamic_range``: ln(R) / (2**bits - 1)."""
    return math.log(dynamic_range) / (2**bits - 1)
