"""lnsim synth --unit engine: the engine's depth checked once, its memory in block RAM, its capacity per target."""

from __future__ import annotations

import re

import pytest

from lnsim import fpga
from lnsim.cli import main
from lnsim.fpga.capacity import bram_blocks, max_rows, step_cycles, system_numbers, word_bits
from lnsim.spec import LNSFormat, Spec
from lnsim.validation import SpecError

SPEC8 = Spec(LNSFormat(bits=8, eta0=0.01))
SPEC12 = Spec.from_options(bits=12)


@pytest.fixture(scope="module")
def ecp5_engine_1024():
    """One ``lnsim synth --unit engine --depth 1024 --no-place`` run at B = 8 on ECP5 (about 25 s), shared."""
    return fpga.synthesize(SPEC8, target="ecp5-25k", unit="engine", depth=1024, place=False, timeout=900)


@pytest.mark.hw
def test_engine_memory_is_in_block_ram(ecp5_engine_1024):
    r = ecp5_engine_1024
    # 1,024 rows of 41 bits: three 1K x 18 DP16KDs, as computed; the unit's own cells, and nextpnr's packing.
    assert word_bits(SPEC8) == 41
    assert r["brams"] == bram_blocks(fpga.TARGETS["ecp5-25k"].bram, 1024, 41) == 3
    assert r["cells"]["DP16KD"] == 3
    assert r["device_utilization"]["DP16KD"] == [3, 56]
    assert r["fits"] is True and r["placed"] is False and r["depth"] == 1024 and r["unit"] == "engine"
    assert fpga.format_report(r).splitlines()[1] == "unit              engine, B=8, 1 lane(s), 1024 rows"


@pytest.mark.hw
@pytest.mark.slow
def test_engine_of_4096_rows_places_and_routes_on_ecp5():
    r = fpga.synthesize(SPEC12, target="ecp5-25k", unit="engine", depth=4096, timeout=3600)
    assert r["placed"] and r["fits"]
    assert r["brams"] == bram_blocks(fpga.TARGETS["ecp5-25k"].bram, 4096, 45) == 10
    assert r["fmax_mhz"] > 0 and r["critical_path"]["steps"]


@pytest.mark.parametrize("argv, message", [
    (["--unit", "engine"], "depth must be given with --unit engine, and only then"),
    (["--depth", "64"], "depth must be given with --unit engine, and only then"),
    (["--unit", "engine", "--depth", "0"], "depth must be an integer in 1..1048576, not 0"),
    (["--unit", "engine", "--depth", "x"], "depth must be an integer in 1..1048576, not 'x'"),
])
def test_cli_depth_errors(argv, message, capsys):
    assert main(["synth", *argv]) == 2
    assert capsys.readouterr().err == f"lnsim: error: {message}\n"


def test_synthesize_refuses_a_bad_depth_before_any_work(tmp_path):
    workdir = tmp_path / "run"
    with pytest.raises(SpecError, match=f"^{re.escape('depth must be an integer in 1..1048576, not 1048577')}$"):
        fpga.synthesize(SPEC8, target="ecp5-25k", unit="engine", depth=2**20 + 1, workdir=str(workdir))
    assert not workdir.exists()
    assert fpga.check_synth_options(target="ecp5-25k", unit="engine", depth=4096)["depth"] == 4096


@pytest.mark.parametrize("target, rows, bits, blocks", [
    ("ecp5-25k", 4096, 45, 10),  # 2K x 9: 5 wide, 2 deep
    ("ecp5-25k", 1024, 41, 3),  # 1K x 18
    ("ice40-up5k", 4096, 45, 46),  # 2K x 2: 23 wide, 2 deep
    ("ice40-up5k", 2560, 45, 30),  # 512 x 8: 6 wide, 5 deep
    ("gatemate-a1", 4096, 45, 9),  # 20-kbit halves of 4K x 5, as Yosys maps it
])
def test_bram_blocks(target, rows, bits, blocks):
    assert bram_blocks(fpga.TARGETS[target].bram, rows, bits) == blocks


def test_system_numbers_of_the_b12_engine():
    n = system_numbers(SPEC12, "ecp5-25k", fmax_mhz=150.0)
    bram = fpga.TARGETS["ecp5-25k"].bram
    # 56 DP16KDs of 2K x 9 hold 11 columns of five: 22,528 rows of 45 bits.
    assert n["word_bits"] == 45 and n["max_rows"] == max_rows(bram, 45) == 22528
    assert bram_blocks(bram, n["max_rows"], 45) <= 56 < bram_blocks(bram, n["max_rows"] + 1, 45)
    assert n["brams_per_million"] == 2445  # 489 columns of five 2K x 9 blocks
    assert n["updates_per_s"] == 150e6
    assert n["step_s"] == pytest.approx(step_cycles(22528) / 150e6) and step_cycles(22528) == 22528 + 21
    assert system_numbers(SPEC12, "ice40-up5k", fmax_mhz=50.0)["max_rows"] == 2560


@pytest.mark.parametrize("length", [2, 8])
def test_step_cycles_is_the_engines_period(length):
    # Amaranth's simulator: both streams never pause; a step's first beat is accepted every step_cycles.
    from amaranth.sim import Simulator
    from lnsim_rtl import UpdateEngine

    dut = UpdateEngine(SPEC8, 8)
    accepted = []

    async def bench(ctx):
        ctx.set(dut.s_axis_tvalid, 1)
        ctx.set(dut.m_axis_tready, 1)
        ctx.set(dut.length, length)
        for cycle in range(4 * (length + 30)):
            if ctx.get(dut.s_axis_tready):
                accepted.append(cycle)
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    firsts = accepted[::length]
    assert len(firsts) >= 3
    assert {b - a for a, b in zip(firsts, firsts[1:])} == {step_cycles(length)}
