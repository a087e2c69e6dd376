"""lnsim sweep's grid: axis parsing, grid files, and the spec of every point (the eta recipe, dynamic range)."""

import json
import math

import pytest

from lnsim.spec import SpecError
from lnsim.spec import eta0_for_range
from lnsim.sweep.grid import Grid, parse_axis, read_grid_file


@pytest.mark.parametrize("name, value, expected", [
    ("bits", "4:16", tuple(range(4, 17))),
    ("bits", "4:16:4", (4, 8, 12, 16)),
    ("bits", "6,8,8,10", (6, 8, 10)),
    ("bits", "6, 9:10", (6, 9, 10)),
    ("bits", 12, (12,)),
    ("bits", [6, "8:9"], (6, 8, 9)),
    ("eta0", "0.0005,0.001", (0.0005, 0.001)),
    ("eta0", [0.004, 0.016], (0.004, 0.016)),
    ("base", "natural,pow2", ("natural", "pow2")),
    ("bias_correction", [True, "off"], (True, False)),
])
def test_parse_axis(name, value, expected):
    assert parse_axis(name, value) == expected


@pytest.mark.parametrize("name, value, message", [
    ("bits", "4:x", "bits must be integers: a list like 6,8,10 or an inclusive range lo:hi or lo:hi:step, not '4:x'"),
    ("bits", "16:4", "bits range must be lo:hi[:step] with lo <= hi and step >= 1, not '16:4'"),
    ("bits", "4:16:0", "bits range must be lo:hi[:step] with lo <= hi and step >= 1, not '4:16:0'"),
    ("bits", "1:2:3:4", "bits must be integers"),
    ("bits", 8.0, "bits must be integers"),
    ("bits", "", "bits must be integers"),
    ("eta0", "0.001;0.002", "eta0 must be finite numbers: a list like 0.001,0.004, not '0.001;0.002'"),
    ("eta0", "nan", "eta0 must be finite numbers"),
    ("eta0", [True], "eta0 must be finite numbers"),
    ("bias_correction", "maybe", "bias_correction must be true or false, not 'maybe'"),
    ("bitz", "4", "axis must be one of bits, base, eta0"),
])
def test_parse_axis_errors_name_the_option(name, value, message):
    with pytest.raises(ValueError) as e:
        parse_axis(name, value)
    assert str(e.value).startswith(message) and "\n" not in str(e.value)


def test_points_follow_lnsim_train_eta_recipe():
    points, skipped = Grid.from_options({"bits": "6:12", "eta0": "0.001,0.004"}).points()
    assert skipped == [] and len(points) == 14
    assert [p.series for p in points] == ["eta0=0.001"] * 7 + ["eta0=0.004"] * 7
    by = {(p.spec.fmt.bits, p.spec.fmt.eta0): p.spec for p in points}
    # eta = the whole number of rungs nearest 0.01; eta_star = 8 x eta, capped at the ladder (63 rungs at 6 bits).
    assert (by[12, 0.001].eta_rungs, by[12, 0.001].eta_star_rungs) == (10, 80)
    assert (by[6, 0.001].eta_rungs, by[6, 0.001].eta_star_rungs) == (10, 63)
    assert (by[10, 0.004].eta_rungs, by[10, 0.004].eta_star_rungs) == (3, 24)
    assert by[10, 0.004].cfg.eta == pytest.approx(0.012)


def test_dynamic_range_keeps_the_range_per_bit_width():
    points, _ = Grid.from_options({"bits": "8,10,12", "dynamic_range": "60"}).points()
    assert [p.series for p in points] == ["R=60"] * 3
    for p in points:
        assert p.spec.fmt.eta0 == eta0_for_range(p.spec.fmt.bits, 60.0) == math.log(60) / (2**p.spec.fmt.bits - 1)
        assert p.spec.fmt.dynamic_range == pytest.approx(60.0)
    # the paper's recipe: 10 bits at eta0 ~ 0.004 (eta 2 rungs), 8 bits at ~0.016 (1 rung)
    assert [p.spec.eta_rungs for p in points] == [1, 2, 10]
    pow2, _ = Grid.from_options({"bits": "8,12", "base": "pow2", "dynamic_range": "60"}).points()
    # the finest pow2 base whose ladder spans R
    assert [p.spec.fmt.frac_bits for p in pow2] == [5, 9]
    assert all(p.spec.fmt.dynamic_range >= 60 for p in pow2)


def test_natural_and_pow2_in_one_grid():
    points, _ = Grid.from_options({"bits": "10", "base": "natural,pow2", "eta0": "0.001", "frac_bits": "8,9"}).points()
    assert [p.series for p in points] == ["natural eta0=0.001", "pow2 m=8", "pow2 m=9"]


def test_an_invalid_point_stops_the_grid_with_one_line():
    with pytest.raises(SpecError) as e:
        Grid.from_options({"bits": "10,12", "eta0": "0.004", "eta": "0.01"}).points()
    assert str(e.value) == ("grid point bits=10 base=natural eta0=0.004 eta=0.01: eta must be a whole multiple of "
                            "eta0=0.004, not 0.01 (2.5 rungs); nearest: 0.008 (2 rungs) or 0.012 (3 rungs) (and 1 more invalid "
                            "points; --skip-invalid leaves them out)")
    points, skipped = Grid.from_options({"bits": "14:16", "eta0": "0.002"}).points(skip_invalid=True)
    assert [p.spec.fmt.bits for p in points] == [14, 15]
    assert len(skipped) == 1 and skipped[0].startswith("grid point bits=16 base=natural eta0=0.002: bits=16 with")


@pytest.mark.parametrize("options, message", [
    ({"eta0": "0.001", "dynamic_range": "60"}, "give eta0 or dynamic_range, not both"),
    ({"base": "pow2"}, "frac_bits must be given for base pow2"),
    ({"base": "pow2", "eta0": "0.001", "frac_bits": "8"}, "eta0 applies to base natural"),
    ({"base": "log3"}, "base must be one of 'natural', 'pow2', not 'log3'"),
    ({"dynamic_range": "0.5"}, "grid point bits=12 base=natural dynamic_range=0.5: dynamic_range must be a number > 1"),
])
def test_grid_errors(options, message):
    with pytest.raises(SpecError, match=message.replace("(", r"\(").replace(")", r"\)")):
        Grid.from_options(options).points()


def test_fidelity_points_cap_steps_at_half_the_ladder():
    points, _ = Grid.from_options({"bits": "6"}).points(step_limit="half")
    assert (points[0].spec.eta_rungs, points[0].spec.eta_star_rungs) == (10, 31)


def test_grid_files(tmp_path):
    allowed = {"bits", "eta0", "epochs", "dataset"}
    toml = tmp_path / "grid.toml"
    toml.write_text('bits = "6:8"\neta0 = [0.001, 0.004]\nepochs = 3\n')
    assert read_grid_file(str(toml), allowed) == {"bits": "6:8", "eta0": [0.001, 0.004], "epochs": 3}
    js = tmp_path / "grid.json"
    js.write_text(json.dumps({"bits": [6, 7], "dataset": "iris"}))
    assert read_grid_file(str(js), allowed) == {"bits": [6, 7], "dataset": "iris"}
    bad = tmp_path / "bad.toml"
    bad.write_text("bits = \n")
    with pytest.raises(ValueError, match=r"^grid '.*bad.toml' is not valid TOML: "):
        read_grid_file(str(bad), allowed)
    unknown = tmp_path / "unknown.json"
    unknown.write_text('{"bitz": 4}')
    with pytest.raises(ValueError, match=r"option must be one of bits, dataset, epochs, eta0, not 'bitz'"):
        read_grid_file(str(unknown), allowed)
    with pytest.raises(ValueError, match=r"grid must be a readable file, not '.*missing.toml' \(No such file"):
        read_grid_file(str(tmp_path / "missing.toml"), allowed)
    yml = tmp_path / "grid.yaml"
    yml.write_text("bits: '6:8'\neta0: [0.001, 0.004]\ndataset: iris\n")
    assert read_grid_file(str(yml), allowed) == {"bits": "6:8", "eta0": [0.001, 0.004], "dataset": "iris"}
    bad_yaml = tmp_path / "bad.yml"
    bad_yaml.write_text("bits: [6, 7\n")
    with pytest.raises(ValueError, match=r"^grid '.*bad.yml' is not valid YAML: "):
        read_grid_file(str(bad_yaml), allowed)
    with pytest.raises(ValueError, match=r"grid must be a .toml, .yaml or .json file, not 'grid.ini'"):
        read_grid_file("grid.ini", allowed)
