"""The golden model: Numba bit-true kernels of the B-bit Madam datapath (docs/datapath.md)."""

from lnsim.golden.datapath import decode_bf16, grad_dtype, sigma_star_fixed, update_inplace, update_trace
from lnsim.golden.madam import GoldenMadam, StepStats
from lnsim.golden.fused import FusedMadam

__all__ = ["FusedMadam", "GoldenMadam", "StepStats", "decode_bf16", "grad_dtype", "sigma_star_fixed", "update_inplace", "update_trace"]
