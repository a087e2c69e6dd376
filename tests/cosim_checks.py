"""Checks on a co-simulation's results, shared by the RTL and the gate-level co-simulation tests.

``results`` is the dict :func:`lnsim_testbenches.runner.run` returns for the update-unit bench
(``lnsim_testbenches.update_unit_tb``): per-test entries under ``"tests"``, totals at the top level.
"""

from __future__ import annotations

__all__ = ["assert_clean"]


def assert_clean(results: dict, tests, latency: int) -> None:
    """Assert that each test in ``tests`` ran without a mismatch or a protocol error at ``latency`` cycles.

    Parameters
    ----------
    results : dict
        From :func:`lnsim_testbenches.runner.run` on the update-unit bench.
    tests : iterable of str
        Names of the bench's tests that must be in ``results["tests"]`` and clean.
    latency : int
        The unit's latency in cycles; every test not marked ``skipped`` must have seen exactly this.

    Raises
    ------
    AssertionError
        Naming the test and its first mismatches or errors.
    """
    for name in tests:
        t = results["tests"][name]
        assert t["mismatches"] == 0, f"{name}: {t['first_mismatches'][:2]}"
        assert not t["errors"], t["errors"]
        assert t.get("skipped") or t["latency_seen"] == latency
    assert results["mismatches"] == 0 and results["tests_failed"] == 0
