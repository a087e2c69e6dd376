"""What the runner (pytest / CLI side) and the cocotb benches (simulator side) share: the parameters.

The runner passes a bench its parameters as one JSON object in the environment variable
:data:`PARAMS_ENV`; the bench writes its results as JSON to the path named in those parameters. The spec
travels as the fields a :class:`~lnsim.spec.Spec` is built from (floats round-trip exactly through JSON).
This module imports neither cocotb nor amaranth.
"""

from __future__ import annotations

import json
import os

from lnsim.files import atomic_write

__all__ = ["PARAMS_ENV", "SAT_IN_BITS", "SAT_OUT_BITS", "SAT_N_OFFSET", "bench_params", "write_results"]

#: Environment variable holding the bench's parameters (a JSON object).
PARAMS_ENV = "LNSIM_TB_PARAMS"

#: Lane widths of the saturating-add wrapper (:mod:`lnsim_testbenches.wrappers`): in ``sw`` (bit 0),
#: ``sg`` (bit 1), ``k`` (bits 2..), ``n`` (bits 16..); out ``k_new`` (bits 0..).
SAT_IN_BITS, SAT_OUT_BITS, SAT_N_OFFSET = 32, 16, 16


def bench_params() -> dict:
    """The parameters the runner gave this bench (empty if run without the runner)."""
    text = os.environ.get(PARAMS_ENV)
    return json.loads(text) if text else {}


def write_results(path: str | None, results: dict) -> None:
    """Write a bench's results where the runner reads them (nothing if no path was given)."""
    if not path:
        return
    atomic_write(path, json.dumps(results, indent=1) + "\n")
