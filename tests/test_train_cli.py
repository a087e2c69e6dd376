"""``lnsim train`` end to end: every optimiser learns, codes stay codes, resume equals an uninterrupted run."""

import json
import re

import numpy as np
import pytest

from lnsim.cli import main as lnsim_main
from lnsim.cli.main import build_parser
from lnsim.cli.train import config_from_args
from lnsim.cli.train import run as run_train
from lnsim.train import checkpoint


def _args(argv):
    return build_parser().parse_args(["train", "--no-progress", *argv])


def main(argv):
    """``lnsim train ARGV``."""
    return lnsim_main(["train", *argv])


def train(argv, tmp_path, name="out"):
    path = tmp_path / f"{name}.json"
    assert run_train(_args([*argv, "--json", str(path)])) == 0
    return json.loads(path.read_text())


@pytest.mark.parametrize("optimizer, epochs", [("lns-madam", 3), ("madam", 3), ("adam", 2), ("sgd", 2)])
def test_each_optimizer_learns(optimizer, epochs, tmp_path):
    r = train(["--optimizer", optimizer, "--epochs", str(epochs)], tmp_path)
    assert r["test_accuracy"]["mean"] > 0.85  # chance is 0.10
    assert r["optimizer"] == optimizer and r["dataset"] == "digits" and len(r["train_loss"]["mean"]) == epochs
    assert r["train_loss"]["mean"][-1] < r["train_loss"]["mean"][0]
    assert (r["bits"] == 12) == (optimizer == "lns-madam")


def test_json_fields_and_plot(tmp_path, capsys):
    png = tmp_path / "curves.png"
    r = train(["--bits", "8", "--eta0", "0.016", "--epochs", "2", "--seeds", "2", "--dataset", "iris",
               "--hidden", "16", "--plot", str(png)], tmp_path)
    out = capsys.readouterr().out
    assert "lns-madam on iris: 112 train / 38 test, 4 features, 3 classes" in out
    assert "B=8 eta0=0.016, eta 1 rungs, eta_star 8 rungs" in out
    for key in ("test_accuracy", "train_loss", "bits", "eta0", "optimizer", "dataset", "seconds", "saturated"):
        assert key in r
    assert r["bits"] == 8 and r["eta0"] == 0.016 and r["eta"] == 0.016 and r["seeds"] == [0, 1]
    assert len(r["test_accuracy"]["per_seed"]) == 2 and len(r["train_loss"]["per_seed"][1]) == 2
    sat = r["saturated"]
    assert sat["weights"] == 4 * 16 + 16 + 16 * 3 + 3 and len(sat["k0"]) == 2 and len(sat["per_tensor"][0]) == 4
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_epoch_ticks_are_whole_epochs():
    from lnsim.train.plots import training_figure
    from lnsim.train.report import summarise
    from lnsim.train.runner import train as run

    config = config_from_args(_args(["--bits", "8", "--eta0", "0.016", "--epochs", "2", "--dataset", "iris",
                                     "--hidden", "8"]))
    result = run(config, progress=False, threads=1)
    fig = training_figure(result, summarise(result))
    for ax in fig.axes[:2]:
        assert ax.get_xlabel() == "epoch"
        ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
        assert ticks and all(float(t).is_integer() for t in ticks), ticks


@pytest.mark.parametrize("bits, eta0", [(8, 0.016), (12, 0.001)])
def test_weights_never_leave_the_code_domain(bits, eta0, tmp_path):
    ck = tmp_path / "run.npz"
    train(["--bits", str(bits), "--eta0", str(eta0), "--epochs", "3", "--save", str(ck), "--hidden", "32"], tmp_path)
    saved = checkpoint.load(str(ck))
    first = _first_codes(bits, eta0)
    n_sat = 0
    for raw, signs0 in zip(saved["runs"][0]["tensors"], first):
        words = raw["packed"]
        assert words.dtype == (np.uint16 if bits < 16 else np.uint32)
        assert int(words.max()) < 2 ** (bits + 1)
        sign, k = words >> bits, words & (2**bits - 1)
        np.testing.assert_array_equal(sign, signs0)  # frozen
        n_sat += int(np.count_nonzero(k == 2**bits - 1) + np.count_nonzero(k == 0))
    assert n_sat > 0  # the run reached both ends of the ladder and stayed on it


def _first_codes(bits, eta0):
    from lnsim.train.model import MLP

    w0 = MLP(64, (32,), 10).init_float(np.random.default_rng([0, 0]))
    return [(w < 0).astype(np.uint16) for w in w0]


def _codes(path):
    return [[(r["meta"]["epoch"], *(t[k] for t in r["tensors"] for k in sorted(t) if not k.endswith("scalars")))]
            for r in checkpoint.load(str(path))["runs"]]


@pytest.mark.parametrize("extra", [
    ["--optimizer", "lns-madam", "--seeds", "2", "--patience", "1", "--threshold", "0.5"],
    ["--optimizer", "sgd", "--patience", "1", "--threshold", "0.5"],
    ["--optimizer", "madam", "--patience", "1", "--threshold", "0.5"],
])
def test_resume_equals_uninterrupted(extra, tmp_path):
    common = ["--hidden", "16", "--dataset", "wine", *extra]
    whole = train([*common, "--epochs", "4", "--save", str(tmp_path / "whole.npz")], tmp_path, "whole")
    train([*common, "--epochs", "2", "--save", str(tmp_path / "half.npz")], tmp_path, "half")
    resumed = train([*common, "--epochs", "4", "--resume", str(tmp_path / "half.npz"), "--save",
                     str(tmp_path / "resumed.npz")], tmp_path, "resumed")
    for a, b in zip(_codes(tmp_path / "whole.npz"), _codes(tmp_path / "resumed.npz")):
        for x, y in zip(a[0], b[0]):
            np.testing.assert_array_equal(x, y)
    for key in ("test_accuracy", "train_loss", "eta_rungs", "lr_decays", "saturated"):
        assert whole[key] == resumed[key]
    assert max(whole["lr_decays"]) > 0  # the schedule state was resumed too


def test_resume_with_other_options_is_refused(tmp_path):
    ck = tmp_path / "a.npz"
    train(["--epochs", "1", "--hidden", "8", "--dataset", "iris", "--save", str(ck)], tmp_path)
    with pytest.raises(ValueError, match="resume: the checkpoint was saved with bits=12, not 10; repeat the original"):
        run_train(_args(["--epochs", "2", "--hidden", "8", "--dataset", "iris", "--bits", "10", "--resume", str(ck)]))
    with pytest.raises(ValueError, match=r"resume: the checkpoint was saved with hidden=\[8\], not \[9\]"):
        run_train(_args(["--epochs", "2", "--hidden", "9", "--dataset", "iris", "--resume", str(ck)]))


@pytest.mark.parametrize("argv, message", [
    (["--optimizer", "rmsprop"], "optimizer must be one of lns-madam, madam, adam, sgd, not 'rmsprop'"),
    (["--dataset", "mnist"], "dataset must be one of digits, iris, wine, breast_cancer, mnist1d, not 'mnist'"),
    (["--bits", "8", "--eta0", "0.016", "--eta", "0.02"], "eta must be a whole multiple of eta0=0.016"),
    (["--bits", "25"], "bits must be an integer in 2..24, not 25"),
    (["--epochs", "0"], "epochs must be an integer >= 1, not 0"),
    (["--hidden", "12,x"], "hidden must be comma-separated integers, not '12,x'"),
    (["--init", "zeros"], "init must be one of quantized, uniform-rungs, not 'zeros'"),
    (["--data", "nope.npz"], r"data must be an existing .npz file holding X and y, not 'nope.npz' \(no such file\)"),
    (["--resume", "nope.npz"], "resume must be an existing lnsim train checkpoint"),
])
def test_errors_are_one_line(argv, message, capsys):
    assert main(["--no-progress", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("lnsim: error: ") and err.count("\n") == 1
    assert re.search(message, err)


def test_user_data_and_default_eta(tmp_path, capsys):
    rng = np.random.default_rng(0)
    X = np.concatenate([rng.normal(-2, 1, (30, 2)), rng.normal(2, 1, (30, 2))])
    np.savez(tmp_path / "blobs.npz", X=X, y=np.repeat([0, 1], 30))
    r = train(["--data", str(tmp_path / "blobs.npz"), "--bits", "10", "--eta0", "0.004", "--epochs", "5",
               "--hidden", "8"], tmp_path)
    assert r["eta"] == pytest.approx(0.012) and r["spec"]["eta_rungs"] == 3  # nearest whole rung to 0.01
    assert r["test_accuracy"]["mean"] > 0.9


def test_json_is_written_atomically(tmp_path, monkeypatch):
    # Through a temporary file and os.replace: a reader never sees half a file, a failed write keeps the old one.
    import os

    import lnsim.files

    path = tmp_path / "out.json"
    path.write_text("old\n")
    replaced, os_replace = [], os.replace

    def replace(src, dst):
        replaced.append((os.path.dirname(src), dst))
        return os_replace(src, dst)

    monkeypatch.setattr(lnsim.files.os, "replace", replace)
    assert main(["--no-progress", "--epochs", "1", "--dataset", "iris", "--hidden", "4", "--json", str(path)]) == 0
    assert replaced == [(str(tmp_path), str(path))]
    assert json.loads(path.read_text())["epochs"] == 1


def test_train_config_from_options_is_what_the_command_line_builds():
    from lnsim.spec import Spec
    from lnsim.train.config import TrainConfig

    spec = Spec.from_options(bits=8, eta0=0.016)
    config = TrainConfig.from_options(spec, hidden="16,8", seeds=3, seed=2, dataset="iris", epochs=2)
    assert config.hidden == (16, 8) and config.seeds == (2, 3, 4) and config.dataset == "iris"
    assert config == config_from_args(_args(["--bits", "8", "--eta0", "0.016", "--hidden", "16,8", "--seeds", "3",
                                             "--seed", "2", "--dataset", "iris", "--epochs", "2"]))
    assert TrainConfig.from_options(spec) == TrainConfig(spec=spec)  # every default from the fields
    with pytest.raises(ValueError, match="give --dataset or --data, not both"):
        TrainConfig.from_options(spec, dataset="iris", data="x.npz")
    with pytest.raises(ValueError, match="training option must be one of optimizer, model, task, dataset"):
        TrainConfig.from_options(spec, epoch=3)


def test_resume_says_where_it_starts_and_refuses_fewer_epochs_than_done(tmp_path, capsys):
    base = ["train", "--dataset", "iris", "--hidden", "4", "--no-progress"]
    assert lnsim_main([*base, "--epochs", "3", "--save", str(tmp_path / "c.npz")]) == 0
    capsys.readouterr()
    assert lnsim_main([*base, "--epochs", "2", "--resume", str(tmp_path / "c.npz")]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err == ["lnsim: error: resume: seed 0 of the checkpoint is already at epoch 3, past --epochs 2; give "
                   "--epochs 3 or more to continue it"]
    assert lnsim_main([*base, "--epochs", "4", "--resume", str(tmp_path / "c.npz"), "--json", str(tmp_path / "r.json")]) == 0
    assert capsys.readouterr().err == (f"lnsim train: seed 0: resuming from epoch 3 of 4\n"
                                       f"wrote {tmp_path / 'r.json'}: results of 1 seed\n")
    assert json.loads((tmp_path / "r.json").read_text())["config"]["epochs"] == 4
