"""lnsim: a bit-accurate simulator of B-bit Madam on logarithmic-number-system weights."""

from lnsim.codecs import bits_to_grad, decode, encode, grad_to_bits, pack, unpack
from lnsim.golden import GoldenMadam, StepStats, decode_bf16
from lnsim.spec import Base, GradFormat, LNSFormat, MadamConfig, Spec, SpecError

__version__ = "0.1.0"

__all__ = [
    "Base",
    "GoldenMadam",
    "GradFormat",
    "LNSFormat",
    "MadamConfig",
    "Spec",
    "SpecError",
    "StepStats",
    "bits_to_grad",
    "decode",
    "decode_bf16",
    "encode",
    "grad_to_bits",
    "pack",
    "unpack",
]
