"""The plateau schedule in whole rungs."""

import pytest

from lnsim.train.schedule import PlateauSchedule


def test_decays_in_whole_rungs_to_one():
    s = PlateauSchedule(10, factor=2, patience=2)
    seen = []
    for loss in [1.0, 0.5] + [0.5] * 20:
        s.update(loss)
        seen.append(s.rungs)
    assert seen[:2] == [10, 10]
    assert sorted(set(seen), reverse=True) == [10, 5, 2, 1] and seen[-1] == 1 and s.decays == 3
    assert s.scale == 0.1


def test_constant_and_progress():
    s = PlateauSchedule(8, patience=None)
    for _ in range(50):
        s.update(1.0)
    assert s.rungs == 8
    s = PlateauSchedule(8, patience=3, threshold=0.01)
    for loss in (1.0, 0.98, 0.96, 0.95):  # 1.0 -> 0.98 counts; 0.98 -> 0.975... each > 1% better
        assert not s.update(loss)
    assert s.rungs == 8


def test_state_round_trip():
    s = PlateauSchedule(10, patience=1)
    for loss in (1.0, 1.0, 1.0):
        s.update(loss)
    t = PlateauSchedule(10, patience=1)
    t.load_state(s.state())
    assert (t.rungs, t.best, t.bad_epochs, t.decays) == (s.rungs, s.best, s.bad_epochs, s.decays) == (2, 1.0, 0, 2)


@pytest.mark.parametrize("kw, message", [
    ({"start_rungs": 0}, "start_rungs must be an integer >= 1, not 0"),
    ({"start_rungs": 4, "factor": 1}, "decay_factor must be an integer >= 2, not 1"),
    ({"start_rungs": 4, "patience": 0}, "patience must be an integer >= 1, not 0"),
])
def test_bad_values(kw, message):
    with pytest.raises(ValueError, match=message):
        PlateauSchedule(**kw)
