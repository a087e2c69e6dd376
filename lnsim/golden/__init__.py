"""The golden model: Numba bit-true kernels of the B-bit Madam datapath (docs/datapath.md).

The API (exported here): :mod:`~lnsim.golden.datapath` (validated calls over flat arrays),
:mod:`~lnsim.golden.madam` (:class:`GoldenMadam`, one tensor) and :mod:`~lnsim.golden.fused`
(:class:`FusedMadam`, the trainer's one call per step). The kernels below it: :mod:`~lnsim.golden.element`
(the element form, every stage value; the reference loop), :mod:`~lnsim.golden.lean` (the int32 form that
vectorises, with its intrinsics and tables), :mod:`~lnsim.golden.loops` (the loops generated and cached per
datapath), :mod:`~lnsim.golden.decoder` (the weight decoder) and :mod:`~lnsim.golden.lut` (table lookups as
register permutes).
"""

from lnsim.golden.datapath import decode_bf16, grad_dtype, sigma_star_fixed, update_inplace, update_trace, update_trace_arrays
from lnsim.golden.madam import GoldenMadam, StepStats
from lnsim.golden.fused import FusedMadam

__all__ = ["FusedMadam", "GoldenMadam", "StepStats", "decode_bf16", "grad_dtype", "sigma_star_fixed", "update_inplace", "update_trace", "update_trace_arrays"]
