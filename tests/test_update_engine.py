# amaranth: UnusedElaboratable=no
"""The update engine (lnsim_rtl.UpdateEngine) under Verilator and cocotbext-axi against GoldenMadam, bit for bit."""

from __future__ import annotations

import json

import numpy as np
import pytest
from lnsim_rtl import UpdateEngine
from lnsim_rtl.update_engine import engine_word_layout
from lnsim_rtl.verilog import convert
from lnsim_testbenches import runner

from lnsim.cli import main
from lnsim.spec import LNSFormat, Spec

SPEC = Spec(LNSFormat(bits=8, eta0=0.01))
TOP = "lnsim_update_engine"


def random_init(spec: Spec, depth: int, lanes: int, seed: int) -> list:
    """``depth`` memory rows of random signs and codes with fresh (zero) states."""
    rng = np.random.default_rng(seed)
    layout = engine_word_layout(spec)
    e, k_at = layout.size, layout["k"].offset
    rows = []
    for _ in range(depth):
        row = 0
        for j in range(lanes):
            row |= (int(rng.integers(0, 2)) | int(rng.integers(0, spec.fmt.levels)) << k_at) << (j * e)
        rows.append(row)
    return rows


def run_engine(tmp_path, *, depth: int, lanes: int, lengths, steps: int, seed: int = 3) -> dict:
    """Build the engine (capacity ``depth``) and run ``steps`` steps at each step length of ``lengths``."""
    init = random_init(SPEC, depth, lanes, seed)
    build = runner.build_verilog(convert(UpdateEngine(SPEC, depth, lanes=lanes, init=init), TOP), TOP)
    # The rows go in a file: 4,096 of them are more than an environment variable may hold.
    init_file = tmp_path / "init.json"
    init_file.write_text(json.dumps(init))
    return runner.run(build, "lnsim_testbenches.update_engine_tb", out_dir=tmp_path,
                      params={"spec": SPEC.to_dict(), "lanes": lanes, "lengths": list(lengths), "steps": steps,
                              "init_file": str(init_file), "seed": seed, "pause": 0.3})


def _check(results, lanes, lengths, steps):
    assert results["mismatches"] == 0, results["first_mismatches"][:3]
    assert results["memory_mismatches"] == 0
    assert results["tests_failed"] == 0
    assert results["weights"] == steps * lanes * sum(lengths)
    assert results["steps"] == steps * len(lengths)


@pytest.mark.hw
def test_engine_steps_of_1_to_64_addresses_match_golden(tmp_path):
    # One build (64 rows, two lanes: the default run's one engine build, about 25 s) runs steps of 1, 7
    # (shorter than the unit's latency), 21, 22 and 64 addresses.
    lengths = (1, 7, 21, 22, 64)
    _check(run_engine(tmp_path, depth=64, lanes=2, lengths=lengths, steps=6), 2, lengths, 6)


@pytest.mark.hw
@pytest.mark.slow
@pytest.mark.parametrize("depth, lanes", [(1, 1), (7, 1), (64, 4), (4096, 1), (4096, 4)])
def test_engine_fifty_steps_match_golden(depth, lanes, tmp_path):
    lengths = tuple(n for n in (1, 7, 64, 4096) if n <= depth)
    _check(run_engine(tmp_path, depth=depth, lanes=lanes, lengths=lengths, steps=50), lanes, lengths, 50)


@pytest.mark.hw
@pytest.mark.parametrize("depth", [1, 7])  # a one-row memory; a depth of 2**n - 1
def test_engine_verilog_lints_clean(depth, tmp_path, capsys):
    out = tmp_path / "engine.v"
    assert main(["verilog", "--bits", "8", "--eta0", "0.01", "--unit", "engine", "--depth", str(depth),
                 "-o", str(out), "--lint"]) == 0
    assert "Verilator lint: clean" in capsys.readouterr().err
    text = out.read_text()
    assert f"// depth = {depth} rows" in text and "module lnsim_update_engine(" in text


def test_engine_validation():
    with pytest.raises(ValueError, match=r"^depth must be an integer in 1\.\.1048576, not 0$"):
        UpdateEngine(SPEC, 0)
    with pytest.raises(ValueError, match=r"^depth must be an integer in 1\.\.1048576, not 1048577$"):
        UpdateEngine(SPEC, 2**20 + 1)
    with pytest.raises(ValueError, match="init must have depth = 4 words, not 3"):
        UpdateEngine(SPEC, 4, init=[0, 0, 0])
    with pytest.raises(ValueError, match=r"init\[1\]"):
        UpdateEngine(SPEC, 2, init=[0, -1])


def test_verilog_depth_goes_with_the_engine_only(capsys):
    assert main(["verilog", "--bits", "8", "--eta0", "0.01", "--depth", "4"]) == 2
    assert "depth must be given with --unit engine, and only then" in capsys.readouterr().err
    assert main(["verilog", "--bits", "8", "--eta0", "0.01", "--unit", "engine", "--depth", "0"]) == 2
    assert "lnsim: error: depth must be an integer in 1..1048576, not 0\n" == capsys.readouterr().err
