"""The trainer's convolutional models: small CNNs whose epoch runs in about a second on two cores.

Both take a batch of flat feature vectors (float32, ``(n, n_features)``, as :class:`lnsim.train.Split` holds
them) and return class logits; ReLU after every convolution, no normalisation layers (so every parameter
starts away from zero, and B-bit Madam can hold them all):

- :class:`CNN1D`, for signals such as MNIST-1D (40 samples): 1-D convolutions of kernel 5, then 3, ...,
  stride 2, ``channels`` wide, then one linear layer.
- :class:`CNN2D`, for square images such as digits (8 x 8): 3 x 3 convolutions, padding 1, the first of
  stride 1 and the others stride 2, then one linear layer.
"""

from __future__ import annotations

import math

from torch import nn

__all__ = ["CNN1D", "CNN2D", "CNN_MODELS", "build_model"]


class CNN1D(nn.Module):
    """1-D CNN: ``Conv1d(1 -> c0, k5, s2)``, ``Conv1d(c_i -> c_{i+1}, k3, s2)``, ..., ReLU each, flatten, Linear."""

    def __init__(self, length: int, n_classes: int, channels: tuple):
        super().__init__()
        layers, c_in, n = [], 1, length
        for i, c in enumerate(channels):
            k = 5 if i == 0 else 3
            if n < k and i == 0:
                raise ValueError(f"model cnn1d needs inputs of at least {k} features, not {length}")
            if n < k:
                raise ValueError(f"model cnn1d: {len(channels)} convolutions need longer inputs than {length} "
                                 f"features (layer {i} gets {n} samples for a kernel of {k}); use fewer --hidden widths")
            layers += [nn.Conv1d(c_in, c, k, stride=2), nn.ReLU()]
            c_in, n = c, (n - k) // 2 + 1
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(c_in * n, n_classes)
        self.summary = f"cnn1d {length}-{'-'.join(f'c{c}' for c in channels)}-{n_classes}"

    def forward(self, x):
        """Logits ``(n, n_classes)`` of flat signals ``x`` ``(n, length)``."""
        return self.classifier(self.features(x.unsqueeze(1)).flatten(1))


class CNN2D(nn.Module):
    """2-D CNN on ``side x side`` images: ``Conv2d(1 -> c0, 3x3, pad 1)``, ``Conv2d(c_i -> c_{i+1}, 3x3, pad 1,
    stride 2)``, ..., ReLU each, flatten, Linear."""

    def __init__(self, n_features: int, n_classes: int, channels: tuple):
        super().__init__()
        side = math.isqrt(n_features)
        if side * side != n_features:
            raise ValueError(f"model cnn2d needs square images, not {n_features} features (digits has 64: 8 x 8); "
                             f"use --model cnn1d or mlp")
        layers, c_in, n = [], 1, side
        for i, c in enumerate(channels):
            stride = 1 if i == 0 else 2
            layers += [nn.Conv2d(c_in, c, 3, stride=stride, padding=1), nn.ReLU()]
            c_in, n = c, (n - 1) // stride + 1
        self.side = side
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(c_in * n * n, n_classes)
        self.summary = f"cnn2d {side}x{side}-{'-'.join(f'c{c}' for c in channels)}-{n_classes}"

    def forward(self, x):
        """Logits ``(n, n_classes)`` of flat images ``x`` ``(n, side * side)``, row by row."""
        return self.classifier(self.features(x.view(-1, 1, self.side, self.side)).flatten(1))


CNN_MODELS = {"cnn1d": CNN1D, "cnn2d": CNN2D}


def build_model(name: str, n_features: int, n_classes: int, channels: tuple) -> nn.Module:
    """A fresh :data:`CNN_MODELS` model, initialised from torch's global generator (PyTorch's usual init).

    ``channels`` are the widths of its convolutions (the trainer's defaults:
    :data:`lnsim.train.config.DEFAULT_HIDDEN`). Raises ValueError (one line) for data the model cannot take.
    """
    return CNN_MODELS[name](n_features, n_classes, tuple(channels))
