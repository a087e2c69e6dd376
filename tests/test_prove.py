"""Formal proofs of the update unit (lnsim_testbenches.formal, ``lnsim prove``) with yowasp-sby and boolector."""

from __future__ import annotations

import pytest
from lnsim_testbenches.formal import GROUPS, prove

from lnsim.cli.main import main
from lnsim.spec import Spec

pytestmark = pytest.mark.hw

#: A 4-bit format with float16 gradients and a 16-bit state: a small datapath for the solver.
SMALL = {"bits": 4, "eta0": 0.05, "eta": 0.05, "beta_shift": 1, "grad_format": "float16", "state_bits": 16}
SMALL_ARGV = ["--bits", "4", "--eta0", "0.05", "--eta", "0.05", "--beta-shift", "1", "--grad-format", "float16",
              "--state-bits", "16"]


@pytest.mark.parametrize(("options", "lanes"), [
    ({}, 1),  # the default spec
    (dict(SMALL, base="pow2", frac_bits=1, eta0=None, eta=0.34657359), 1),
    (SMALL, 3),
], ids=["default", "pow2", "float16-3-lanes"])
def test_stream_properties_hold(options, lanes, tmp_path):
    spec = Spec.from_options(**{k: v for k, v in options.items() if v is not None})
    result = prove(spec, lanes=lanes, properties=GROUPS["stream"], workdir=tmp_path)
    assert result.status == "PASS", result.log[-2000:]
    assert result.failed == () and result.trace is None
    assert result.depth == 25  # latency + 4: a beat accepted in the first cycles is followed to its output


def test_cli_passes_and_the_ignored_ready_fails_with_a_trace(tmp_path, capsys, monkeypatch):
    argv = ["prove", *SMALL_ARGV, "--group", "stream"]
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 0  # the default --workdir, relative to the current directory
    assert (tmp_path / "lnsim-prove" / "stream" / "unit.sby").is_file()
    out = capsys.readouterr().out
    assert "no_phantom   PASS" in out and "order        PASS" in out

    assert main([*argv, "--fault", "stall", "--workdir", str(tmp_path / "bad")]) == 1
    out = capsys.readouterr().out
    assert "order        FAIL" in out
    trace = tmp_path / "bad" / "stream" / "unit" / "engine_0" / "trace.vcd"
    assert f"counterexample: {trace}" in out
    assert trace.stat().st_size > 0 and "$var" in trace.read_text()


def test_cli_rejects_a_bad_depth(capsys):
    assert main(["prove", *SMALL_ARGV, "--depth", "0"]) == 2
    assert "depth" in capsys.readouterr().err

