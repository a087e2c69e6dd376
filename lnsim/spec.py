"""The one validated specification of an LNS weight format and a B-bit Madam update datapath.

Three frozen dataclasses hold everything a hardware architect varies:

* :class:`LNSFormat` -- the weight ladder ``w = sign * sigma_star * exp(-k * eta0)``, ``k in 0 .. 2**bits - 1``;
* :class:`MadamConfig` -- the optimiser (eta, eta_star, beta, bias correction, gradient format, state width,
  table precision);
* :class:`Spec` -- the two together, checked against each other, with every derived width and constant of
  the integer datapath described in ``docs/datapath.md``.

Every invalid value raises :class:`SpecError` (a :class:`ValueError`) whose one-line message names the
parameter, the value and what is allowed.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field, replace

from lnsim.validation import SpecError, check_bool, check_enum, check_int, check_positive

__all__ = ["SpecError", "Base", "GradFormat", "LNSFormat", "MadamConfig", "Spec", "ONE_RUNG_BUDGET", "check_int", "check_enum"]

LN2 = math.log(2.0)

#: Deepest ladder allowed, in nepers: ``(2**bits - 1) * eta0 <= MAX_LADDER_DEPTH``.  e**-80 is about
#: 2**-115, which keeps the smallest weight of a ladder with ``sigma_star`` up to 2**12 inside bfloat16's
#: normal range, where the weight decoder works.
MAX_LADDER_DEPTH = 80.0

#: Largest clamp in rungs (``eta_star / eta0``) the antilog stage can produce; see docs/datapath.md.
MAX_STEP_RUNGS = 2**22 - 1

#: Relative tolerance when checking that eta and eta_star are whole multiples of eta0.
RUNG_TOLERANCE = 1e-6

#: Largest :attr:`Spec.precision_budget` (estimated worst error of a rung step, in rungs) a valid spec may
#: have. Under it every update was found within one rung of float Madam (tests/test_properties.py); the
#: first failures, two rungs off, appeared at budgets of about 1.5.
ONE_RUNG_BUDGET = 0.5


class Base(enum.Enum):
    """How the rung ratio exp(-eta0) is chosen."""

    #: Any eta0 > 0, as in the paper (rung ratio exp(-eta0)).
    NATURAL = "natural"
    #: eta0 = ln2 / 2**frac_bits (rung ratio 2**(-1/2**frac_bits)): decoding is a shift plus a small table.
    POW2 = "pow2"


class GradFormat(enum.Enum):
    """Floating-point format of the gradient bit patterns entering the update."""

    BFLOAT16 = "bfloat16"
    FLOAT16 = "float16"
    FLOAT32 = "float32"

    @property
    def exp_bits(self) -> int:
        """Width of the exponent field."""
        return {"bfloat16": 8, "float16": 5, "float32": 8}[self.value]

    @property
    def man_bits(self) -> int:
        """Width of the stored mantissa (fraction) field."""
        return {"bfloat16": 7, "float16": 10, "float32": 23}[self.value]

    @property
    def width(self) -> int:
        """Total width of a bit pattern: sign + exponent + mantissa."""
        return 1 + self.exp_bits + self.man_bits

    @property
    def bias(self) -> int:
        """Exponent bias."""
        return 2 ** (self.exp_bits - 1) - 1

    @property
    def exp_field_max(self) -> int:
        """Exponent field value of Inf and NaN."""
        return 2**self.exp_bits - 1


def _set(obj, name, value):
    object.__setattr__(obj, name, value)


@dataclass(frozen=True)
class LNSFormat:
    """A B-bit logarithmic weight format: ``w = sign * sigma_star * exp(-k * eta0)``, ``k in 0 .. 2**bits - 1``.

    Parameters
    ----------
    bits : int
        Code width B in 2..24; the frozen sign is one more bit.
    eta0 : float, optional
        Base precision (natural base): rung ratio exp(-eta0). Required for ``base="natural"``.
    base : {"natural", "pow2"}
        ``"pow2"`` fixes eta0 = ln2 / 2**frac_bits so decoding is a shift plus a 2**frac_bits-entry table.
    frac_bits : int, optional
        m in 0..16, required for ``base="pow2"``.

    Raises
    ------
    SpecError
        For any value outside those ranges, or a ladder deeper than ``MAX_LADDER_DEPTH`` nepers.
    """

    bits: int
    eta0: float | None = None
    base: Base | str = Base.NATURAL
    frac_bits: int | None = None

    def __post_init__(self):
        _set(self, "bits", check_int("bits", self.bits, 2, 24))
        _set(self, "base", check_enum("base", self.base, Base))
        if self.base is Base.NATURAL:
            if self.frac_bits is not None:
                raise SpecError(f"frac_bits applies only to base='pow2', not to base='natural' (got {self.frac_bits!r})")
            if self.eta0 is None:
                raise SpecError("eta0 must be given for base='natural' (a finite number in (0, 1])")
            _set(self, "eta0", check_positive("eta0", self.eta0, 1.0))
        else:
            m = check_int("frac_bits", self.frac_bits, 0, 16)
            _set(self, "frac_bits", m)
            eta0 = LN2 / 2**m
            if self.eta0 is not None and not math.isclose(self.eta0, eta0, rel_tol=RUNG_TOLERANCE):
                raise SpecError(f"eta0 must be ln2/2**frac_bits = {eta0:.9g} for base='pow2', not {self.eta0!r}")
            _set(self, "eta0", eta0)
        depth = self.code_max * self.eta0
        if depth > MAX_LADDER_DEPTH:
            raise SpecError(
                f"bits={self.bits} with eta0={self.eta0:.6g} gives a ladder {depth:.6g} nepers deep; "
                f"(2**bits - 1) * eta0 must be at most {MAX_LADDER_DEPTH:g}: lower bits or eta0"
            )

    @property
    def code_max(self) -> int:
        """Largest code, 2**bits - 1 (the smallest weight magnitude)."""
        return 2**self.bits - 1

    @property
    def levels(self) -> int:
        """Number of rungs on the ladder, 2**bits."""
        return 2**self.bits

    @property
    def rung_ratio(self) -> float:
        """Ratio of neighbouring weight magnitudes, exp(-eta0)."""
        return math.exp(-self.eta0)

    @property
    def dynamic_range(self) -> float:
        """Largest over smallest weight magnitude, exp((2**bits - 1) * eta0)."""
        return math.exp(self.code_max * self.eta0)

    @property
    def code_dtype(self) -> str:
        """Narrowest unsigned NumPy dtype holding a code k."""
        return _narrowest_uint(self.bits)

    @property
    def packed_dtype(self) -> str:
        """Narrowest unsigned NumPy dtype holding sign and code packed as ``sign << bits | k``."""
        return _narrowest_uint(self.bits + 1)

    def describe(self) -> str:
        """A short human-readable name, e.g. ``B=12 eta0=0.001`` or ``B=12 pow2 m=10``."""
        if self.base is Base.POW2:
            return f"B={self.bits} pow2 m={self.frac_bits}"
        return f"B={self.bits} eta0={self.eta0:g}"


def _narrowest_uint(bits: int) -> str:
    for width in (8, 16, 32):
        if bits <= width:
            return f"uint{width}"
    raise SpecError(f"bits must fit in 32, not {bits!r}")


@dataclass(frozen=True)
class MadamConfig:
    """The B-bit Madam optimiser and its datapath precision.

    Parameters
    ----------
    eta : float
        Typical relative step (learning rate); a whole multiple of the format's eta0.
    eta_star : float
        Largest relative step; a whole multiple of eta0, at least eta. The paper's clamp of g/gbar at
        eta_star/eta is a clamp of the rung step at eta_star/eta0.
    beta_shift : int
        s in 1..16, with beta = 1 - 2**-s for the second-moment EMA (s=10 gives 0.99902).
    bias_correction : bool
        Divide the EMA by 1 - beta**t, as the authors' code does.
    grad_format : {"bfloat16", "float16", "float32"}
        Format of the gradient bit patterns entering the update.
    state_bits : int
        Width of the per-element second-moment state word (pseudo-float: exponent + mantissa), up to 32.
    log_frac_bits : int
        F in 8..20: fractional bits of the log-domain ratio.
    table_index_bits : int
        a in 3..12: the log and antilog tables have 2**a + 1 entries each and are linearly interpolated.
    """

    eta: float = 0.01
    eta_star: float = 0.08
    beta_shift: int = 10
    bias_correction: bool = True
    grad_format: GradFormat | str = GradFormat.BFLOAT16
    state_bits: int = 32
    log_frac_bits: int = 16
    table_index_bits: int = 7

    def __post_init__(self):
        _set(self, "eta", check_positive("eta", self.eta, 1.0))
        _set(self, "eta_star", check_positive("eta_star", self.eta_star, 16.0))
        if self.eta_star < self.eta:
            raise SpecError(f"eta_star must be at least eta={self.eta!r}, not {self.eta_star!r}")
        _set(self, "beta_shift", check_int("beta_shift", self.beta_shift, 1, 16))
        _set(self, "bias_correction", check_bool("bias_correction", self.bias_correction))
        _set(self, "grad_format", check_enum("grad_format", self.grad_format, GradFormat))
        _set(self, "log_frac_bits", check_int("log_frac_bits", self.log_frac_bits, 8, 20))
        _set(self, "table_index_bits", check_int("table_index_bits", self.table_index_bits, 3, 12))
        if self.table_index_bits > self.log_frac_bits + 1:
            raise SpecError(
                f"table_index_bits must be at most log_frac_bits + 1 = {self.log_frac_bits + 1}, "
                f"not {self.table_index_bits!r}"
            )
        lo = self.state_exp_bits + self.beta_shift + 8
        if lo > 32:
            raise SpecError(
                f"beta_shift must be at most {32 - 8 - self.state_exp_bits} with grad_format "
                f"{self.grad_format.value!r} (the 32-bit state needs a {self.state_exp_bits}-bit exponent and a "
                f"mantissa of beta_shift + 8 bits), not {self.beta_shift!r}"
            )
        _set(self, "state_bits", check_int("state_bits", self.state_bits, lo, 32))

    @classmethod
    def from_rungs(cls, fmt: LNSFormat, eta_rungs: int = 10, eta_star_rungs: int = 80, **kwargs) -> "MadamConfig":
        """A config whose eta and eta_star are the given whole numbers of the format's rungs.

        Convenient for ``base="pow2"``, where eta0 = ln2/2**m is not a round decimal.
        """
        eta_rungs = check_int("eta_rungs", eta_rungs, 1, MAX_STEP_RUNGS)
        eta_star_rungs = check_int("eta_star_rungs", eta_star_rungs, 1, MAX_STEP_RUNGS)
        return cls(eta=eta_rungs * fmt.eta0, eta_star=eta_star_rungs * fmt.eta0, **kwargs)

    @property
    def beta(self) -> float:
        """EMA coefficient 1 - 2**-beta_shift."""
        return 1.0 - 2.0**-self.beta_shift

    @property
    def state_exp_bits(self) -> int:
        """Exponent field width of the second-moment state, enough for every finite gradient squared."""
        g = self.grad_format
        # Largest term exponent (docs/datapath.md, stage 2), plus growth of v over the term by 2**s, plus slack.
        term_exp_max = 2 * (g.exp_field_max - 1) + 1 + 2 * g.man_bits - 1
        return (term_exp_max + self.beta_shift + 2).bit_length()

    @property
    def state_man_bits(self) -> int:
        """Mantissa field width of the second-moment state."""
        return self.state_bits - self.state_exp_bits

    @property
    def ratio_precision(self) -> float:
        """Relative error of the datapath's ratio ``r * |g| / sqrt(vhat)`` (an empirical model, not a proof).

        ``2**-2a / 4`` (chords of the interpolated log and antilog tables) ``+ 2 * 2**-F`` (log-domain
        rounding) ``+ 2 * 2**-WM`` (EMA rounding) ``+ 2**-16`` (float32 gradients truncated to 16
        significant bits).
        """
        rel = 2.0 ** (-2 * self.table_index_bits) / 4 + 2 * 2.0**-self.log_frac_bits + 2 * 2.0**-self.state_man_bits
        return rel + (2.0**-16 if self.grad_format is GradFormat.FLOAT32 else 0.0)

    @property
    def max_step_rungs(self) -> int:
        """Largest eta_star, in rungs, this datapath resolves: ``floor(ONE_RUNG_BUDGET / ratio_precision)``
        (10,810 for the defaults)."""
        return math.floor(ONE_RUNG_BUDGET / self.ratio_precision)


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
    def state_exp_max(self) -> int:
        """Largest value of the state's exponent field."""
        return 2**self.cfg.state_exp_bits - 1

    @property
    def state_exp_offset(self) -> int:
        """E0 in v = M * 2**(E - E0): chosen so the smallest non-zero gradient's EMA term has E = 1."""
        g = self.cfg.grad_format
        return 2 * g.bias + self.cfg.state_man_bits + self.cfg.beta_shift + 2 * g.man_bits - 2

    def table_bits(self) -> dict:
        """Bits of ROM per table of the update datapath (entries x width), see lnsim.tables."""
        from lnsim import tables

        return tables.table_bits(self)

    def to_dict(self) -> dict:
        """The constructor arguments of the format and config, as plain JSON-able values (see :meth:`from_dict`)."""
        f, c = self.fmt, self.cfg
        return {
            "bits": f.bits,
            "base": f.base.value,
            "eta0": f.eta0,
            "frac_bits": f.frac_bits,
            "eta": c.eta,
            "eta_star": c.eta_star,
            "beta_shift": c.beta_shift,
            "bias_correction": c.bias_correction,
            "grad_format": c.grad_format.value,
            "state_bits": c.state_bits,
            "log_frac_bits": c.log_frac_bits,
            "table_index_bits": c.table_index_bits,
        }

    @classmethod
    def from_dict(cls, d: dict) -> "Spec":
        """Rebuild (and validate) the :class:`Spec` that :meth:`to_dict` described."""
        if d["base"] == Base.POW2.value:
            fmt = LNSFormat(bits=d["bits"], base=d["base"], frac_bits=d["frac_bits"])
        else:
            fmt = LNSFormat(bits=d["bits"], eta0=d["eta0"])
        keys = ("eta", "eta_star", "beta_shift", "bias_correction", "grad_format", "state_bits", "log_frac_bits",
                "table_index_bits")
        return cls(fmt, MadamConfig(**{key: d[key] for key in keys}))

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
            "table_bits": self.table_bits(),
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


def _whole_rungs(name: str, value: float, fmt: LNSFormat) -> int:
    rungs = value / fmt.eta0
    whole = round(rungs)
    if whole < 1 or abs(rungs - whole) > RUNG_TOLERANCE * max(1.0, rungs):
        lo, hi = max(1, math.floor(rungs)), max(1, math.ceil(rungs))
        options = f"{lo * fmt.eta0:.9g} ({lo} rungs)" + (f" or {hi * fmt.eta0:.9g} ({hi} rungs)" if hi != lo else "")
        raise SpecError(
            f"{name} must be a whole multiple of eta0={fmt.eta0:.9g}, not {value!r} ({rungs:.6g} rungs); "
            f"nearest: {options}"
        )
    return int(whole)
