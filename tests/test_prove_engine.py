"""Formal proof of the update engine's streams (lnsim_testbenches.formal_engine, ``lnsim prove --unit engine``)
with yowasp-sby and boolector."""

from __future__ import annotations

import re

import pytest
from lnsim_testbenches.formal_engine import PROPERTIES, FormalUpdateEngine, prove_engine
from test_prove import SMALL, SMALL_ARGV

from lnsim.cli.main import main
from lnsim.spec import Spec
from lnsim.validation import SpecError

pytestmark = pytest.mark.hw

#: The engine the tests prove, and its timing.
WRAPPER = FormalUpdateEngine(Spec.from_options(**SMALL), 2)
#: The default run's bound: the first beats followed out, and a second step begun (the read-after-write rule
#: checked from cycle unit_latency + 3); following a beat of a second step out takes about a minute (slow).
QUICK = WRAPPER.first_beat_bound


def verdicts(out: str) -> dict:
    """``{property: verdict}`` from ``lnsim prove`` output."""
    return {line.split()[0]: line.split()[1] for line in out.splitlines() if line.split()[:1] and
            line.split()[0] in PROPERTIES}


def test_the_timing_is_measured_at_the_ports():
    timing = WRAPPER.timing
    assert timing.first_accept == 1  # the read port reads one cycle ahead of the first beat
    assert timing.second_accept == WRAPPER.unit_latency + 3  # after the write-back and a re-read
    assert timing.latency > WRAPPER.unit_latency and timing.capacity >= 2
    assert WRAPPER.first_beat_bound == timing.latency + 2
    assert WRAPPER.second_step_bound == timing.second_accept + timing.latency + 1


def failing_step(log: str) -> int:
    """The step at which SymbiYosys reports the failed assertion."""
    return int(re.search(r"failed assertion \S+ at\s+step (\d+)", log)[1])


def test_the_first_beat_leaves_in_the_last_cycle_of_the_quick_bound(tmp_path):
    # Not vacuous: some beat can leave, first in the bound's last cycle.
    result = prove_engine(Spec.from_options(**SMALL), depth=QUICK, properties=("first_out",), workdir=tmp_path)
    assert (result.status, result.failed) == ("FAIL", ("first_out",))
    assert failing_step(result.log) == QUICK - 1


def test_two_lanes_hold(tmp_path):
    result = prove_engine(Spec.from_options(**SMALL), addresses=2, lanes=2, depth=QUICK, workdir=tmp_path)
    assert result.status == "PASS", result.log[-2000:]
    assert result.failed == () and result.trace is None and result.depth == QUICK


def test_cli_passes_and_the_ignored_ready_fails_order_with_a_trace(tmp_path, capsys):
    argv = ["prove", *SMALL_ARGV, "--unit", "engine", "--addresses", "2", "--depth", str(QUICK)]
    assert main([*argv, "--workdir", str(tmp_path / "good")]) == 0
    out = capsys.readouterr().out
    assert verdicts(out) == dict.fromkeys(PROPERTIES, "PASS")
    assert f"  order: bmc depth {QUICK}," in out

    # One cycle more: the beat offered in the last cycle is withdrawn in the next.
    assert main([*argv[:-1], str(QUICK + 1), "--fault", "stall", "--workdir", str(tmp_path / "bad")]) == 1
    out = capsys.readouterr().out
    assert verdicts(out)["order"] == "FAIL"
    trace = tmp_path / "bad" / "engine" / "order" / "unit" / "engine_0" / "trace.vcd"
    assert f"counterexample: {trace}" in out
    assert trace.stat().st_size > 0 and "$var" in trace.read_text()


@pytest.mark.parametrize(("extra", "named"), [
    (["--unit", "engine", "--addresses", "0"], "addresses must be an integer in 1..64"),
    (["--unit", "engine", "--addresses", "65"], "addresses must be an integer in 1..64"),
    (["--unit", "engine", "--depth", str(WRAPPER.first_beat_bound - 1)],
     f"depth must be an integer in {WRAPPER.first_beat_bound}..1000"),
    (["--unit", "engine", "--group", "datapath"], "group must be stream with --unit engine"),
    (["--addresses", "2"], "addresses is for --unit engine only"),
])
def test_cli_rejects_bad_engine_options(extra, named, capsys):
    assert main(["prove", *SMALL_ARGV, *extra]) == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]  # after the spec's warning
    assert error.startswith("lnsim: error: ") and named in error


def test_a_bad_fault_is_refused():
    with pytest.raises(ValueError, match="fault must be among None, stall, not 'late'"):
        prove_engine(Spec.from_options(**SMALL), addresses=2, fault="late")
    with pytest.raises(SpecError, match="addresses"):
        prove_engine(Spec.from_options(**SMALL), addresses=True)


@pytest.mark.slow
@pytest.mark.parametrize("addresses", [2, 3])
def test_every_property_holds_to_a_second_step(addresses, tmp_path, capsys):
    # The CLI's default bound, one job per property.
    argv = ["prove", *SMALL_ARGV, "--unit", "engine", "--addresses", str(addresses), "--workdir", str(tmp_path)]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert verdicts(out) == dict.fromkeys(PROPERTIES, "PASS")
    assert f"  tlast: bmc depth {WRAPPER.second_step_bound}," in out


@pytest.mark.slow
def test_a_beat_of_a_second_step_leaves_in_the_last_cycle_of_the_default_bound(tmp_path):
    result = prove_engine(Spec.from_options(**SMALL), properties=("second_out",), workdir=tmp_path)
    assert (result.status, result.failed, result.depth) == ("FAIL", ("second_out",), WRAPPER.second_step_bound)
    assert failing_step(result.log) == WRAPPER.second_step_bound - 1
