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
POW2 = dict(SMALL, base="pow2", frac_bits=1, eta0=None, eta=0.34657359)


def _spec(options):
    return Spec.from_options(**{k: v for k, v in options.items() if v is not None})


@pytest.mark.parametrize(("options", "lanes"), [
    ({}, 1),  # the default spec
    (POW2, 1),
    (SMALL, 3),
], ids=["default", "pow2", "float16-3-lanes"])
def test_stream_properties_hold_in_every_cycle(options, lanes, tmp_path):
    result = prove(_spec(options), lanes=lanes, properties=GROUPS["stream"], workdir=tmp_path)
    assert result.status == "PASS", result.log[-2000:]
    assert result.failed == () and result.trace is None
    assert (result.mode, result.depth) == ("prove", 1)  # k-induction: unbounded


def test_stream_properties_hold_within_a_bound_from_reset(tmp_path):
    result = prove(_spec(SMALL), mode="bmc", properties=GROUPS["stream"], workdir=tmp_path)
    assert result.status == "PASS", result.log[-2000:]
    assert result.depth == 25  # latency + 4: a beat accepted in the first cycles is followed to its output
    with pytest.raises(ValueError, match="mode must be prove for the hold group, not 'bmc'"):
        prove(_spec(SMALL), mode="bmc", properties=GROUPS["hold"])


def test_datapath_equals_the_stages_chained_combinationally(tmp_path):
    result = prove(_spec(SMALL), properties=GROUPS["datapath"], workdir=tmp_path)
    assert result.status == "PASS", result.log[-2000:]
    assert (result.mode, result.depth, result.failed) == ("bmc", 24, ())  # three beats out, latency 21


@pytest.mark.slow
@pytest.mark.parametrize(("options", "lanes"), [({}, 1), (POW2, 1), (SMALL, 3)],
                         ids=["default", "pow2", "float16-3-lanes"])
def test_datapath_properties_hold_for_unusual_specs(options, lanes, tmp_path):
    result = prove(_spec(options), lanes=lanes, properties=GROUPS["datapath"], workdir=tmp_path)
    assert result.status == "PASS", result.log[-2000:]


def test_a_wrong_table_entry_fails_equivalence_with_a_trace(tmp_path):
    result = prove(_spec(SMALL), depth=22, fault="table", properties=GROUPS["datapath"], workdir=tmp_path)
    assert (result.status, result.failed) == ("FAIL", ("equivalence",)), result.log[-2000:]
    assert result.trace is not None and "$var" in result.trace.read_text()


def test_a_stall_holds_every_data_register_by_induction(tmp_path):
    result = prove(_spec(SMALL), properties=GROUPS["hold"], workdir=tmp_path)
    assert result.status == "PASS", result.log[-2000:]
    assert (result.mode, result.depth) == ("prove", 1)


def test_properties_of_two_groups_in_one_job_are_refused():
    with pytest.raises(ValueError, match="properties must be of one group"):
        prove(_spec(SMALL), properties=("order", "equivalence"))
    with pytest.raises(ValueError, match="properties must be among"):
        prove(_spec(SMALL), properties=("sign_kept",))


def test_cli_passes_and_the_ignored_ready_fails_with_a_trace(tmp_path, capsys, monkeypatch):
    argv = ["prove", *SMALL_ARGV, "--group", "stream"]
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 0  # the default --workdir, relative to the current directory
    assert (tmp_path / "lnsim-prove" / "stream" / "unit.sby").is_file()
    out = capsys.readouterr().out
    assert "no_phantom   PASS" in out and "order        PASS" in out

    assert main(["prove", *SMALL_ARGV, "--group", "hold", "--workdir", str(tmp_path / "hold")]) == 0
    out = capsys.readouterr().out
    assert "hold         PASS" in out and "hold: prove depth 1," in out

    # Induction cannot tell an unreachable state from a reachable one: the broken unit is UNKNOWN ...
    assert main([*argv, "--fault", "stall", "--workdir", str(tmp_path / "unknown")]) == 1
    assert "UNKNOWN (the induction step failed" in capsys.readouterr().out
    # ... and bounded model checking from reset finds the trace.
    assert main([*argv, "--bmc", "--fault", "stall", "--workdir", str(tmp_path / "bad")]) == 1
    out = capsys.readouterr().out
    # The job stops at the first failing assertion: outputs lost (``order``) or piling up beyond the
    # pipeline's depth (``no_phantom``), whichever the solver reaches first.
    assert "order        FAIL" in out or "no_phantom   FAIL" in out
    trace = tmp_path / "bad" / "stream" / "unit" / "engine_0" / "trace.vcd"
    assert f"counterexample: {trace}" in out
    assert trace.stat().st_size > 0 and "$var" in trace.read_text()


def test_cli_rejects_a_bad_depth(capsys):
    assert main(["prove", *SMALL_ARGV, "--depth", "0"]) == 2
    assert "depth" in capsys.readouterr().err

