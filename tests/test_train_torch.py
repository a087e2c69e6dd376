"""lnsim train and sweep on PyTorch models: the CNNs, the task protocol, checkpoints, the sweep, missing torch."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from lnsim.cli import main
from lnsim.golden import decode_bf16
from lnsim.spec import Spec
from lnsim.train import TrainConfig, checkpoint, train

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLE = os.path.join(ROOT, "examples", "mnist1d_mlp_task.py") + ":make_task"
SPEC8 = Spec.from_options(bits=8, eta0=0.016)


def _config(**options):
    return TrainConfig.from_options(SPEC8, **{"model": "cnn2d", "epochs": 2, **options})


def test_cnn2d_on_digits_learns_and_its_weights_are_the_decoded_codes():
    result = train(_config())
    run = result["runs"][0]
    assert result["data"] == ["digits: 1347 train / 450 test, 64 features, 10 classes"]
    assert run.model.describe() == "cnn2d 8x8-c16-c32-10 (9,930 parameters)"
    assert run.history["test_accuracy"][-1] > 0.8  # 10 classes: chance is 0.1
    params = run.params
    assert len(params.tensors) == len(run.model.names) == 6
    for p, t in zip(params.params, params.tensors):
        # The module computes with exactly the bit-true decoder's bfloat16 values of the codes.
        bits = decode_bf16(SPEC8.fmt, t.sign, t.k, t.sigma_star)
        expected = (bits.astype(np.uint32) << 16).view(np.float32)
        np.testing.assert_array_equal(p.detach().numpy(), expected)


def test_cnn1d_on_mnist1d_beats_chance_with_every_optimiser():
    for optimizer in ("lns-madam", "madam", "adam", "sgd"):
        result = train(TrainConfig.from_options(SPEC8, optimizer=optimizer, model="cnn1d", dataset="mnist1d", epochs=2))
        assert result["data"] == ["mnist1d: 4000 train / 1000 test, 40 features, 10 classes"]
        assert result["runs"][0].model.describe() == "cnn1d 40-c32-c32-c32-10 (7,370 parameters)"
        assert result["runs"][0].history["test_accuracy"][-1] > 0.2, optimizer


def test_training_is_fixed_by_the_seed():
    a, b = (train(_config(epochs=1, seeds=2))["runs"] for _ in range(2))
    assert [r.history for r in a] == [r.history for r in b]
    assert a[0].history != a[1].history


@pytest.mark.parametrize("optimizer", ["lns-madam", "madam", "adam", "sgd"])
def test_resumed_in_a_fresh_process_continues_bit_for_bit(optimizer, tmp_path):
    base = ["train", "--model", "cnn2d", "--bits", "8", "--eta0", "0.016", "--optimizer", optimizer, "--no-progress"]
    assert main([*base, "--epochs", "3", "--save", str(tmp_path / "whole.npz"), "--json", str(tmp_path / "whole.json")]) == 0
    assert main([*base, "--epochs", "1", "--save", str(tmp_path / "half.npz")]) == 0
    resumed = subprocess.run([sys.executable, "-m", "lnsim.cli", *base, "--epochs", "3", "--resume",
                              str(tmp_path / "half.npz"), "--save", str(tmp_path / "half.npz"), "--json",
                              str(tmp_path / "half.json")], capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    whole, half = (json.loads((tmp_path / f"{n}.json").read_text()) for n in ("whole", "half"))
    for key in ("train_loss", "test_accuracy_per_epoch", "train_accuracy", "eta_rungs"):
        assert whole[key] == half[key], key
    a, b = (checkpoint.load(str(tmp_path / f"{n}.npz"))["runs"][0]["tensors"] for n in ("whole", "half"))
    assert len(a) == len(b) == 6
    for ta, tb in zip(a, b):
        assert ta.keys() == tb.keys()
        for name in ta:
            np.testing.assert_array_equal(ta[name], tb[name])


def test_the_example_task_trains_from_the_command_line(capsys):
    assert main(["train", "--task", EXAMPLE, "--epochs", "2", "--bits", "8", "--eta0", "0.016", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("lns-madam on MNIST-1D: 4000 train / 1000 test, 40 samples, 10 classes\n")
    assert "model mlp 40-64-10 (torch) (3,274 parameters)" in out
    accuracy = float(out.split("test accuracy ")[1].split("%")[0])
    assert 20 < accuracy <= 100


_BAD_TASKS = [
    ("return 3", "task .* must return a dict with model, train and test, not int"),
    ("return {'model': torch.nn.Linear(2, 2), 'train': X}", "must return model, train, test and optionally "
     "loss, metric, name; missing test"),
    ("return {'model': 1, 'train': (X, y), 'test': (X, y)}", "model must be a torch.nn.Module, not int"),
    ("return {'model': torch.nn.Linear(2, 2), 'train': (X, y[:1]), 'test': (X, y)}",
     "train must be \\(X, y\\), two tensors of one length"),
    ("return {'model': torch.nn.Linear(2, 2), 'train': 5, 'test': (X, y)}", "train must be \\(X, y\\) tensors or"),
    ("return {'model': torch.nn.Linear(2, 2), 'train': (X, y), 'test': (X, y), 'metrik': 1}",
     "unknown keys metrik"),
    ("return {'model': torch.nn.BatchNorm1d(2), 'train': (X, y), 'test': (X, y)}", "the task's model has buffers"),
]


@pytest.mark.parametrize("body, message", _BAD_TASKS)
def test_a_task_that_breaks_the_protocol_is_one_line(body, message, tmp_path, capsys):
    path = tmp_path / "bad_task.py"
    path.write_text(textwrap.dedent(f"""
        import torch
        X, y = torch.ones(4, 2), torch.zeros(4, dtype=torch.long)

        def make(seed):
            {body}
    """))
    assert main(["train", "--task", f"{path}:make", "--epochs", "1", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("lnsim: error: ") and err.count("\n") == 1
    assert __import__("re").search(message, err), err


@pytest.mark.parametrize("argv, message", [
    (["--task", "nothere.py:make"], "task file 'nothere.py' does not exist"),
    (["--task", "json:nothing"], "task 'json:nothing': json has no function 'nothing'"),
    (["--task", "no_such_module_x:make"], "importing no_such_module_x failed"),
    (["--task", "examples"], "task must be module:function or path/to/file.py:function, not 'examples'"),
    (["--task", "json:loads", "--model", "cnn1d"], "give --task or --model, not both"),
    (["--model", "cnn3d"], "model must be one of mlp, cnn1d, cnn2d, not 'cnn3d'"),
    (["--model", "cnn2d", "--dataset", "mnist1d"], "model cnn2d needs square images, not 40 features"),
    (["--model", "cnn1d", "--dataset", "iris"], "model cnn1d needs inputs of at least 5 features, not 4"),
])
def test_bad_models_and_tasks_are_one_line(argv, message, capsys):
    assert main(["train", *argv, "--epochs", "1", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("lnsim: error: ") and err.count("\n") == 1
    assert message in err, err


def test_a_sweep_on_a_cnn_writes_the_mlp_files_and_resumes(tmp_path, capsys):
    out = tmp_path / "out"
    argv = ["sweep", "--model", "cnn2d", "--bits", "6:7", "--dynamic-range", "60", "--epochs", "1", "--quiet",
            "--out", str(out)]
    assert main(argv) == 0
    first = capsys.readouterr().out
    assert "B-bit Madam on digits (cnn2d 8x8-c16-c32-10 (9,930 parameters), 1 epochs, 1 seeds)" in first
    assert sorted(os.listdir(out)) == ["accuracy_heatmap.png", "accuracy_vs_bits.png", "points", "results.csv",
                                       "results.json", "saturation.png", "summary.md"]
    rows = json.loads((out / "results.json").read_text())
    assert [(r["optimizer"], r["bits"]) for r in rows] == [("lns-madam", 6), ("lns-madam", 7), ("madam", None)]
    assert all(r["model"] == "cnn2d 8x8-c16-c32-10 (9,930 parameters)" and r["test_accuracy"] > 0.5 for r in rows)
    points = sorted(os.listdir(out / "points"))
    assert len(points) == 3
    mtimes = {p: os.stat(out / "points" / p).st_mtime_ns for p in points}
    assert main(argv) == 0
    assert capsys.readouterr().out == first
    assert {p: os.stat(out / "points" / p).st_mtime_ns for p in points} == mtimes  # nothing retrained


def test_a_sweep_on_a_task_runs_on_a_dask_cluster_as_in_process(tmp_path, capsys):
    import distributed

    argv = ["sweep", "--task", EXAMPLE, "--bits", "8", "--eta0", "0.016", "--epochs", "1", "--no-reference", "--quiet"]
    assert main([*argv, "--out", str(tmp_path / "local")]) == 0
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        assert main([*argv, "--out", str(tmp_path / "dask"), "--backend", "dask", "--scheduler",
                     cluster.scheduler_address]) == 0
    local, dask = (json.loads((tmp_path / d / "results.json").read_text()) for d in ("local", "dask"))
    drop = lambda rows: [{k: v for k, v in r.items() if k != "seconds"} for r in rows]  # noqa: E731
    assert drop(local) == drop(dask) and local[0]["test_accuracy"] > 0.1


def test_without_torch_a_cnn_says_what_to_install():
    code = textwrap.dedent("""
        import sys
        sys.modules["torch"] = None
        from lnsim.cli import main
        sys.exit(main(["train", "--model", "cnn1d", "--epochs", "1", "--no-progress"]))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 2
    assert out.stderr == 'lnsim: error: model cnn1d trains with PyTorch, which is not installed: pip install "lnsim[torch]"\n'
