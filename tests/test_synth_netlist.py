"""Gate-level co-simulation: ``lnsim synth``'s ECP5 netlist of the update unit against the golden model, bit for bit.

A real ``lnsim synth --target ecp5-25k`` run (Yosys ``synth_ecp5``, the multiplier packing, nextpnr) leaves the
unit's netlist as Yosys wrote it (``top.json``) and as nextpnr reads it after
:func:`lnsim.fpga.pack_mult_output_registers` (``packed.json``). Each is written back as structural Verilog
(:func:`lnsim.fpga.netlist_verilog`), simulated in Verilator with Yosys's ECP5 cell models and the repository's
``MULT18X18D`` model (:mod:`lnsim_testbenches.netlist`), and driven by the update-unit bench
(``testbenches/update_unit_tb.py``: random vectors with NaN, Inf, zero and subnormal gradients and random stalls
on both streams, directed corners, resets mid-stream). A deliberately broken packing must mismatch, and the
multiplier model must refuse a configuration it does not model. ``-m slow`` runs more vectors, the exhaustive
gradient set and the B = 12 unit.
"""

from __future__ import annotations

import json

import pytest

from lnsim import fpga
from lnsim.spec import LNSFormat, Spec
from lnsim_rtl.update_unit import LATENCY
from lnsim_testbenches import netlist, runner

from conftest import ECP5_B8_SPEC as SPEC
from cosim_checks import assert_clean

# Every test here builds or runs Verilator (pytest -m "not hw" leaves them out).
pytestmark = pytest.mark.hw

UNIT_BENCH = "lnsim_testbenches.update_unit_tb"
MODULE = "lnsim_update_unit"
TESTS = ["random_vectors", "directed_corners", "reset_mid_stream"]


def _synth(spec, workdir):
    return fpga.synthesize(spec, target="ecp5-25k", workdir=str(workdir), timeout=900)


def _mults(workdir, json_name):
    cells = json.loads((workdir / json_name).read_text())["modules"][MODULE]["cells"]
    return [c for c in cells.values() if c["type"] == "MULT18X18D"]


def _simulate(spec, workdir, json_name, out_dir, *, tests=TESTS, vectors=20_000, reset_vectors=2048, seed=1):
    """Build the netlist ``json_name`` of ``workdir`` (cached) and run the update-unit bench on it."""
    verilog = fpga.netlist_verilog(workdir, json_name, MODULE, json_name.removesuffix(".json") + ".v")
    build = netlist.build_netlist(verilog, MODULE)
    params = {"spec": spec.to_dict(), "lanes": 1, "vectors": vectors, "seed": seed, "latency": LATENCY,
              "stalls": "random", "reset_vectors": reset_vectors}
    return runner.run(build, UNIT_BENCH, testcase=tests, params=params, out_dir=out_dir)


def _assert_bit_identical(results, tests):
    """The RTL co-simulation's checks (no mismatch, no protocol error, the unit's latency), and every coverage bin."""
    assert_clean(results, tests, LATENCY)
    for name in set(tests) & {"random_vectors", "directed_corners"}:
        missed = [b for b, n in results["tests"][name]["coverage"].items() if n == 0]
        assert not missed, f"{name} never reached {missed}"


# The packed netlist is the one that goes on the chip; the unpacked one (40 s more) runs under -m slow.
@pytest.mark.parametrize("json_name", ["packed.json", pytest.param("top.json", marks=pytest.mark.slow)],
                         ids=["packed", "unpacked"])
def test_ecp5_netlist_is_bit_identical_to_the_golden_model(json_name, ecp5_b8_run, tmp_path):
    workdir, report = ecp5_b8_run
    registered = ["CLK0" if json_name == "packed.json" else "NONE"] * 3
    assert [m["parameters"].get("REG_OUTPUT_CLK", "NONE") for m in _mults(workdir, json_name)] == registered
    assert report["packed_mult_registers"]["mults"] == 3
    results = _simulate(SPEC, workdir, json_name, tmp_path)
    _assert_bit_identical(results, TESTS)
    t = results["tests"]
    assert t["random_vectors"]["vectors"] == 20_000 and t["reset_mid_stream"]["resent_beats"] > 0
    assert t["directed_corners"]["vectors"] > 20_000


def test_a_broken_packing_mismatches(ecp5_b8_run, tmp_path):
    """Not vacuous: the packed netlist with one multiplier's output register always enabled (CE0 tied 1, a packing
    that forgets the flip-flops' clock enable) advances that product during stalls, and the bench sees it."""
    workdir, _ = ecp5_b8_run
    net = json.loads((workdir / "packed.json").read_text())
    mult = next(c for c in net["modules"][MODULE]["cells"].values() if c["type"] == "MULT18X18D")
    assert mult["connections"]["CE0"] != ["1"]
    mult["connections"]["CE0"] = ["1"]
    (workdir / "broken.json").write_text(json.dumps(net))
    results = _simulate(SPEC, workdir, "broken.json", tmp_path, tests=["random_vectors"], vectors=3000)
    assert results["tests"]["random_vectors"]["mismatches"] > 0
    assert results["tests_failed"] == 1


def test_mult_model_refuses_a_configuration_it_does_not_model(ecp5_b8_run, tmp_path):
    """A multiplier with its pipeline register on (not a configuration lnsim's netlists use) fails the build."""
    workdir, _ = ecp5_b8_run
    net = json.loads((workdir / "top.json").read_text())
    mult = next(c for c in net["modules"][MODULE]["cells"].values() if c["type"] == "MULT18X18D")
    mult["parameters"]["REG_PIPELINE_CLK"] = "CLK0"
    (workdir / "pipelined.json").write_text(json.dumps(net))
    verilog = fpga.netlist_verilog(workdir, "pipelined.json", MODULE, "pipelined.v")
    with pytest.raises(runner.BenchError) as e:
        netlist.build_netlist(verilog, MODULE)
    log = e.value.args[0].rsplit("log: ", 1)[1]
    with open(log) as f:
        assert "MULT18X18D model: REG_INPUTA/B/C_CLK and REG_PIPELINE_CLK must be NONE" in f.read()


# -- long runs (-m slow) -----------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("bits", [8, 12])
def test_slow_ecp5_netlists_long_runs(bits, tmp_path):
    spec = Spec(LNSFormat(bits=bits, eta0=0.001))
    workdir = tmp_path / "synth"
    _synth(spec, workdir)
    tests = TESTS + ["exhaustive_grad"]
    for json_name in ("packed.json", "top.json"):
        results = _simulate(spec, workdir, json_name, tmp_path / json_name, tests=tests, vectors=200_000,
                            reset_vectors=4096, seed=3)
        _assert_bit_identical(results, tests)
        assert results["tests"]["exhaustive_grad"]["vectors"] == 4 * 2**16
