"""Fixtures shared by test files."""

from __future__ import annotations

import pytest

from lnsim import fpga
from lnsim.spec import LNSFormat, Spec

#: The update unit synthesised on ECP5 by the tests (tests/test_synth.py, tests/test_synth_netlist.py).
ECP5_B8_SPEC = Spec(LNSFormat(bits=8, eta0=0.001))


@pytest.fixture(scope="session")
def ecp5_b8_run(tmp_path_factory):
    """One real ``lnsim synth --bits 8 --eta0 0.001 --target ecp5-25k`` run (about 22 s), shared: its work
    directory (``top.json``, ``packed.json``, ...) and its report."""
    workdir = tmp_path_factory.mktemp("synth-ecp5-b8")
    return workdir, fpga.synthesize(ECP5_B8_SPEC, target="ecp5-25k", workdir=str(workdir), timeout=900)


def pytest_collection_modifyitems(config, items):
    """Leave out the ``slow`` tests unless the ``-m`` expression names them (``pytest -m slow``), so that any
    other selection, such as the inner loop ``pytest -m "not hw"``, keeps them out too."""
    if "slow" in (config.getoption("markexpr") or ""):
        return
    slow = [item for item in items if item.get_closest_marker("slow")]
    if slow:
        config.hook.pytest_deselected(items=slow)
        items[:] = [item for item in items if not item.get_closest_marker("slow")]
