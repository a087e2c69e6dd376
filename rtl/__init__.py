"""Amaranth RTL of the B-bit Madam update unit and the LNS weight decoder (docs/rtl.md).

Built from :mod:`lnsim.spec` and :mod:`lnsim.tables` only (never from the golden model), bit for bit as
docs/datapath.md.
"""

from .baseline import LinearUpdateUnit
from .decode_unit import DecodeUnit
from .update_engine import UpdateEngine
from .update_unit import UpdateUnit
from .verilog import generate_decoder_verilog, generate_verilog

__all__ = ["UpdateUnit", "DecodeUnit", "LinearUpdateUnit", "generate_verilog", "generate_decoder_verilog",
           "UpdateEngine"]
