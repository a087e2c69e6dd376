"""lnsim.validation: the checks every parameter goes through."""

import numpy as np
import pytest

from lnsim.validation import SpecError, check_bool, check_choice, check_int, check_interval, check_positive, is_real


def test_numpy_bools_are_bools_not_numbers():
    assert check_bool("x", np.True_) is True and check_bool("x", np.False_) is False
    assert not is_real(np.True_) and not is_real(True) and is_real(np.float32(1.5)) and is_real(3)
    with pytest.raises(SpecError, match="x must be an integer >= 1, not True"):
        check_int("x", True, 1)
    with pytest.raises(SpecError, match=r"x must be a finite number > 0, not np.True_|x must be a finite number > 0, not True"):
        check_positive("x", np.True_)


@pytest.mark.parametrize("call, message", [
    (lambda: check_int("n", 5, 1, 4), "n must be an integer in 1..4, not 5"),
    (lambda: check_positive("eta", float("inf"), 1.0), "eta must be a finite number in (0, 1], not inf"),
    (lambda: check_interval("momentum", 1, 0, 1), "momentum must be a number in [0, 1), not 1"),
    (lambda: check_interval("test_size", 0, 0, 1, closed_low=False), "test_size must be a number in (0, 1), not 0"),
    (lambda: check_bool("flag", "yes"), "flag must be True or False, not 'yes'"),
    (lambda: check_choice("unit", "x", ("madam", "linear"), hint="!"), "unit must be one of madam, linear, not 'x'!"),
])
def test_one_line_messages(call, message):
    with pytest.raises(SpecError) as e:
        call()
    assert str(e.value) == message


def test_a_grid_files_list_of_hidden_widths():
    from lnsim.spec import Spec
    from lnsim.train.config import TrainConfig

    spec = Spec.from_options(bits=8, eta0=0.016)
    assert TrainConfig.from_options(spec, hidden=["8", "4"]).hidden == (8, 4)
    assert TrainConfig.from_options(spec, hidden=[16]).hidden == (16,)
    assert TrainConfig.from_options(spec, hidden=32).hidden == (32,)
    assert TrainConfig.from_options(spec, hidden="").hidden == ()
