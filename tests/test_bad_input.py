"""Bad input everywhere a user can reach it: one line naming the parameter, the value and what is allowed.

Every row of the tables is a real call; the command line must exit with status 2 and print exactly one line
``lnsim: error: ...`` (never a traceback); public functions raise a ValueError (mostly SpecError) with the
message. Empty arrays are valid input with a documented result (see ``test_empty_arrays_are_valid``).
"""

import re

import numpy as np
import pytest

import lnsim
from lnsim import tables
from lnsim.cli import main
from lnsim.golden import FusedMadam, GoldenMadam, update_inplace

BITS = [("0", "not 0"), ("1", "not 1"), ("25", "not 25"), ("-3", "not -3"), ("12x", "not '12x'")]

CLI = [
    *[(["info", "--bits", b], rf"bits must be an integer in 2\.\.24, {m}") for b, m in BITS],
    *[([cmd, "--bits", "25"], r"bits must be an integer in 2\.\.24, not 25") for cmd in ("train", "verilog", "verify", "synth", "vectors", "prove")],
    (["info", "--eta", "0.0105"], r"eta must be a whole multiple of eta0=0\.001, not 0\.0105"),
    (["info", "--eta-star", "0.005"], r"eta_star must be at least eta=0\.01, not 0\.005"),
    (["info", "--bits", "16", "--eta-star", "12"], r"eta_star must be at most 10810 rungs for log_frac_bits=16, table_index_bits=7, "
     r"state_bits=32, grad_format='bfloat16' .*not 12\.0 \(12000 rungs\); lower eta_star or use log_frac_bits=17, "
     r"table_index_bits=7"),
    (["info", "--eta0", "-0.001"], r"eta0 must be a finite number in \(0, 1\], not -0\.001"),
    (["info", "--eta0", "nan"], r"eta0 must be a finite number in \(0, 1\], not nan"),
    (["info", "--bits", "16", "--eta0", "0.01"], r"gives a ladder 655\.35 nepers deep"),
    (["info", "--base", "pow3"], r"base must be one of 'natural', 'pow2', not 'pow3'"),
    (["info", "--eta0", "0.001", "--dynamic-range", "60"], r"give eta0 or dynamic_range, not both"),
    (["info", "--dynamic-range", "1"], r"dynamic_range must be a number > 1, not 1\.0"),
    (["info", "--base", "pow2", "--frac-bits", "17"], r"frac_bits must be an integer in 0\.\.16, not 17"),
    (["info", "--grad-format", "fp8"], r"grad_format must be one of 'bfloat16', 'float16', 'float32', not 'fp8'"),
    (["info", "--state-bits", "7"], r"state_bits must be an integer in 28\.\.32, not 7"),
    (["info", "--beta-shift", "0"], r"beta_shift must be an integer in 1\.\.16, not 0"),
    (["info", "--json", "/nonexistent/dir/spec.json"], r"json must be a writable file path, not '/nonexistent/dir/spec\.json'"),
    (["verilog", "--lanes", "0"], r"lanes must be an integer in 1\.\.64, not 0"),
    (["verilog", "--out", "/nonexistent/dir/x.v"], r"must be a writable file path, not '/nonexistent/dir/x\.v'"),
    (["verify", "--vectors", "-1"], r"vectors must be an integer in 1\.\.1000000000, not -1"),
    (["verify", "--lanes", "65"], r"lanes must be an integer in 1\.\.64, not 65"),
    (["synth", "--target", "xilinx"], r"target must be one of ecp5-25k, ice40-up5k, ecp5-85k, gowin-gw1nr9, gatemate-a1, not 'xilinx'"),
    (["synth", "--lanes", "0"], r"lanes must be an integer in 1\.\.64, not 0"),
    (["synth", "--sweep", "--jobs", "0"], r"jobs must be an integer in 1\.\.16, not 0"),
    (["synth", "--sweep", "--jobs", "17"], r"jobs must be an integer in 1\.\.16, not 17"),
    (["synth", "--sweep", "--jobs", "two"], r"jobs must be an integer in 1\.\.16, not 'two'"),
    (["train", "--sigma-scale", "-1"], r"sigma_scale must be a finite number > 0, not -1\.0"),
    (["train", "--batch-size", "0"], r"batch_size must be an integer >= 1, not 0"),
    (["train", "--seeds", "0"], r"seeds must be an integer in 1\.\.1000, not 0"),
    (["train", "--data", "/nonexistent.npz"], r"data must be an existing \.npz file holding X and y, not '/nonexistent\.npz' \(no such file\)"),
    (["train", "--resume", "/nonexistent.npz"], r"resume must be an existing lnsim train checkpoint \(\.npz\), not '/nonexistent\.npz'"),
    (["sweep", "--bits", "4:x"], r"bits must be integers: .*, not '4:x'"),
    (["sweep", "--grid", "/nonexistent.toml"], r"grid must be a readable file, not '/nonexistent\.toml'"),
    (["frobnicate"], r"invalid choice: 'frobnicate'"),
]


def _exit_code(argv) -> int:
    try:
        return main(argv)
    except SystemExit as e:  # argparse's own errors
        return e.code


@pytest.mark.parametrize("argv, message", CLI, ids=[" ".join(a) for a, _ in CLI])
def test_cli_refuses_with_one_line(argv, message, capsys):
    assert _exit_code(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("lnsim: error: ") and err.count("\n") == 1 and "Traceback" not in err
    assert re.search(message, err), err


@pytest.mark.parametrize("content", [b"", b"not a zip at all", b"PK\x03\x04 truncated"])
@pytest.mark.parametrize("option", ["--data", "--resume"])
def test_cli_refuses_unreadable_files(option, content, tmp_path, capsys):
    path = tmp_path / "bad.npz"
    path.write_bytes(content)
    assert _exit_code(["train", "--no-progress", option, str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"lnsim: error: {option[2:]} must be a readable ") and "bad.npz" in err and err.count("\n") == 1


FMT = lnsim.LNSFormat(8, 0.016)
SPEC = lnsim.Spec(FMT, lnsim.MadamConfig.from_rungs(FMT, 1, 8))


def _madam(n=3):
    return GoldenMadam(np.zeros(n, np.uint8), np.zeros(n, np.uint8), SPEC, 1.0)


def _update(**change):
    arrays = dict(sign=np.zeros(4, np.uint8), k=np.zeros(4, np.uint8), grad_bits=np.zeros(4, np.uint16),
                  state=np.zeros(4, np.uint32))
    arrays.update(change)
    return lambda: update_inplace(SPEC, **arrays, log_eta=tables.log_eta_term(SPEC, 1), log_bc=0)


FUNCTIONS = [
    (lambda: lnsim.LNSFormat(1, 0.5), r"bits must be an integer in 2\.\.24, not 1"),
    (lambda: lnsim.LNSFormat("12x", 0.001), r"bits must be an integer in 2\.\.24, not '12x'"),
    (lambda: lnsim.MadamConfig(eta=0.01, eta_star=0.005), r"eta_star must be at least eta=0\.01, not 0\.005"),
    (lambda: lnsim.Spec(FMT, lnsim.MadamConfig(eta=0.02, eta_star=0.16)), r"eta must be a whole multiple of eta0=0\.016"),
    (lambda: lnsim.encode(np.array([0.5, np.nan]), FMT, 1.0), r"w must be finite and non-zero to encode, not nan"),
    (lambda: lnsim.encode(np.array([np.inf]), FMT, 1.0), r"w must be finite and non-zero to encode, not inf"),
    (lambda: lnsim.encode(np.array([0.0]), FMT, 1.0), r"w must be finite and non-zero to encode, not 0\.0"),
    (lambda: lnsim.encode(np.array([0.5]), FMT, -1.0), r"sigma_star must be a finite number in \(0, 2\*\*127\), not -1\.0"),
    (lambda: lnsim.decode(np.array([0]), np.array([256]), FMT, 1.0), r"k must be in 0\.\.255 for B=8 eta0=0\.016, not 256"),
    (lambda: lnsim.decode(np.array([2]), np.array([1]), FMT, 1.0), r"sign must be in 0\.\.1 .*, not 2"),
    (lambda: lnsim.decode(np.array([0]), np.array([-1]), FMT, 1.0), r"k must be in 0\.\.255 .*, not -1"),
    (lambda: lnsim.decode(np.array([0]), np.array([1.5]), FMT, 1.0), r"k must be an integer array, not dtype float64"),
    (lambda: lnsim.decode(np.zeros(2, int), np.zeros(3, int), FMT, 1.0), r"sign must have the shape of k \(3,\), not \(2,\)"),
    (lambda: lnsim.decode_bf16(FMT, np.zeros(1, int), np.zeros(1, int), float("nan")), r"sigma_star must be a finite number"),
    (lambda: lnsim.unpack(np.array([1.5]), FMT), r"words must be an unsigned integer array, not dtype float64"),
    (lambda: lnsim.unpack(np.array([2**10], np.uint16), FMT), r"words must be in 0\.\.511 \(bits \+ 1 = 9 bits\), not 1024"),
    (lambda: lnsim.grad_to_bits(np.zeros(3), "fp8"), r"grad_format must be one of 'bfloat16', 'float16', 'float32', not 'fp8'"),
    (lambda: GoldenMadam(np.zeros(3), np.zeros(3, int), SPEC, 1.0), r"sign must be an integer array, not dtype float64"),
    (lambda: GoldenMadam(np.zeros(3, int), np.zeros(3, int), SPEC, 1.0, state=np.zeros(3, np.int64)),
     r"state must be a uint32 array of shape \(3,\), not int64 \(3,\)"),
    (lambda: GoldenMadam(np.zeros(1, int), np.zeros(1, int), SPEC, 1.0, state=np.array([1 << 22], np.uint32)),
     r"state must hold valid second-moment words .*, not 0x400000"),
    (lambda: GoldenMadam(np.zeros(1, int), np.zeros(1, int), SPEC, 1.0, t=-1), r"t must be an integer >= 0, not -1"),
    (lambda: _madam().step(np.zeros(4)), r"grad must have shape \(3,\), not \(4,\)"),
    (lambda: GoldenMadam.from_weights(np.array([]), FMT, SPEC.cfg), r"w0 must not be empty when sigma_star is not given"),
    (lambda: FusedMadam([_madam()]).step([np.zeros(2)]), r"grads\[0\] must have shape \(3,\), not \(2,\)"),
    (lambda: tables.bias_correction_term(SPEC, 0), r"t must be an integer >= 1 \(the step count\), not 0"),
    (_update(k=np.zeros(4, np.uint16)), r"k must be a C-contiguous uint8 array of shape \(4,\), not uint16 \(4,\)"),
    (_update(grad_bits=np.zeros(4, np.uint32)), r"grad_bits must be a C-contiguous uint16 array of shape \(4,\)"),
    (_update(state=np.zeros(5, np.uint32)), r"state must be a C-contiguous uint32 array of shape \(4,\), not uint32 \(5,\)"),
    (_update(sign=np.zeros(8, np.uint8)[::2]), r"sign must be a C-contiguous uint8 array"),
]


@pytest.mark.parametrize("call, message", FUNCTIONS, ids=[m[:40] for _, m in FUNCTIONS])
def test_functions_refuse_with_one_line(call, message):
    with pytest.raises(ValueError) as e:
        call()
    assert re.search(message, str(e.value)), str(e.value)
    assert "\n" not in str(e.value)


def test_empty_arrays_are_valid():
    """Zero elements are a valid tensor: encode/decode give empty arrays, a step moves nothing."""
    sign, k = lnsim.encode(np.array([]), FMT, 1.0)
    assert sign.shape == k.shape == (0,) and k.dtype == FMT.code_dtype
    assert lnsim.decode(sign, k, FMT, 1.0).shape == (0,)
    assert lnsim.decode_bf16(FMT, sign, k, 1.0).shape == (0,)
    empty = GoldenMadam(sign, k, SPEC, 1.0)
    assert empty.step(np.zeros(0)) == lnsim.StepStats(nan=0, inf=0) and empty.t == 1
