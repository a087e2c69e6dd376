"""Fidelity of the golden model to float64 Madam on the same bfloat16 gradients (issue 3's bound)."""

import pytest

from lnsim import LNSFormat, MadamConfig, Spec
from lnsim.fidelity import measure

FMT = LNSFormat(bits=12, eta0=0.001)


def test_default_spec_over_a_million_elements_and_30_steps():
    r = measure(Spec(FMT, MadamConfig()), n=1_000_000, steps=30, seed=0)
    assert r["updates"] == 30_000_000
    assert r["exact"] >= 0.999
    assert r["max_error"] <= 1


POW2 = LNSFormat(bits=12, base="pow2", frac_bits=10)


@pytest.mark.parametrize(
    "spec",
    [
        Spec(FMT, MadamConfig(grad_format="float16")),
        Spec(FMT, MadamConfig(grad_format="float32")),
        Spec(FMT, MadamConfig(bias_correction=False)),
        Spec(FMT, MadamConfig(beta_shift=7)),
        Spec(LNSFormat(bits=10, eta0=0.004), MadamConfig(eta=0.008, eta_star=0.064)),
        Spec(LNSFormat(bits=16, eta0=0.001), MadamConfig(eta=0.005, eta_star=0.04)),
        Spec(POW2, MadamConfig.from_rungs(POW2, 15, 120)),
        Spec(FMT, MadamConfig(log_frac_bits=12, table_index_bits=5)),
    ],
    ids=lambda s: f"{s.fmt.describe()} {s.cfg.grad_format.value} bc={s.cfg.bias_correction} s={s.cfg.beta_shift} F={s.cfg.log_frac_bits} a={s.cfg.table_index_bits}",
)
def test_other_configurations(spec):
    r = measure(spec, n=200_000, steps=30, seed=1)
    assert r["exact"] >= 0.999
    assert r["max_error"] <= 1
