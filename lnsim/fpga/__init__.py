"""FPGA cost of a unit: synthesis (Yosys) and place-and-route (nextpnr) with the YoWASP builds, and the report.

Generates the netlist (RTLIL) of :class:`lnsim_rtl.UpdateUnit` (or the fixed-point baseline
:class:`lnsim_rtl.LinearUpdateUnit`), wraps it in a five-pin harness (serial shift registers feed every
input port and capture every output port, so the unit's ports need no pins and nothing is optimised away),
synthesises it with Yosys and places and routes it with nextpnr, in a temporary directory; on ECP5 the
flip-flops that register a multiplier's product first go into the ``MULT18X18D``'s own output register
(:func:`pack_mult_output_registers`), which ``synth_ecp5`` does not do. The report holds the unit's own cells
(Yosys keeps it as a separate module: LUTs, flip-flops, block RAMs, DSPs), the whole device's utilisation and
whether the unit fits, Fmax and the critical path (nextpnr), the placement seed and the tool versions. Without
placement (nextpnr's packing only) or after a failed one (:class:`PlacementError`) the report stops at the
cells, the utilisation and whether it fits. See docs/hardware.md.

One module per job: :mod:`~lnsim.fpga.targets` (the FPGAs), :mod:`~lnsim.fpga.design` (the unit's netlist and
the harness), :mod:`~lnsim.fpga.tools` (running the tools), :mod:`~lnsim.fpga.parsers` (their logs and
reports), :mod:`~lnsim.fpga.packing` (the ECP5 multiplier packing), :mod:`~lnsim.fpga.flow` (a run),
:mod:`~lnsim.fpga.report` and :mod:`~lnsim.fpga.sweep` (the text, the sweep's CSV and plot). Nothing here
imports amaranth, matplotlib or the YoWASP packages until a run needs them.
"""

from lnsim.fpga.design import build_unit, harness_verilog, rtlil_netlist
from lnsim.fpga.flow import SYNTH_OPTIONS, check_synth_options, synthesize
from lnsim.fpga.packing import pack_mult_output_registers
from lnsim.fpga.parsers import (overfull, parse_nextpnr_log, parse_nextpnr_report, parse_utilisation, parse_yosys_stat,
                                path_summary, unit_cost)
from lnsim.fpga.report import format_fit, format_report
from lnsim.fpga.sweep import (SWEEP_BITS, SWEEP_CSV_FIELDS, SWEEP_LANES, check_sweep_jobs, format_sweep_row, plot_sweep,
                              run_sweep, sweep_points, sweep_row, write_sweep_csv)
from lnsim.fpga.targets import MAX_LANES, TARGETS, UNITS, Target, bel_order
from lnsim.fpga.tools import PlacementError, SynthError, netlist_verilog, tool_versions

__all__ = ["TARGETS", "UNITS", "MAX_LANES", "SYNTH_OPTIONS", "Target", "bel_order", "SynthError", "PlacementError",
           "check_synth_options", "synthesize", "parse_yosys_stat", "unit_cost", "parse_utilisation", "overfull",
           "parse_nextpnr_log", "parse_nextpnr_report", "path_summary", "pack_mult_output_registers", "build_unit",
           "harness_verilog", "rtlil_netlist", "netlist_verilog", "tool_versions", "format_report", "format_fit",
           "SWEEP_BITS", "SWEEP_LANES", "SWEEP_CSV_FIELDS", "sweep_points", "sweep_row", "check_sweep_jobs",
           "run_sweep", "format_sweep_row", "write_sweep_csv", "plot_sweep"]
