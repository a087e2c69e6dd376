"""The weight ladder: :class:`LNSFormat` (``w = sign * sigma_star * exp(-k * eta0)``) and the two enumerations
of the spec, :class:`Base` and :class:`GradFormat`."""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field

from lnsim.spec.schema import bounds, field_options, option
from lnsim.validation import SpecError, check_enum, check_int, check_positive

__all__ = ["LN2", "MAX_LADDER_DEPTH", "RUNG_TOLERANCE", "DEFAULT_ETA0", "Base", "GradFormat", "LNSFormat"]

LN2 = math.log(2.0)

#: Deepest ladder allowed, in nepers: ``(2**bits - 1) * eta0 <= MAX_LADDER_DEPTH``.  e**-80 is about
#: 2**-115, which keeps the smallest weight of a ladder with ``sigma_star`` up to 2**12 inside bfloat16's
#: normal range, where the weight decoder works.
MAX_LADDER_DEPTH = 80.0

#: Relative tolerance when checking that eta and eta_star are whole multiples of eta0.
RUNG_TOLERANCE = 1e-6

#: eta0 of the natural base when none is given.
DEFAULT_ETA0 = 0.001


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

    bits: int = field(metadata=option(
        name="bits", kind=int, default=12, bounds=(2, 24), help="code width B, {range} (default {default})"))
    eta0: float | None = field(default=None, metadata=option(
        name="eta0", kind=float, default=DEFAULT_ETA0, range="(0, 1]", bounds=(0.0, 1.0), unit="nepers",
        help="base precision, natural base (default {default})"))
    base: Base | str = field(default=Base.NATURAL, metadata=option(
        name="base", kind=str, range="natural, pow2", help="'natural' (eta0) or 'pow2' (eta0 = ln2/2**frac-bits)"))
    frac_bits: int | None = field(default=None, metadata=option(
        name="frac_bits", kind=int, bounds=(0, 16), help="m for --base pow2, {range}"))

    def __post_init__(self):
        _set(self, "bits", check_int("bits", self.bits, *_BOUNDS["bits"]))
        _set(self, "base", check_enum("base", self.base, Base))
        if self.base is Base.NATURAL:
            if self.frac_bits is not None:
                raise SpecError(f"frac_bits applies only to base='pow2', not to base='natural' (got {self.frac_bits!r})")
            if self.eta0 is None:
                raise SpecError("eta0 must be given for base='natural' (a finite number in (0, 1])")
            _set(self, "eta0", check_positive("eta0", self.eta0, _BOUNDS["eta0"][1]))
        else:
            if self.frac_bits is None:
                lo, hi = _BOUNDS["frac_bits"]
                raise SpecError(f"base='pow2' needs frac_bits, the m of eta0 = ln2/2**m: an integer in {lo}..{hi}")
            m = check_int("frac_bits", self.frac_bits, *_BOUNDS["frac_bits"])
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
    def half_ladder(self) -> int:
        """Half the ladder in rungs, (2**bits - 1) // 2: the largest step a fidelity measurement takes."""
        return self.code_max // 2

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


#: (lo, hi) of each bounded option of the format, from its metadata.
_BOUNDS = bounds(field_options(LNSFormat))
