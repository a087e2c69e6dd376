"""The optimiser: :class:`MadamConfig`, B-bit Madam's step sizes, second-moment EMA and datapath precision."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from lnsim.spec.formats import GradFormat, LNSFormat, _set
from lnsim.spec.schema import bounds, field_options, option
from lnsim.validation import SpecError, check_bool, check_enum, check_int, check_positive

__all__ = ["MAX_STEP_RUNGS", "ONE_RUNG_BUDGET", "DEFAULT_ETA", "DEFAULT_STAR_FACTOR", "MadamConfig"]

#: Largest clamp in rungs (``eta_star / eta0``) the antilog stage can produce; see docs/datapath.md.
MAX_STEP_RUNGS = 2**22 - 1

#: Largest :attr:`Spec.precision_budget` (estimated worst error of a rung step, in rungs) a valid spec may
#: have. Under it every update was found within one rung of float Madam (tests/test_properties.py); the
#: first failures, two rungs off, appeared at budgets of about 1.5.
ONE_RUNG_BUDGET = 0.5

#: The learning rate eta aims at when none is given (rounded to whole rungs by :meth:`Spec.from_options`).
DEFAULT_ETA = 0.01
#: eta_star / eta when eta_star is not given.
DEFAULT_STAR_FACTOR = 8


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

    eta: float = field(default=DEFAULT_ETA, metadata=option(
        name="eta", kind=float, range="(0, 1], a multiple of eta0", bounds=(0.0, 1.0), unit="nepers",
        derived=f"the whole rungs nearest {DEFAULT_ETA}",
        help=f"learning rate, a multiple of eta0 (default: the whole rungs nearest {DEFAULT_ETA})"))
    eta_star: float = field(default=DEFAULT_STAR_FACTOR * DEFAULT_ETA, metadata=option(
        name="eta_star", kind=float, range="(0, 16], a multiple of eta0, >= eta", bounds=(0.0, 16.0), unit="nepers",
        derived=f"{DEFAULT_STAR_FACTOR} x eta, at most the ladder",
        help=f"largest step, a multiple of eta0 (default {DEFAULT_STAR_FACTOR} x eta, at most the ladder)"))
    beta_shift: int = field(default=10, metadata=option(
        name="beta_shift", kind=int, bounds=(1, 16), help="s, beta = 1 - 2**-s, {range} (default {default})"))
    bias_correction: bool = field(default=True, metadata=option(
        name="bias_correction", kind=bool, range="true, false", flag="--no-bias-correction",
        help="do not divide the EMA by 1 - beta**t"))
    grad_format: GradFormat | str = field(default=GradFormat.BFLOAT16, metadata=option(
        name="grad_format", kind=str, range="bfloat16, float16, float32", help="bfloat16 (default), float16 or float32"))
    state_bits: int = field(default=32, metadata=option(
        name="state_bits", kind=int, range="exponent + beta_shift + 8 .. 32", unit="bits",
        help="second-moment state width (default {default})"))
    log_frac_bits: int = field(default=16, metadata=option(
        name="log_frac_bits", kind=int, bounds=(8, 20), unit="bits",
        help="F, log-domain fraction bits (default {default})"))
    table_index_bits: int = field(default=7, metadata=option(
        name="table_index_bits", kind=int, range="3..12, at most log_frac_bits + 1", bounds=(3, 12), unit="bits",
        help="a, log/antilog table index bits (default {default})"))

    def __post_init__(self):
        _set(self, "eta", check_positive("eta", self.eta, _BOUNDS["eta"][1]))
        _set(self, "eta_star", check_positive("eta_star", self.eta_star, _BOUNDS["eta_star"][1]))
        if self.eta_star < self.eta:
            raise SpecError(f"eta_star must be at least eta={self.eta!r}, not {self.eta_star!r}")
        _set(self, "beta_shift", check_int("beta_shift", self.beta_shift, *_BOUNDS["beta_shift"]))
        _set(self, "bias_correction", check_bool("bias_correction", self.bias_correction))
        _set(self, "grad_format", check_enum("grad_format", self.grad_format, GradFormat))
        _set(self, "log_frac_bits", check_int("log_frac_bits", self.log_frac_bits, *_BOUNDS["log_frac_bits"]))
        _set(self, "table_index_bits", check_int("table_index_bits", self.table_index_bits, *_BOUNDS["table_index_bits"]))
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


#: (lo, hi) of each bounded option of the config, from its metadata.
_BOUNDS = bounds(field_options(MadamConfig))
