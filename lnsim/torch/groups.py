"""Which parameters B-bit Madam can train: the common recipe for splitting a model's parameters."""

from __future__ import annotations

import torch

from lnsim.validation import check_choice, check_int, check_positive

__all__ = ["param_groups", "SMALL"]

#: Where :func:`param_groups` puts biases and normalisation parameters.
SMALL = ("float", "lns")


def param_groups(model: torch.nn.Module, *, small: str = "float", fill: float = 0.01, seed: int = 0):
    """Split ``model``'s trainable parameters into ``(lns, floats)``, two lists of ``(name, parameter)`` pairs.

    Weights of two or more dimensions (linear and convolution kernels) go to ``lns``, for :class:`LNSMadam`.
    Biases and normalisation parameters (one dimension or none) are often zero: LayerNorm and BatchNorm
    biases start at zero, and Madam never moves a zero weight (it multiplies). With ``small="float"`` they go
    to ``floats``, for a float optimiser (Adam, or :class:`lnsim.torch.Madam`); with ``small="lns"`` their exact
    zeros are replaced in place by ``+-fill`` (signs drawn from ``seed``) and they go to ``lns`` too, so every
    parameter is on the B-bit datapath.
    """
    check_choice("small", small, SMALL)
    fill = check_positive("fill", fill)
    gen = torch.Generator().manual_seed(check_int("seed", seed, 0))
    lns, floats = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        if p.dim() >= 2:
            lns.append((name, p))
        elif small == "float":
            floats.append((name, p))
        else:
            with torch.no_grad():
                zero = p == 0
                if zero.any():
                    signs = torch.randint(0, 2, p.shape, generator=gen).to(p.dtype) * 2 - 1
                    p[zero] = (fill * signs)[zero]
            lns.append((name, p))
    return lns, floats
