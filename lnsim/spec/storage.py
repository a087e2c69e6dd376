"""What one weight stores: :class:`BitsPerWeight` and :func:`bits_per_weight`, the one account of it.

Per weight (one element of a tensor) the design keeps the B-bit code ``k``, the frozen sign bit ``sw`` and
the ``state_bits``-wide second-moment word ``st`` (docs/datapath.md, "Per-element inputs and outputs").
Per tensor it keeps ``sigma_star`` (the decoder's ``(es, mus)``) and the step counter ``t``, from which the
host computes the per-step scalars ``log_eta`` and ``log_bc``; those are shared by all of a tensor's
weights and are not part of the per-weight count. The count is of stored information, not of the
simulator's containers (uint8 signs, uint16 codes, uint32 state words).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lnsim.spec.core import Spec

__all__ = ["BitsPerWeight", "bits_per_weight"]


@dataclass(frozen=True)
class BitsPerWeight:
    """Bits stored per weight: the code (``weight``), the frozen ``sign`` and the optimiser ``state``."""

    #: The code k: B bits.
    weight: int
    #: The frozen sign bit.
    sign: int
    #: The second-moment state word: ``state_bits``.
    state: int

    @property
    def total(self) -> int:
        """weight + sign + state."""
        return self.weight + self.sign + self.state

    def to_dict(self) -> dict:
        """``{"weight", "sign", "state", "total"}`` as ints (the ``bits_per_weight`` of ``lnsim info --json``)."""
        return {"weight": self.weight, "sign": self.sign, "state": self.state, "total": self.total}

    def describe(self) -> str:
        """One line, e.g. ``"45 = weight 12 + sign 1 + state 32"``."""
        return f"{self.total} = weight {self.weight} + sign {self.sign} + state {self.state}"


def bits_per_weight(spec: "Spec") -> BitsPerWeight:
    """The bits one weight of ``spec`` stores (:class:`BitsPerWeight`); also :attr:`lnsim.spec.Spec.bits_per_weight`.

    ``weight`` is ``fmt.bits`` (B), ``sign`` 1 (every weight carries its frozen sign), ``state``
    ``cfg.state_bits``. Per-tensor words (``sigma_star``, the step counter) are left out (module docstring).
    """
    return BitsPerWeight(weight=spec.fmt.bits, sign=1, state=spec.cfg.state_bits)
