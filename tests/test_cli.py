"""The lnsim command line: spec options, one-line errors, JSON output."""

import json
import subprocess
import sys

import pytest

from lnsim.cli import main


def test_info_prints_derived_quantities(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert "dynamic range    exp((2**B - 1) * eta0) = 60.0393" in out
    assert "eta_star         0.08 = 80 rungs (clamp |g/gbar| at 8)" in out
    assert "update tables    log 2193 + antilog 3354 = 5547 bits" in out


def test_info_json(tmp_path, capsys):
    path = tmp_path / "spec.json"
    assert main(["info", "--bits", "10", "--eta0", "0.004", "--eta", "0.008", "--eta-star", "0.064", "--json", str(path)]) == 0
    data = json.loads(path.read_text())
    assert data["spec"]["bits"] == 10 and data["spec"]["eta_rungs"] == 2 and data["spec"]["eta_star_rungs"] == 16
    assert data["table_bits"]["update_total"] == 5547


def test_pow2_defaults_to_the_nearest_whole_rungs(capsys):
    assert main(["info", "--base", "pow2", "--frac-bits", "10"]) == 0
    out = capsys.readouterr().out
    assert "eta              0.0101535 = 15 rungs" in out
    assert "0.0812282 = 120 rungs" in out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--bits", "25"], "lnsim: error: bits must be an integer in 2..24, not 25"),
        (["--bits", "12x"], "lnsim: error: bits must be an integer in 2..24, not '12x'"),
        (["--bits", "0"], "lnsim: error: bits must be an integer in 2..24, not 0"),
        (["--eta", "0.0105"], "lnsim: error: eta must be a whole multiple of eta0=0.001, not 0.0105"),
        (["--eta-star", "0.005"], "lnsim: error: eta_star must be at least eta=0.01, not 0.005"),
        (["--eta0", "abc"], "lnsim: error: eta0 must be a finite number in (0, 1], not 'abc'"),
        (["--grad-format", "fp8"], "lnsim: error: grad_format must be one of 'bfloat16', 'float16', 'float32', not 'fp8'"),
        (["--beta-shift", "20"], "lnsim: error: beta_shift must be an integer in 1..16, not 20"),
        (["--eta", "0.01", "--eta-rungs", "10"], "lnsim: error: give eta or eta_rungs, not both"),
        (["--nonsense"], "lnsim: error: unrecognized arguments: --nonsense"),
    ],
)
def test_invalid_values_exit_2_with_one_line(argv, message, capsys):
    with pytest.raises(SystemExit) as exc:
        rc = main(["info", *argv])
        raise SystemExit(rc)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith(message)
    assert err.count("\n") == 1 and "Traceback" not in err


def test_console_script_runs_without_traceback():
    r = subprocess.run([sys.executable, "-m", "lnsim.cli", "info", "--bits", "1"], capture_output=True, text=True)
    assert r.returncode == 2
    assert r.stderr == "lnsim: error: bits must be an integer in 2..24, not 1\n"


def test_info_shows_the_precision_budget(capsys):
    assert main(["info"]) == 0
    assert ("step precision   estimated worst error 0.0037 rungs per step (at most 0.5; this datapath resolves "
            "eta_star up to 10810 rungs)") in capsys.readouterr().out


def test_info_refuses_a_step_the_datapath_cannot_resolve(capsys):
    argv = ["info", "--bits", "24", "--eta0", "0.000004", "--eta-rungs", "10000", "--eta-star-rungs", "80000"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "eta_star must be at most 10810 rungs for log_frac_bits=16, table_index_bits=7" in err
    assert "not 0.32 (80000 rungs); lower eta_star or use log_frac_bits=20, table_index_bits=8" in err
    assert main(argv + ["--log-frac-bits", "20", "--table-index-bits", "8"]) == 0
    assert "estimated worst error 0.496 rungs per step (at most 0.5; this datapath resolves eta_star up to 80659" in capsys.readouterr().out


def test_eta_a_hair_off_whole_rungs_is_accepted_with_its_capped_default_eta_star(capsys):
    # The spec takes 0.5000002 as 10 rungs of 0.05; the default eta_star is then 8 x 10 rungs capped at the
    # 15-rung ladder, as for eta 0.5 itself (not an uncapped 8 x eta).
    for eta in ("0.5", "0.5000002"):
        assert main(["info", "--bits", "4", "--eta0", "0.05", "--eta", eta]) == 0
        out = capsys.readouterr().out
        assert "= 10 rungs" in out and "0.75 = 15 rungs (clamp |g/gbar| at 1.5)" in out


@pytest.mark.parametrize("command", ["info", "train", "sweep", "synth", "verilog", "verify", "vectors", "prove"])
def test_every_subcommand_offers_every_spec_option(command):
    from lnsim.cli.main import build_parser
    from lnsim.spec import LANES, SPEC_OPTIONS

    sub = next(a for a in build_parser()._actions if a.dest == "command").choices[command]
    flags = {flag for action in sub._actions for flag in action.option_strings}
    assert {o.cli_flag for o in SPEC_OPTIONS} <= flags
    assert (LANES.cli_flag in flags) == (command in ("synth", "verilog", "verify", "vectors", "prove"))
