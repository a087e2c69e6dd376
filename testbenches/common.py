"""What the runner (pytest / CLI side) and the cocotb benches (simulator side) share: the parameters.

The runner passes a bench its parameters as one JSON object in the environment variable
:data:`PARAMS_ENV`; the bench writes its results as JSON to the path named in those parameters. The spec
travels as the fields a :class:`~lnsim.spec.Spec` is built from (floats round-trip exactly through JSON).
This module imports neither cocotb nor amaranth.
"""

from __future__ import annotations

import json
import os

from lnsim.spec import LNSFormat, MadamConfig, Spec

__all__ = ["PARAMS_ENV", "SAT_IN_BITS", "SAT_OUT_BITS", "SAT_N_OFFSET", "spec_to_json", "spec_from_json",
           "bench_params", "write_results"]

#: Environment variable holding the bench's parameters (a JSON object).
PARAMS_ENV = "LNSIM_TB_PARAMS"

#: Lane widths of the saturating-add wrapper (:mod:`lnsim_testbenches.wrappers`): in ``sw`` (bit 0),
#: ``sg`` (bit 1), ``k`` (bits 2..), ``n`` (bits 16..); out ``k_new`` (bits 0..).
SAT_IN_BITS, SAT_OUT_BITS, SAT_N_OFFSET = 32, 16, 16


def spec_to_json(spec: Spec) -> dict:
    """The fields :func:`spec_from_json` rebuilds ``spec`` from, as plain JSON-able values."""
    f, c = spec.fmt, spec.cfg
    return {
        "bits": f.bits,
        "base": f.base.value,
        "eta0": f.eta0,
        "frac_bits": f.frac_bits,
        "eta": c.eta,
        "eta_star": c.eta_star,
        "beta_shift": c.beta_shift,
        "bias_correction": c.bias_correction,
        "grad_format": c.grad_format.value,
        "state_bits": c.state_bits,
        "log_frac_bits": c.log_frac_bits,
        "table_index_bits": c.table_index_bits,
    }


def spec_from_json(d: dict) -> Spec:
    """Rebuild the :class:`Spec` that :func:`spec_to_json` described."""
    if d["base"] == "pow2":
        fmt = LNSFormat(bits=d["bits"], base="pow2", frac_bits=d["frac_bits"])
    else:
        fmt = LNSFormat(bits=d["bits"], eta0=d["eta0"])
    cfg = MadamConfig(
        eta=d["eta"], eta_star=d["eta_star"], beta_shift=d["beta_shift"], bias_correction=d["bias_correction"],
        grad_format=d["grad_format"], state_bits=d["state_bits"], log_frac_bits=d["log_frac_bits"],
        table_index_bits=d["table_index_bits"],
    )
    return Spec(fmt, cfg)


def bench_params() -> dict:
    """The parameters the runner gave this bench (empty if run without the runner)."""
    text = os.environ.get(PARAMS_ENV)
    return json.loads(text) if text else {}


def write_results(path: str | None, results: dict) -> None:
    """Write a bench's results where the runner reads them (nothing if no path was given)."""
    if not path:
        return
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        json.dump(results, f, indent=1)
        f.write("\n")
    os.replace(tmp, path)
