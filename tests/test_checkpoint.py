"""Training checkpoints: bit-identical round trips for every code width and base, and refusal of damaged files.

A checkpoint that fails to load must fail with one ValueError line and change nothing; one that loads must
hold exactly what was saved. Checkpoints written by earlier versions (tests/data/ckpt-*-v2.npz: iris, hidden
4, 2 epochs, default options) must still resume to what an uninterrupted run gives.
"""

import hashlib
import json
import math
import os
import pathlib
import shutil

import numpy as np
import pytest

import lnsim
from lnsim.train import checkpoint
from lnsim.cli import main
from lnsim.train.config import TrainConfig
from lnsim.train.runner import train


def _spec(bits, base):
    if base == "pow2":
        fmt = lnsim.LNSFormat(bits, base="pow2", frac_bits=min(16, max(0, bits - 6)))
    else:
        fmt = lnsim.LNSFormat(bits, min(1.0, 4.0 / 2**bits))
    return lnsim.Spec(fmt, lnsim.MadamConfig.from_rungs(fmt, 1, min(8, fmt.code_max)))


def _train(path, bits=8, base="natural", seeds=(0,), **kw):
    config = TrainConfig(_spec(bits, base), dataset="iris", hidden=(3,), epochs=1, seeds=seeds, **kw)
    return train(config, save=str(path))


# pow2 ladders deeper than 80 nepers are not valid specs: with m <= 16 that is bits > 22.
ROUND_TRIPS = [(b, "natural") for b in range(2, 25)] + [(b, "pow2") for b in range(2, 23)]


@pytest.mark.parametrize("bits, base", ROUND_TRIPS)
def test_round_trip_is_bit_identical(bits, base, tmp_path):
    path = tmp_path / "run.npz"
    result = _train(path, bits, base)
    saved = checkpoint.load(str(path))
    assert saved["config"] == result["config"].to_dict()
    live = result["runs"][0].params.tensors
    restored = checkpoint.restore_lns(saved["runs"][0]["tensors"], result["config"].spec)
    assert len(restored) == len(live) == 4
    for a, b in zip(live, restored):
        for name in ("sign", "k", "state"):
            x, y = getattr(a, name), getattr(b, name)
            assert x.dtype == y.dtype and x.shape == y.shape
            np.testing.assert_array_equal(x, y)
        assert (a.t, a.sigma_star) == (b.t, b.sigma_star) and a.t == 4  # 112 samples, batch 32
    assert max(int(t.k.max()) for t in live) <= 2**bits - 1


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A real two-seed checkpoint, its bytes and its loaded contents."""
    path = tmp_path_factory.mktemp("ck") / "run.npz"
    _train(path, seeds=(0, 1))
    return path.read_bytes(), checkpoint.load(str(path))


DATA = pathlib.Path(__file__).parent / "data"


def _fixture(optimizer: str) -> pathlib.Path:
    """A version-2 checkpoint: ``lnsim train --dataset iris --hidden 4 --epochs 2 --optimizer <optimizer>``."""
    return DATA / f"ckpt-{optimizer}-v2.npz"


def _same(a, b) -> bool:
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, np.ndarray):
        return a.dtype == b.dtype and np.array_equal(a, b)
    return a == b


def _write(tmp_path, data: bytes):
    path = tmp_path / "damaged.npz"
    path.write_bytes(data)
    return str(path)


@pytest.mark.parametrize("cut", [0, 1, 100, 0.5, -22, -1])
def test_truncated_file_is_refused(cut, saved, tmp_path):
    raw, _ = saved
    n = int(cut * len(raw)) if isinstance(cut, float) else cut % len(raw) if cut < 0 else cut
    with pytest.raises(ValueError, match=r"resume must be a readable lnsim train checkpoint|is corrupt") as e:
        checkpoint.load(_write(tmp_path, raw[:n]))
    assert "\n" not in str(e.value)


def test_every_bit_flip_is_refused_or_harmless(saved, tmp_path):
    """A flipped bit either fails the load with one line, or hits bytes nothing reads (zip timestamps)."""
    raw, original = saved
    rng = np.random.default_rng(0)
    refused = 0
    positions = rng.choice(len(raw) * 8, 300, replace=False)
    for bit in positions:
        data = bytearray(raw)
        data[bit // 8] ^= 1 << (bit % 8)
        try:
            got = checkpoint.load(_write(tmp_path, bytes(data)))
        except ValueError as e:
            assert "\n" not in str(e)
            refused += 1
        else:
            assert _same(got, original), f"bit {bit} changed what loads"
    assert refused > len(positions) // 2  # most bytes are array data, guarded by the checksum and zip CRCs


def _rewrite(tmp_path, raw, change, fix_checksum):
    path = _write(tmp_path, raw)
    with np.load(path, allow_pickle=False) as f:
        arrays = {name: f[name] for name in f.files}
    change(arrays)
    if fix_checksum:
        arrays["checksum"] = np.array(checkpoint.checksum(arrays))
    np.savez(path, **arrays)
    return path


def _flip_code(arrays):
    arrays["run0/t0/packed"] = arrays["run0/t0/packed"] ^ np.uint16(1)


@pytest.mark.parametrize("change, fix_checksum, message", [
    (_flip_code, False, r"is corrupt: its checksum does not match its contents"),
    (lambda a: a.pop("checksum"), False, r"is corrupt"),
    (lambda a: a.update(version=np.array(99)), True, r"has version 99; this lnsim reads versions 1, 2, 3"),
    (lambda a: a.update(version=np.array("two")), True, r"has version None; this lnsim reads versions 1, 2, 3"),
    (lambda a: a.update(format=np.array("something-else")), True, r"no 'lnsim-train-checkpoint' marker"),
    (lambda a: a.pop("config"), True, r"is malformed \(KeyError: 'config'\)"),
    (lambda a: a.update(config=np.array("{not json")), True, r"is malformed \(JSONDecodeError"),
])
def test_altered_contents_are_refused(change, fix_checksum, message, saved, tmp_path):
    with pytest.raises(ValueError, match=message):
        checkpoint.load(_rewrite(tmp_path, saved[0], change, fix_checksum))


@pytest.mark.parametrize("optimizer", ["lns-madam", "adam", "sgd"])
def test_version_1_without_checksum_still_loads(optimizer, tmp_path):
    """Version 1 is version 2 without the checksum."""
    def to_v1(arrays):
        arrays.pop("checksum")
        arrays["version"] = np.array(1)

    v2 = _fixture(optimizer)
    got = checkpoint.load(_rewrite(tmp_path, v2.read_bytes(), to_v1, fix_checksum=False))
    assert _same(got, checkpoint.load(str(v2)))


def test_foreign_files_are_refused(tmp_path):
    np.savez(tmp_path / "other.npz", x=np.arange(3))
    (tmp_path / "text.npz").write_text("hello")
    for path, message in [(tmp_path / "other.npz", "no 'lnsim-train-checkpoint' marker"),
                          (tmp_path / "text.npz", "unreadable"),
                          (tmp_path, "a directory"),
                          (tmp_path / "missing.npz", "no such file")]:
        with pytest.raises(ValueError, match=message):
            checkpoint.load(str(path))


def test_failed_resume_changes_nothing(saved, tmp_path, capsys):
    """A refused --resume (damaged file, or other options) leaves the checkpoint and --save target untouched."""
    raw, _ = saved
    good = _write(tmp_path, raw)
    damaged = tmp_path / "bad.npz"
    damaged.write_bytes(raw[: len(raw) // 2])
    common = ["--no-progress", "--dataset", "iris", "--hidden", "3", "--epochs", "2"]
    for argv in (["--resume", str(damaged), "--save", str(damaged)],
                 ["--bits", "10", "--resume", good, "--save", good]):
        before = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in tmp_path.iterdir()}
        assert main(["train", *common, *argv]) == 2
        err = capsys.readouterr().err
        assert err.startswith("lnsim: error: ") and err.count("\n") == 1
        assert {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in tmp_path.iterdir()} == before


def test_interrupted_save_keeps_the_previous_checkpoint(saved, tmp_path, monkeypatch):
    raw, original = saved
    path = _write(tmp_path, raw)

    def savez_then_interrupt(f, **arrays):
        f.write(b"PK\x03\x04 half a zip")
        raise KeyboardInterrupt

    monkeypatch.setattr(checkpoint.np, "savez", savez_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        _train(path)
    assert sorted(os.listdir(tmp_path)) == ["damaged.npz"]  # no temporary file left behind
    assert _same(checkpoint.load(path), original)
    assert math.isfinite(original["runs"][0]["meta"]["seconds"])


# --------------------------------------------------------------------------------------------------
# Checkpoints of earlier versions, and what version 3 writes
# --------------------------------------------------------------------------------------------------

FIXTURE_OPTIONS = ["--no-progress", "--dataset", "iris", "--hidden", "4"]
OPTIMIZERS = ["adam", "sgd", "madam", "lns-madam"]
#: The state_dict() keys of each float optimiser (lnsim.reference), after at least one step.
STATE_KEYS = {
    "adam": {"w", "t", "exp_avg", "exp_avg_sq", "lr", "beta1", "beta2", "eps", "weight_decay"},
    "sgd": {"w", "t", "momentum_buffer", "lr", "momentum", "nesterov", "weight_decay"},
    "madam": {"w", "t", "exp_avg_sq", "eta", "g_bound", "beta", "sigma_star", "bias_correction"},
}


def _cli_train(tmp_path, name, optimizer, epochs, *extra):
    """``lnsim train`` on the fixtures' options: its JSON results and its final checkpoint (loaded)."""
    out, ck = tmp_path / f"{name}.json", tmp_path / f"{name}.npz"
    argv = ["train", *FIXTURE_OPTIONS, "--optimizer", optimizer, "--epochs", str(epochs), *extra]
    assert main([*argv, "--json", str(out), "--save", str(ck)]) == 0
    return json.loads(out.read_text()), checkpoint.load(str(ck))


def _without_seconds(results: dict, saved: dict):
    results = {k: v for k, v in results.items() if k not in ("seconds", "seconds_per_seed")}
    runs = [{"meta": {k: v for k, v in r["meta"].items() if k != "seconds"}, "tensors": r["tensors"]}
            for r in saved["runs"]]
    return results, {**saved, "runs": runs}


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """Per optimiser: a fresh 3-epoch run on the fixtures' options (results and checkpoint, seconds dropped)."""
    tmp = tmp_path_factory.mktemp("fresh")
    return {o: _without_seconds(*_cli_train(tmp, o, o, 3)) for o in OPTIMIZERS}


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_version_2_checkpoint_resumes_to_the_uninterrupted_run(optimizer, uninterrupted, tmp_path, capsys):
    """Resuming a version-2 checkpoint (2 epochs) to epoch 3 gives the fresh 3-epoch run's history and state."""
    old = tmp_path / "old.npz"
    shutil.copy(_fixture(optimizer), old)
    results, saved = _without_seconds(*_cli_train(tmp_path, "resumed", optimizer, 3, "--resume", str(old)))
    capsys.readouterr()
    fresh_results, fresh_saved = uninterrupted[optimizer]
    assert results == fresh_results
    assert len(saved["runs"][0]["meta"]["history"]["train_loss"]) == 3
    assert _same(saved, fresh_saved)  # weights, moments and step counts bit for bit
    assert old.read_bytes() == _fixture(optimizer).read_bytes()  # --resume only reads


@pytest.mark.parametrize("optimizer", ["adam", "sgd", "madam"])
def test_version_2_float_state_loads_under_the_state_dict_keys(optimizer):
    with np.load(_fixture(optimizer), allow_pickle=False) as f:
        assert int(f["version"]) == 2 and "run0/t0/a/_w" in f.files  # the fixture holds private attribute names
        saved_w = f["run0/t0/a/_w"]
    tensors = checkpoint.load(str(_fixture(optimizer)))["runs"][0]["tensors"]
    assert len(tensors) == 4
    for state in checkpoint.restore_float(tensors):
        assert set(state) == STATE_KEYS[optimizer] and state["t"] == 8  # 4 steps per epoch
    np.testing.assert_array_equal(tensors[0]["w"], saved_w)


@pytest.mark.parametrize("optimizer", ["adam", "sgd", "madam"])
def test_version_3_writes_state_dict_keys_only(optimizer, tmp_path, capsys):
    _cli_train(tmp_path, "new", optimizer, 1)
    capsys.readouterr()
    with np.load(tmp_path / "new.npz", allow_pickle=False) as f:
        assert int(f["version"]) == 3
        arrays = {name.rpartition("/")[2] for name in f.files if name.startswith("run0/t0/a/")}
        scalars = set(json.loads(str(f["run0/t0/scalars"])))
    assert arrays | scalars == STATE_KEYS[optimizer] and not arrays & scalars
    assert arrays == {k for k in STATE_KEYS[optimizer] if k == "w" or "avg" in k or "buffer" in k}


def _add_field(name, value):
    def change(arrays):
        arrays[name] = value
    return change


def _add_scalar(name, value):
    def change(arrays):
        scalars = json.loads(str(arrays["run0/t1/scalars"]))
        arrays["run0/t1/scalars"] = np.array(json.dumps({**scalars, name: value}))
    return change


@pytest.mark.parametrize("change, message", [
    (_add_field("run0/t0/a/_w_backup", np.zeros((4, 4))),
     r"is malformed \(ValueError: version-2 float optimiser attribute '_w_backup' is not one lnsim wrote\)$"),
    (_add_scalar("_schedule", 1.0),
     r"is malformed \(ValueError: version-2 float optimiser attribute '_schedule' is not one lnsim wrote\)$"),
    (_add_scalar("_t", "8"), None),
])
def test_unknown_or_bad_version_2_attributes_are_refused(change, message, tmp_path, capsys):
    """An attribute lnsim never wrote is refused by load; a bad value by the optimiser's load_state_dict."""
    path = _rewrite(tmp_path, _fixture("adam").read_bytes(), change, fix_checksum=True)
    if message is not None:
        with pytest.raises(ValueError, match=message):
            checkpoint.load(path)
        return
    checkpoint.load(path)
    assert main(["train", *FIXTURE_OPTIONS, "--optimizer", "adam", "--epochs", "3", "--resume", path]) == 2
    assert capsys.readouterr().err == "lnsim: error: adam tensor 1: Adam state t must be an integer >= 0, not '8'\n"


def test_version_3_private_names_are_refused_on_resume(tmp_path, capsys):
    _cli_train(tmp_path, "new", "adam", 1)
    path = _rewrite(tmp_path, (tmp_path / "new.npz").read_bytes(), _add_scalar("_lr", 0.001), fix_checksum=True)
    capsys.readouterr()
    assert main(["train", *FIXTURE_OPTIONS, "--optimizer", "adam", "--epochs", "2", "--resume", path]) == 2
    err = capsys.readouterr().err
    assert err == ("lnsim: error: adam tensor 1: Adam state must have the keys w, t, exp_avg, exp_avg_sq, lr, beta1, "
                   "beta2, eps, weight_decay, not a dict with the unknown key '_lr'\n")
