"""Every constant and width of the update datapath, derived from one spec: the one place widths come from."""

from __future__ import annotations

from amaranth.hdl import signed, unsigned
from amaranth.lib import data

from lnsim import tables
from lnsim.spec import Spec

__all__ = ["Widths"]


class Widths:
    """Every constant and port width of the update datapath, derived from one :class:`~lnsim.spec.Spec`.

    Attribute names are those of docs/datapath.md ("Parameters and derived constants", "Bit widths"). The
    stages, :class:`~lnsim_rtl.UpdateUnit`, the Verilog header and the benches all read their widths here.

    Raises
    ------
    TypeError
        If ``spec`` is not a :class:`~lnsim.spec.Spec`.
    """

    def __init__(self, spec: Spec):
        if not isinstance(spec, Spec):
            raise TypeError(f"spec must be an lnsim.spec.Spec, not {spec!r}")
        g, c = spec.cfg.grad_format, spec.cfg
        self.spec = spec
        #: Gradient format: width, exponent bits, mantissa bits, exponent field of Inf/NaN.
        self.W, self.EB, self.MB, self.EMAXF = g.width, g.exp_bits, g.man_bits, g.exp_field_max
        #: Second-moment state: exponent bits, mantissa bits, word width, largest exponent.
        self.WE, self.WM = c.state_exp_bits, c.state_man_bits
        self.state_bits = c.state_bits
        self.EMAX = spec.state_exp_max
        self.s, self.F, self.a = c.beta_shift, c.log_frac_bits, c.table_index_bits
        #: Code width, largest code, largest rung step.
        self.B, self.KMAX, self.SSTAR = spec.fmt.bits, spec.fmt.code_max, spec.eta_star_rungs
        # Port shapes of the stages.
        self.en = signed(self.EB + 1)
        self.n = unsigned(self.SSTAR.bit_length())
        self.X = signed(self.F + 8)
        self.Y = signed(self.F + 9)
        self.log_eta = unsigned(self.F + 6)
        self.log_bc = unsigned(self.F + 5)
        #: Entry widths of the log and antilog tables (the widest entry of the generated tables).
        self.log_entry = self.F + 1
        self.antilog_entry = tables.ANTILOG_FRAC_BITS + 2
        #: One lane's input payload (docs/rtl.md), from the LSB: ``sw`` (1), ``k`` (B), ``g`` (W), ``st``.
        self.lane_in = data.StructLayout({"sw": 1, "k": self.B, "g": self.W, "st": self.state_bits})
        #: One lane's output payload, from the LSB: ``k`` (B), ``st`` (state_bits), ``nan`` (1), ``inf`` (1).
        self.lane_out = data.StructLayout({"k": self.B, "st": self.state_bits, "nan": 1, "inf": 1})
