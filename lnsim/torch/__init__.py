"""lnsim.torch: B-bit Madam as a PyTorch optimiser, bit-true to the golden model, and a float32 Madam.

Needs PyTorch (``pip install "lnsim[torch]"``); ``import lnsim`` does not. See docs/torch.md.

* :class:`LNSMadam`: every parameter held as frozen signs, B-bit codes and second-moment state, stepped by
  the golden kernels; ``p.data`` holds the decoder's bfloat16 weights.
* :class:`Madam`: the paper's float Madam (Algorithm 1) in float32, the FP32 baseline.
* :func:`param_groups`: splits a model's parameters into those Madam can train and the rest.
"""

try:
    import torch  # noqa: F401
except ImportError:  # pragma: no cover - exercised by tests/test_torch_optim.py in a subprocess
    raise ImportError('lnsim.torch needs PyTorch: pip install "lnsim[torch]"') from None

from lnsim.torch.groups import param_groups
from lnsim.torch.madam import Madam
from lnsim.torch.optim import INITS, LNSMadam, eta_rungs_for

__all__ = ["LNSMadam", "Madam", "param_groups", "eta_rungs_for", "INITS"]
