"""An lnsim task: your own PyTorch model and data for ``lnsim train --task`` and ``lnsim sweep --task``.

    lnsim train --task examples/mnist1d_mlp_task.py:make_task --bits 8 --eta0 0.016 --epochs 20
    lnsim sweep --task examples/mnist1d_mlp_task.py:make_task --dynamic-range 60 --bits 4:12:2 --epochs 20

lnsim calls ``make_task(seed)`` once per seed, with PyTorch's generator already seeded from ``seed``, and
trains the returned model on the returned data with the chosen optimiser (B-bit Madam by default). The
protocol (docs/torch.md): a dict with ``model``, ``train`` and ``test``, and optionally ``loss``, ``metric``
and ``name``. Here: a two-layer PyTorch MLP on MNIST-1D, the training data as a shuffling DataLoader (an
iterable of batches, iterated once per epoch) and the test data as a pair of tensors.
"""

import torch
from mnist1d.data import get_dataset_args, make_dataset
from torch.utils.data import DataLoader, TensorDataset


def make_task(seed: int) -> dict:
    """A fresh MLP and MNIST-1D (generated offline, the same 5,000 signals for every seed)."""
    d = make_dataset(get_dataset_args())
    X, X_test = (torch.tensor(d[k], dtype=torch.float32) for k in ("x", "x_test"))
    mean, std = X.mean(0), X.std(0)
    X, X_test = (X - mean) / std, (X_test - mean) / std
    y, y_test = torch.tensor(d["y"]), torch.tensor(d["y_test"])
    model = torch.nn.Sequential(torch.nn.Linear(40, 64), torch.nn.ReLU(), torch.nn.Linear(64, 10))
    model.summary = "mlp 40-64-10 (torch)"  # optional: the model's name in lnsim's table
    return {
        "model": model,
        "train": DataLoader(TensorDataset(X, y), batch_size=32, shuffle=True),
        "test": (X_test, y_test),
        "loss": torch.nn.functional.cross_entropy,
        "name": f"MNIST-1D: {len(y)} train / {len(y_test)} test, 40 samples, 10 classes",
    }
