"""Data for the trainer: scikit-learn's bundled data sets by name, or the user's arrays from an ``.npz`` file.

Every data set becomes a :class:`Split`: float32 features standardised with the training part's mean and
standard deviation, labels renumbered 0 .. n_classes - 1 (int64). Without a given test set the split is
stratified and fixed by the seed.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass

import numpy as np

from lnsim.files import read_npz
from lnsim.validation import check_interval

__all__ = ["BUNDLED", "Split", "load_dataset", "load_arrays", "make_split"]

#: Data sets shipped inside scikit-learn (no download), by the name ``--dataset`` takes.
BUNDLED = ("digits", "iris", "wine", "breast_cancer")

#: Share of the samples held out for testing when the data has no test set (450 of digits' 1797).
DEFAULT_TEST_SIZE = 0.25


@dataclass(frozen=True)
class Split:
    """A standardised train/test split.

    Attributes
    ----------
    name : str
        The bundled name or the file path.
    X_train, X_test : float32 arrays (n, n_features)
    y_train, y_test : int64 arrays of labels 0 .. n_classes - 1
    classes : array
        The original label of each class index.
    """

    name: str
    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    classes: np.ndarray

    @property
    def n_features(self) -> int:
        """Number of input features."""
        return self.X_train.shape[1]

    @property
    def n_classes(self) -> int:
        """Number of classes."""
        return len(self.classes)

    def fingerprint(self) -> str:
        """SHA-256 of the four arrays: a checkpoint is only resumed on the very same data."""
        h = hashlib.sha256()
        for a in (self.X_train, self.y_train, self.X_test, self.y_test):
            h.update(str(a.shape).encode())
            h.update(np.ascontiguousarray(a).tobytes())
        return h.hexdigest()

    def describe(self) -> str:
        """One line, e.g. ``digits: 1347 train / 450 test, 64 features, 10 classes``."""
        return (f"{self.name}: {len(self.y_train)} train / {len(self.y_test)} test, "
                f"{self.n_features} features, {self.n_classes} classes")


def load_dataset(source: str, *, seed: int = 0, test_size: float = DEFAULT_TEST_SIZE) -> Split:
    """Load a bundled data set by name, or ``X``, ``y`` (optional ``X_test``, ``y_test``) from an ``.npz`` file.

    Parameters
    ----------
    source : str
        One of :data:`BUNDLED`, or a path to an ``.npz`` file.
    seed : int
        Seed of the stratified split (ignored when the file has a test set).
    test_size : float
        Share of the samples held out for testing, in (0, 1).

    Raises
    ------
    ValueError
        For an unknown name, an unreadable file, or bad data (see :func:`make_split`).
    """
    X, y, X_test, y_test = load_arrays(source)
    return make_split(X, y, X_test, y_test, seed=seed, test_size=test_size, name=source)


def load_arrays(source: str):
    """The raw ``(X, y, X_test, y_test)`` of a bundled name or an ``.npz`` path (the test pair may be None)."""
    if source in BUNDLED:
        from sklearn import datasets

        bunch = getattr(datasets, f"load_{source}")()
        return bunch.data, bunch.target, None, None
    if not source.endswith(".npz") and not os.path.exists(source):
        raise ValueError(f"dataset must be one of {', '.join(BUNDLED)} or an .npz file path, not {source!r}")
    arrays = read_npz(source, "data", ".npz file holding X and y")
    missing = [name for name in ("X", "y") if name not in arrays]
    if missing:
        raise ValueError(f"data file {source!r} must hold arrays X and y; missing {', '.join(missing)} "
                         f"(found: {', '.join(sorted(arrays)) or 'nothing'})")
    if ("X_test" in arrays) != ("y_test" in arrays):
        raise ValueError(f"data file {source!r} must hold both X_test and y_test, or neither")
    return arrays["X"], arrays["y"], arrays.get("X_test"), arrays.get("y_test")


def _check_X(name: str, X) -> np.ndarray:
    X = np.asarray(X)
    if X.dtype.kind not in "biuf":
        raise ValueError(f"{name} must be a numeric array, not dtype {X.dtype}")
    if X.ndim != 2 or X.shape[0] == 0 or X.shape[1] == 0:
        raise ValueError(f"{name} must be a 2-D array (samples, features) with at least one of each, not shape {X.shape}")
    X = X.astype(np.float64)
    bad = ~np.isfinite(X)
    if bad.any():
        i, j = (int(v) for v in np.argwhere(bad)[0])
        raise ValueError(f"{name} must be finite, not {float(X[i, j])!r} at sample {i}, feature {j} "
                         f"({int(bad.sum())} non-finite values)")
    return X


def _check_y(name: str, y, n: int, X_name: str) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array of class labels, not shape {y.shape}")
    if y.dtype.kind not in "iu":
        raise ValueError(f"{name} must hold integer class labels, not dtype {y.dtype}")
    if len(y) != n:
        raise ValueError(f"{name} must have one label per sample of {X_name} ({n}), not {len(y)}")
    return y


def make_split(X, y, X_test=None, y_test=None, *, seed: int = 0, test_size: float = DEFAULT_TEST_SIZE,
               name: str = "data") -> Split:
    """Check the arrays, split them (stratified by ``seed``) unless a test set is given, and standardise.

    Raises
    ------
    ValueError
        For arrays of the wrong shape or dtype, non-finite features, labels that are not integers, fewer
        than two classes, a class too small to stratify, or test labels absent from the training data.
    """
    check_interval("test_size", test_size, 0, 1, closed_low=False)
    X = _check_X("X", X)
    y = _check_y("y", y, X.shape[0], "X")
    classes, y_idx = np.unique(y, return_inverse=True)
    if len(classes) < 2:
        raise ValueError(f"y must hold at least two classes, not {len(classes)} (label {classes[0].item()!r})")
    if X_test is None:
        counts = np.bincount(y_idx)
        if counts.min() < 2:
            raise ValueError(f"every class must have at least 2 samples to split stratified; "
                             f"class {classes[counts.argmin()].item()!r} has {counts.min()}")
        from sklearn.model_selection import train_test_split

        X_train, X_test, y_train, y_test = train_test_split(
            X, y_idx, test_size=test_size, stratify=y_idx, random_state=seed)
    else:
        X_test = _check_X("X_test", X_test)
        if X_test.shape[1] != X.shape[1]:
            raise ValueError(f"X_test must have the {X.shape[1]} features of X, not {X_test.shape[1]}")
        y_test = _check_y("y_test", y_test, X_test.shape[0], "X_test")
        unseen = np.setdiff1d(y_test, classes)
        if unseen.size:
            raise ValueError(f"y_test must hold only labels present in y, not {unseen[0].item()!r}")
        X_train, y_train = X, y_idx
        y_test = np.searchsorted(classes, y_test)
    mean = X_train.mean(axis=0)
    std = X_train.std(axis=0)
    std[std == 0] = 1.0  # constant features (digits' blank border pixels) stay 0
    return Split(
        name=name,
        X_train=((X_train - mean) / std).astype(np.float32),
        y_train=np.asarray(y_train, np.int64),
        X_test=((X_test - mean) / std).astype(np.float32),
        y_test=np.asarray(y_test, np.int64),
        classes=classes,
    )
