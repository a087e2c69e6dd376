"""Training checkpoints: bit-identical round trips for every code width and base, and refusal of damaged files.

A checkpoint that fails to load must fail with one ValueError line and change nothing; one that loads must
hold exactly what was saved.
"""

import hashlib
import math
import os

import numpy as np
import pytest

import lnsim
from lnsim.train import checkpoint
from lnsim.train.cli import main
from lnsim.train.runner import TrainConfig, train


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
    (lambda a: a.update(version=np.array(99)), True, r"has version 99; this lnsim reads versions 1, 2"),
    (lambda a: a.update(version=np.array("two")), True, r"has version None; this lnsim reads versions 1, 2"),
    (lambda a: a.update(format=np.array("something-else")), True, r"no 'lnsim-train-checkpoint' marker"),
    (lambda a: a.pop("config"), True, r"is malformed \(KeyError: 'config'\)"),
    (lambda a: a.update(config=np.array("{not json")), True, r"is malformed \(JSONDecodeError"),
])
def test_altered_contents_are_refused(change, fix_checksum, message, saved, tmp_path):
    with pytest.raises(ValueError, match=message):
        checkpoint.load(_rewrite(tmp_path, saved[0], change, fix_checksum))


def test_version_1_without_checksum_still_loads(saved, tmp_path):
    def to_v1(arrays):
        arrays.pop("checksum")
        arrays["version"] = np.array(1)

    got = checkpoint.load(_rewrite(tmp_path, saved[0], to_v1, fix_checksum=False))
    assert _same(got, saved[1])


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
        assert main([*common, *argv]) == 2
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
