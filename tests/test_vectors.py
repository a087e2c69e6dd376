"""``lnsim vectors``: the $readmemh files hold the golden model's outputs, and the Verilog-2005 testbench run by
``verilator --binary`` passes on them, and fails with exactly one mismatch (nonzero exit) on one corrupted line."""

from __future__ import annotations

import re
import shutil
import subprocess

import numpy as np
import pytest
from lnsim_rtl.widths import Widths
from lnsim_testbenches.expected import GoldenModel
from lnsim_testbenches.simulator import simulator_env
from lnsim_testbenches.vectors import FILES, build_verilator, write_vectors

from lnsim.cli.main import main
from lnsim.spec import LNSFormat, MadamConfig, Spec

DEFAULT = Spec.from_options()
_POW2 = LNSFormat(bits=8, base="pow2", frac_bits=4)
POW2_F16 = Spec(_POW2, MadamConfig.from_rungs(_POW2, 1, 8, grad_format="float16"))


def _fields(word: int, layout, lanes: int, base: int = 0) -> list[dict]:
    return [{name: (word >> (base + j * layout.size + f.offset)) & ((1 << f.width) - 1) for name, f in layout}
            for j in range(lanes)]


def _parse(out, spec: Spec, lanes: int):
    """The files' beats decoded: per lane inputs (with the beat's log_eta, log_bc) and expected outputs."""
    w = Widths(spec)
    pw = lanes * w.lane_in.size
    inputs = [int(x, 16) for x in (out / "inputs.hex").read_text().split()]
    expected = [int(x, 16) for x in (out / "expected.hex").read_text().split()]
    rows, outs = [], []
    for word, exp in zip(inputs, expected, strict=True):
        log_eta = (word >> pw) & ((1 << w.log_eta.width) - 1)
        log_bc = word >> (pw + w.log_eta.width)
        rows += [(x["sw"], x["k"], x["g"], x["st"], log_eta, log_bc) for x in _fields(word, w.lane_in, lanes)]
        outs += [(y["k"], y["st"], y["nan"], y["inf"]) for y in _fields(exp, w.lane_out, lanes)]
    return np.array(rows, np.uint64), np.array(outs, np.uint64)


@pytest.mark.parametrize(("spec", "lanes"), [(DEFAULT, 1), (POW2_F16, 3)])
def test_hex_files_hold_the_golden_outputs(tmp_path, spec, lanes):
    write_vectors(spec, tmp_path, lanes=lanes, vectors=1000, seed=3)
    rows, outs = _parse(tmp_path, spec, lanes)
    assert len(rows) == -(-1000 // lanes) * lanes
    model = GoldenModel(spec)
    got = np.zeros_like(outs)
    scalars = {(int(a), int(b)) for a, b in rows[:, 4:]}
    assert len(scalars) > 1  # several steps, each with its own scalars
    for log_eta, log_bc in scalars:
        sel = (rows[:, 4] == log_eta) & (rows[:, 5] == log_bc)
        r = rows[sel]
        k, st, nan, inf = model.update(r[:, 0].astype(np.uint8), r[:, 1].astype(spec.fmt.code_dtype),
                                       r[:, 2].astype(np.dtype(f"uint{spec.cfg.grad_format.width}")),
                                       r[:, 3].astype(np.uint32), log_eta, log_bc)
        got[sel] = np.stack([k, st, nan, inf], axis=1)
    np.testing.assert_array_equal(got, outs)
    assert (rows[:, 3] != 0).any() and (outs[:, 0] != rows[:, 1]).any()  # evolving state, moving codes


def test_cli_writes_the_files_and_no_stalls(tmp_path, capsys):
    assert main(["vectors", "--out", str(tmp_path), "--vectors", "5", "--lanes", "2", "--no-stalls"]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(FILES)
    assert len((tmp_path / "inputs.hex").read_text().splitlines()) == 3
    tb = (tmp_path / "tb_update_unit.v").read_text()
    assert "parameter STALL_PERCENT = 0;" in tb and "parameter BEATS = 3;" in tb and "parameter LANES = 2;" in tb
    assert "wrote" in capsys.readouterr().err
    assert main(["vectors", "--out", str(tmp_path), "--vectors", "0"]) == 2


def _run(binary, cwd):
    r = subprocess.run([str(binary)], check=False, cwd=cwd, env=simulator_env(), capture_output=True, text=True,
                       timeout=300)
    return r.returncode, r.stdout + r.stderr


@pytest.mark.hw
def test_testbench_passes_and_catches_one_corrupted_line(tmp_path):
    out = tmp_path / "v"
    write_vectors(DEFAULT, out, lanes=1, vectors=2000, seed=0, stalls=True)
    tb = build_verilator(out)
    rc, text = _run(tb, out)
    assert rc == 0, text
    assert "PASS 2000 vectors" in text and "FAIL" not in text
    cycles = int(re.search(r"2000 beats received in (\d+) cycles", text).group(1))
    assert cycles > 1.5 * 2000  # 30 % stalls on each side: about half the cycles move a beat
    bad = tmp_path / "bad"
    bad.mkdir()
    shutil.copy(out / "inputs.hex", bad)
    lines = (out / "expected.hex").read_text().splitlines()
    lines[17] = lines[17][:-1] + format(int(lines[17][-1], 16) ^ 1, "x")  # one bit of one beat's k
    (bad / "expected.hex").write_text("\n".join(lines) + "\n")
    rc, text = _run(tb, bad)
    assert rc != 0, text
    assert "FAIL 1 mismatches of 2000" in text and "mismatch at beat 17:" in text


@pytest.mark.hw
@pytest.mark.slow
def test_testbench_passes_pow2_float16_three_lanes(tmp_path):
    write_vectors(POW2_F16, tmp_path, lanes=3, vectors=3000, seed=5, stalls=True)
    rc, text = _run(build_verilator(tmp_path), tmp_path)
    assert rc == 0, text
    assert "PASS 3000 vectors" in text


@pytest.mark.hw
@pytest.mark.skipif(shutil.which("iverilog") is None, reason="Icarus Verilog (iverilog) not on PATH")
def test_testbench_under_icarus_passes_and_fails_with_tb_fatal(tmp_path):
    write_vectors(DEFAULT, tmp_path, lanes=2, vectors=400, seed=2, stalls=True)
    build = subprocess.run(["iverilog", "-g2005", "-DTB_FATAL", "-o", "tb.vvp", "tb_update_unit.v", "update_unit.v"],
                           check=False, cwd=tmp_path, capture_output=True, text=True)
    assert build.returncode == 0, build.stderr
    run = subprocess.run(["vvp", "-n", "tb.vvp"], check=False, cwd=tmp_path, capture_output=True, text=True)
    assert run.returncode == 0 and "PASS 400 vectors" in run.stdout, run.stdout + run.stderr
    lines = (tmp_path / "expected.hex").read_text().splitlines()
    lines[-1] = lines[-1][:-1] + format(int(lines[-1][-1], 16) ^ 2, "x")
    (tmp_path / "expected.hex").write_text("\n".join(lines) + "\n")
    run = subprocess.run(["vvp", "-n", "tb.vvp"], check=False, cwd=tmp_path, capture_output=True, text=True)
    assert run.returncode == 1 and "FAIL 1 mismatches of 400" in run.stdout, run.stdout + run.stderr
