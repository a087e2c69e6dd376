"""Data sets and splits for the trainer: bundled names, .npz files, stratification, standardisation, errors."""

import numpy as np
import pytest

from lnsim.train.data import BUNDLED, load_dataset, make_split


@pytest.mark.parametrize("name, n, features, classes", [
    ("digits", 1797, 64, 10), ("iris", 150, 4, 3), ("wine", 178, 13, 3), ("breast_cancer", 569, 30, 2),
])
def test_bundled(name, n, features, classes):
    s = load_dataset(name, seed=0)
    assert name in BUNDLED
    assert len(s.y_train) + len(s.y_test) == n
    assert s.n_features == features and s.n_classes == classes
    assert s.X_train.dtype == np.float32 and s.y_train.dtype == np.int64
    assert set(np.unique(s.y_test)) == set(range(classes))


def test_digits_split_is_stratified_seeded_and_standardised():
    a, b, c = (load_dataset("digits", seed=s) for s in (0, 0, 1))
    assert len(a.y_test) == 450 and len(a.y_train) == 1347
    np.testing.assert_array_equal(a.X_test, b.X_test)
    assert a.fingerprint() == b.fingerprint() != c.fingerprint()
    # Stratified: every class's share of the test set within one sample of its share overall.
    overall = np.bincount(np.concatenate([a.y_train, a.y_test])) / 1797
    assert np.all(np.abs(np.bincount(a.y_test) - 450 * overall) <= 1)
    np.testing.assert_allclose(a.X_train.mean(axis=0), 0, atol=1e-5)
    std = a.X_train.std(axis=0)
    assert np.all((np.abs(std - 1) < 1e-4) | (std == 0))  # blank border pixels stay 0


def test_npz_without_and_with_test_set(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 3))
    y = np.repeat([3, 7], 20)
    np.savez(tmp_path / "a.npz", X=X, y=y)
    s = load_dataset(str(tmp_path / "a.npz"), seed=0)
    assert len(s.y_test) == 10 and list(s.classes) == [3, 7]
    np.savez(tmp_path / "b.npz", X=X, y=y, X_test=X[:5], y_test=y[:5])
    s = load_dataset(str(tmp_path / "b.npz"))
    assert len(s.y_train) == 40 and list(s.y_test) == [0] * 5


def _bad(X, y, **kw):
    return lambda: make_split(X, y, **kw)


@pytest.mark.parametrize("X, y, kw, message", [
    (np.zeros(10), np.zeros(10, int), {}, r"X must be a 2-D array \(samples, features\) .* not shape \(10,\)"),
    (np.zeros((10, 2)), np.zeros((10, 1), int), {}, r"y must be a 1-D array of class labels, not shape \(10, 1\)"),
    (np.zeros((10, 2)), np.zeros(9, int), {}, r"y must have one label per sample of X \(10\), not 9"),
    (np.zeros((10, 2)), np.repeat([0.0, 1.0], 5), {}, "y must hold integer class labels, not dtype float64"),
    (np.zeros((10, 2)), np.zeros(10, int), {}, r"y must hold at least two classes, not 1 \(label 0\)"),
    (np.full((10, 2), np.nan), np.repeat([0, 1], 5), {}, r"X must be finite, not nan at sample 0, feature 0 \(20 non-finite"),
    (np.zeros((10, 2)), np.array([0] * 9 + [1]), {}, "every class must have at least 2 samples to split stratified; class 1 has 1"),
    (np.array([["a", "b"]] * 4), np.repeat([0, 1], 2), {}, "X must be a numeric array, not dtype <U1"),
    (np.zeros((10, 2)), np.repeat([0, 1], 5), {"X_test": np.zeros((2, 3)), "y_test": np.array([0, 1])},
     "X_test must have the 2 features of X, not 3"),
    (np.zeros((10, 2)), np.repeat([0, 1], 5), {"X_test": np.zeros((2, 2)), "y_test": np.array([0, 5])},
     "y_test must hold only labels present in y, not 5"),
])
def test_bad_data(X, y, kw, message):
    with pytest.raises(ValueError, match=message):
        make_split(X, y, **kw)


def test_bad_sources(tmp_path):
    with pytest.raises(ValueError, match="dataset must be one of digits, iris, wine, breast_cancer, mnist1d or an .npz file path"):
        load_dataset("mnist")
    with pytest.raises(ValueError, match="no such file"):
        load_dataset(str(tmp_path / "missing.npz"))
    np.savez(tmp_path / "c.npz", X=np.zeros((4, 2)))
    with pytest.raises(ValueError, match="must hold arrays X and y; missing y"):
        load_dataset(str(tmp_path / "c.npz"))
    np.savez(tmp_path / "d.npz", X=np.zeros((4, 2)), y=np.array([0, 0, 1, 1]), X_test=np.zeros((1, 2)))
    with pytest.raises(ValueError, match="must hold both X_test and y_test, or neither"):
        load_dataset(str(tmp_path / "d.npz"))
    (tmp_path / "e.npz").write_text("not a zip")
    with pytest.raises(ValueError, match="must be a readable .npz file holding X and y"):
        load_dataset(str(tmp_path / "e.npz"))
