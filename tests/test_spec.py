"""Every spec parameter is validated in one place, with a message naming it, its value and what is allowed."""

import math
import re

import pytest

from lnsim import Base, LNSFormat, MadamConfig, Spec, SpecError, tables

FMT = LNSFormat(bits=12, eta0=0.001)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(bits=25, eta0=0.001), "bits must be an integer in 2..24, not 25"),
        (dict(bits=1, eta0=0.001), "bits must be an integer in 2..24, not 1"),
        (dict(bits=0, eta0=0.001), "bits must be an integer in 2..24, not 0"),
        (dict(bits=-3, eta0=0.001), "bits must be an integer in 2..24, not -3"),
        (dict(bits="12x", eta0=0.001), "bits must be an integer in 2..24, not '12x'"),
        (dict(bits=12.0, eta0=0.001), "bits must be an integer in 2..24, not 12.0"),
        (dict(bits=True, eta0=0.001), "bits must be an integer in 2..24, not True"),
        (dict(bits=12, eta0=0.0), r"eta0 must be a finite number in \(0, 1\], not 0.0"),
        (dict(bits=12, eta0=-0.001), r"eta0 must be a finite number in \(0, 1\], not -0.001"),
        (dict(bits=12, eta0=math.nan), r"eta0 must be a finite number in \(0, 1\], not nan"),
        (dict(bits=12, eta0=math.inf), r"eta0 must be a finite number in \(0, 1\], not inf"),
        (dict(bits=12, eta0=2.0), r"eta0 must be a finite number in \(0, 1\], not 2.0"),
        (dict(bits=12), r"eta0 must be given for base='natural'"),
        (dict(bits=12, eta0=0.001, base="log"), "base must be one of 'natural', 'pow2', not 'log'"),
        (dict(bits=12, base="pow2"), r"base='pow2' needs frac_bits, the m of eta0 = ln2/2\*\*m: an integer in 0\.\.16"),
        (dict(bits=12, base="pow2", frac_bits=17), "frac_bits must be an integer in 0..16, not 17"),
        (dict(bits=12, eta0=0.001, frac_bits=3), "frac_bits applies only to base='pow2'"),
        (dict(bits=12, base="pow2", frac_bits=10, eta0=0.001), r"eta0 must be ln2/2\*\*frac_bits"),
        (dict(bits=24, eta0=0.001), r"bits=24 with eta0=0.001 gives a ladder 16777.2 nepers deep"),
    ],
)
def test_format_rejects(kwargs, message):
    with pytest.raises(SpecError, match=message):
        LNSFormat(**kwargs)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(eta=0.0), r"eta must be a finite number in \(0, 1\], not 0.0"),
        (dict(eta=math.nan), r"eta must be a finite number in \(0, 1\], not nan"),
        (dict(eta_star=0.005), "eta_star must be at least eta=0.01, not 0.005"),
        (dict(eta_star=-1.0), r"eta_star must be a finite number in \(0, 16\], not -1.0"),
        (dict(beta_shift=0), "beta_shift must be an integer in 1..16, not 0"),
        (dict(beta_shift=17), "beta_shift must be an integer in 1..16, not 17"),
        (dict(bias_correction=1), "bias_correction must be True or False, not 1"),
        (dict(grad_format="fp8"), "grad_format must be one of 'bfloat16', 'float16', 'float32', not 'fp8'"),
        (dict(state_bits=33), "state_bits must be an integer in 28..32, not 33"),
        (dict(state_bits=27), "state_bits must be an integer in 28..32, not 27"),
        (dict(log_frac_bits=7), "log_frac_bits must be an integer in 8..20, not 7"),
        (dict(log_frac_bits=21), "log_frac_bits must be an integer in 8..20, not 21"),
        (dict(table_index_bits=2), "table_index_bits must be an integer in 3..12, not 2"),
        (dict(table_index_bits=12, log_frac_bits=8), "table_index_bits must be at most log_frac_bits \\+ 1 = 9, not 12"),
    ],
)
def test_config_rejects(kwargs, message):
    with pytest.raises(SpecError, match=message):
        MadamConfig(**kwargs)


@pytest.mark.parametrize(
    "fmt, cfg, message",
    [
        (FMT, MadamConfig(eta=0.0105), r"eta must be a whole multiple of eta0=0.001, not 0.0105 \(10.5 rungs\); nearest: 0.01 \(10 rungs\) or 0.011 \(11 rungs\)"),
        (FMT, MadamConfig(eta_star=0.0805), r"eta_star must be a whole multiple of eta0=0.001, not 0.0805"),
        (FMT, MadamConfig(eta=0.0004, eta_star=0.0004), r"eta must be a whole multiple of eta0=0.001, not 0.0004 \(0.4 rungs\); nearest: 0.001 \(1 rungs\)"),
        (LNSFormat(bits=4, eta0=0.001), MadamConfig(), "eta_star must be at most 15 rungs"),
        (LNSFormat(bits=12, base="pow2", frac_bits=10), MadamConfig(), r"eta must be a whole multiple of eta0=0.000676901544, not 0.01 \(14.7732 rungs\); nearest: 0.00947662161 \(14 rungs\) or 0.0101535232 \(15 rungs\)"),
    ],
)
def test_spec_rejects_combinations(fmt, cfg, message):
    with pytest.raises(SpecError, match=message):
        Spec(fmt, cfg)


def test_spec_error_is_a_value_error():
    assert issubclass(SpecError, ValueError)


def test_derived_quantities_defaults():
    spec = Spec(FMT, MadamConfig())
    assert (spec.eta_rungs, spec.eta_star_rungs, spec.clamp_ratio) == (10, 80, 8.0)
    assert FMT.code_max == 4095 and FMT.levels == 4096
    assert FMT.dynamic_range == pytest.approx(60.0393, rel=1e-5)
    assert spec.cfg.beta == pytest.approx(0.99902344, rel=1e-8)
    assert (spec.cfg.state_exp_bits, spec.cfg.state_man_bits) == (10, 22)
    assert spec.state_exp_offset == 2 * 127 + 22 + 10 + 2 * 7 - 2
    assert tables.table_bits(spec) == {"log": 129 * 17, "antilog": 129 * 26, "decoder": 2176, "update_total": 5547}


@pytest.mark.parametrize(
    "bits, code_dtype, packed_dtype", [(2, "uint8", "uint8"), (7, "uint8", "uint8"), (8, "uint8", "uint16"), (16, "uint16", "uint32"), (24, "uint32", "uint32")]
)
def test_dtypes(bits, code_dtype, packed_dtype):
    fmt = LNSFormat(bits=bits, eta0=min(1.0, 60 / 2**bits))
    assert (fmt.code_dtype, fmt.packed_dtype) == (code_dtype, packed_dtype)


def test_pow2_base():
    fmt = LNSFormat(bits=12, base="pow2", frac_bits=10)
    assert fmt.base is Base.POW2
    assert fmt.eta0 == pytest.approx(math.log(2) / 1024, rel=1e-15)
    assert fmt.rung_ratio == pytest.approx(2 ** (-1 / 1024), rel=1e-15)
    spec = Spec(fmt, MadamConfig.from_rungs(fmt, 15, 120))
    assert (spec.eta_rungs, spec.eta_star_rungs) == (15, 120)


@pytest.mark.parametrize("grad_format, exp_bits, man_bits", [("bfloat16", 10, 22), ("float16", 7, 25), ("float32", 10, 22)])
def test_state_split_per_gradient_format(grad_format, exp_bits, man_bits):
    cfg = MadamConfig(grad_format=grad_format)
    assert (cfg.state_exp_bits, cfg.state_man_bits) == (exp_bits, man_bits)


def test_specs_are_frozen_and_hashable():
    spec = Spec(FMT)
    with pytest.raises(AttributeError):
        spec.fmt = FMT  # type: ignore[misc]
    assert hash(Spec(FMT)) == hash(spec) and Spec(FMT) == spec


@pytest.mark.parametrize(
    "spec",
    [
        Spec(FMT),
        Spec(LNSFormat(bits=12, base="pow2", frac_bits=10), MadamConfig.from_rungs(LNSFormat(bits=12, base="pow2", frac_bits=10), 15, 120)),
        Spec(LNSFormat(bits=8, eta0=0.016), MadamConfig(eta=0.016, eta_star=0.128, grad_format="float16", beta_shift=16, bias_correction=False, state_bits=31, log_frac_bits=12, table_index_bits=5)),
    ],
)
def test_spec_round_trips_through_json(spec):
    import json

    assert Spec.from_dict(json.loads(json.dumps(spec.to_dict()))) == spec


# Spec.from_options: the one place user options become a spec.

def test_from_options_defaults_are_the_fields_defaults():
    spec = Spec.from_options()
    assert spec == Spec(LNSFormat(bits=12, eta0=0.001), MadamConfig())
    assert Spec.from_options(bits=None, eta0=None, grad_format=None) == spec  # None is "not given"


def test_from_options_derives_eta_and_eta_star_in_whole_rungs():
    s = Spec.from_options(bits=8, eta0=0.004)
    assert (s.eta_rungs, s.eta_star_rungs) == (3, 24)  # nearest 0.01 is 2.5 -> 3 rungs; 8 x eta
    s = Spec.from_options(bits=6, eta0=0.001)
    assert (s.eta_rungs, s.eta_star_rungs) == (10, 63)  # eta_star capped at the ladder
    s = Spec.from_options(bits=6, eta0=0.001, step_limit="half")
    assert (s.eta_rungs, s.eta_star_rungs) == (10, 31)
    s = Spec.from_options(bits=4, eta0=0.05, eta=0.5000002)
    assert (s.eta_rungs, s.eta_star_rungs) == (10, 15)
    s = Spec.from_options(eta_rungs=3, eta_star_rungs=40)
    assert (s.cfg.eta, s.cfg.eta_star) == (3 * 0.001, 40 * 0.001)


def test_from_options_dynamic_range():
    s = Spec.from_options(bits=8, dynamic_range=60.0)
    assert s.fmt.eta0 == math.log(60.0) / 255
    p = Spec.from_options(bits=8, base="pow2", dynamic_range=60.0)
    assert p.fmt.frac_bits == 5 and p.fmt.dynamic_range >= 60.0
    assert Spec.from_options(bits=8, base="pow2", frac_bits=6).fmt.dynamic_range < 60.0


@pytest.mark.parametrize("options, message", [
    ({"eta": 0.01, "eta_rungs": 10}, "give eta or eta_rungs, not both"),
    ({"eta_star": 0.08, "eta_star_rungs": 80}, "give eta_star or eta_star_rungs, not both"),
    ({"eta0": 0.001, "dynamic_range": 60.0}, "give eta0 or dynamic_range, not both"),
    ({"dynamic_range": 1.0}, "dynamic_range must be a number > 1, not 1.0"),
    ({"bitz": 8}, "option must be one of bits, base, eta0"),
    ({"step_limit": "all"}, "step_limit must be one of ladder, half, not 'all'"),
    ({"eta_rungs": 0}, "eta_rungs must be an integer >= 1, not 0"),
    ({"bits": "x", "dynamic_range": 60.0}, "bits must be an integer in 2..24, not 'x'"),
])
def test_from_options_refuses_in_one_line(options, message):
    with pytest.raises(SpecError, match=re.escape(message)):
        Spec.from_options(**options)


def test_options_carry_the_fields_defaults_and_ranges():
    from lnsim.spec import SPEC_OPTIONS

    by_name = {o.name: o for o in SPEC_OPTIONS}
    assert by_name["beta_shift"].default == MadamConfig().beta_shift and by_name["beta_shift"].bounds == (1, 16)
    assert by_name["grad_format"].default == "bfloat16" and by_name["bits"].bounds == (2, 24)
    assert by_name["bits"].help_text == "code width B, 2..24 (default 12)"
    assert Spec.from_dict(Spec.from_options(bits=10, base="pow2", frac_bits=8).to_dict()).fmt.frac_bits == 8
