"""Keys of sweep tasks: stable across processes and dict order, different for any change of the configuration."""

import json
import pathlib
import subprocess
import sys

from lnsim.sweep.grid import Grid
from lnsim.sweep.tasks import code_version, plan_fidelity, plan_training, task_key

_TRAIN = {"dataset": "iris", "data": None, "hidden": "4", "epochs": 2, "batch_size": 32, "init": "quantized",
          "sigma_scale": 3.0, "schedule": "plateau", "patience": 10, "decay_factor": 2, "threshold": 1e-3,
          "test_size": 0.25}


def _tasks(grid: dict, seeds=(0, 1), **train):
    points, _ = Grid.from_options(grid).points()
    return plan_training(points, {**_TRAIN, **train}, seeds)


def _keys(grid: dict, seeds=(0, 1), **train) -> list[str]:
    return [t.key for t in _tasks(grid, seeds, **train)]


def _identities(grid: dict) -> str:
    """(identity, key) of every task, as JSON (run in another process)."""
    return json.dumps([[t.identity, t.key] for t in _tasks(grid)])


def test_same_configuration_same_key_in_another_process():
    code = "from tests.test_sweep_keys import _identities; print(_identities({'bits': '6,8', 'eta0': '0.004'}))"
    there = json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                                      cwd=pathlib.Path(__file__).parents[1],
                                      env={"PYTHONHASHSEED": "123", "PATH": ""}).stdout)
    here = [[t.identity, t.key] for t in _tasks({"bits": "6,8", "eta0": "0.004"})]
    assert len(there) == len(here) == 2 * 2 + 2  # 2 points x 2 seeds + the reference per seed
    for (identity, key), (mine, my_key) in zip(there, here):
        assert task_key(identity) == key  # hashed there, hashed here: the same key
        # the same configuration and data here (the code version is left out: the shared working tree may
        # change between the two processes)
        assert {k: v for k, v in identity.items() if k != "code"} == {k: v for k, v in mine.items() if k != "code"}
        # and with the code version it saw, this process derives the very key it derived
        assert task_key({**mine, "code": identity["code"]}) == key
        assert task_key(mine) == my_key


def test_key_ignores_dict_order():
    assert task_key({"a": 1, "b": [1.5, "x"], "c": {"y": 2, "z": 0.1}}) == \
        task_key({"c": {"z": 0.1, "y": 2}, "b": [1.5, "x"], "a": 1})
    assert task_key({"a": 0.1}) != task_key({"a": 0.1 + 1e-17 * 2**4})


def test_any_change_changes_the_key():
    base = _keys({"bits": "8", "eta0": "0.004"}, seeds=(0,))[0]
    variants = [
        _keys({"bits": "9", "eta0": "0.004"}, seeds=(0,))[0],
        _keys({"bits": "8", "eta0": "0.002"}, seeds=(0,))[0],
        _keys({"bits": "8", "eta0": "0.004", "eta_rungs": "2"}, seeds=(0,))[0],
        _keys({"bits": "8", "eta0": "0.004", "grad_format": "float16"}, seeds=(0,))[0],
        _keys({"bits": "8", "eta0": "0.004"}, seeds=(1,))[0],
        _keys({"bits": "8", "eta0": "0.004"}, seeds=(0,), epochs=3)[0],
        _keys({"bits": "8", "eta0": "0.004"}, seeds=(0,), hidden="5")[0],
        _keys({"bits": "8", "eta0": "0.004"}, seeds=(0,), dataset="wine")[0],
        _keys({"bits": "8", "eta0": "0.004"}, seeds=(0,), test_size=0.3)[0],
    ]
    assert len({base, *variants}) == 1 + len(variants)
    points, _ = Grid.from_options({"bits": "8", "eta0": "0.004"}).points()
    fidelity = [plan_fidelity(points, elements=n, steps=5, seed=0)[0].key for n in (100, 101)]
    assert len({base, *fidelity}) == 3


def test_identity_holds_code_version_and_data_fingerprint():
    points, _ = Grid.from_options({"bits": "8", "eta0": "0.004"}).points()
    task = plan_training(points, _TRAIN, (0,))[0]
    assert task.identity["code"] == code_version()
    assert set(code_version()) == {"lnsim", "format", "sources"} and len(code_version()["sources"]) == 64
    assert len(task.identity["data"]) == 64 and task.identity["config"]["seeds"] == [0]
    assert task.key == task_key(task.identity)


def test_one_reference_per_beta_and_bias_correction_each_labelled():
    tasks = _tasks({"bits": "8", "eta0": "0.016", "beta_shift": "8,10"}, seeds=(0,))
    refs = [t.meta for t in tasks if t.meta["optimizer"] == "madam"]
    assert sorted(r["series"] for r in refs) == ["FP32 Madam (beta_shift 10)", "FP32 Madam (beta_shift 8)"]
    assert sorted(r["beta_shift"] for r in refs) == [8, 10]
    single = [t.meta["series"] for t in _tasks({"bits": "8", "eta0": "0.016"}, seeds=(0,)) if t.meta["optimizer"] == "madam"]
    assert single == ["FP32 Madam"]


def test_a_failing_run_names_its_task(tmp_path):
    import numpy as np
    import pytest

    from lnsim.sweep.runner import TaskFailed, run_tasks
    from lnsim.sweep.store import PointStore

    rng = np.random.default_rng(0)
    data = tmp_path / "blobs.npz"
    np.savez(data, X=rng.normal(size=(40, 3)), y=np.repeat([0, 1], 20))
    tasks = _tasks({"bits": "8", "eta0": "0.016"}, seeds=(0,), dataset=None, data=str(data), epochs=1)
    np.savez(data, X=rng.normal(size=(40, 3)), y=np.repeat([0, 1], 20))  # the data changes after planning
    for jobs in (1, 2):
        with pytest.raises(TaskFailed, match=r"(bits 8|FP32 Madam), seed 0: ValueError: the data of seed 0 changed since the sweep was planned"):
            run_tasks(tasks, PointStore(str(tmp_path / f"out{jobs}")), jobs=jobs, progress=False, log=lambda m: None)
