"""Madam in float32 for PyTorch: the paper's Algorithm 1, the FP32 baseline beside B-bit Madam."""

from __future__ import annotations

import torch

from lnsim.validation import SpecError, check_bool, check_interval, check_positive

__all__ = ["Madam"]


class Madam(torch.optim.Optimizer):
    """Float Madam (Bernstein et al. 2020, Algorithm 1), as :class:`lnsim.reference.Madam` computes it in
    float64, here in the parameters' own dtype.

    Per step, with ``t`` the new step count, elementwise::

        exp_avg_sq = beta * exp_avg_sq + (1 - beta) * g**2
        g_normed   = g / sqrt(exp_avg_sq / (1 - beta**t))    # no division by 1 - beta**t without bias correction
        g_normed   = 0 where it is NaN (a zero gradient with no history)
        g_normed   = clamp(g_normed, -eta_star / lr, eta_star / lr)
        p          = clamp(p * exp(-lr * g_normed * sign(p)), -sigma_star, sigma_star)

    Parameters
    ----------
    lr : float
        eta, the typical relative change per step.
    eta_star : float, optional
        The largest relative change per step (in nepers); default 8 x ``lr``. It stays fixed when a scheduler
        changes ``lr``, so the clamp ``eta_star / lr`` follows, as in B-bit Madam.
    beta : float
        Decay of the moving average of squared gradients, in [0, 1).
    sigma_scale : float
        sigma_star of a tensor is ``sigma_scale`` x its RMS at construction (the authors' ``p_scale``).
    bias_correction : bool
        Divide the moving average by ``1 - beta**t``.
    """

    def __init__(self, params, lr: float = 0.01, *, eta_star: float | None = None, beta: float = 0.999,
                 sigma_scale: float = 3.0, bias_correction: bool = True):
        lr = check_positive("lr", lr)
        defaults = {"lr": lr, "eta_star": None if eta_star is None else check_positive("eta_star", eta_star),
                    "beta": check_interval("beta", beta, 0, 1), "sigma_scale": check_positive("sigma_scale", sigma_scale),
                    "bias_correction": check_bool("bias_correction", bias_correction)}
        super().__init__(params, defaults)

    def add_param_group(self, param_group: dict) -> None:
        """Add a param group; each parameter's sigma_star is fixed here from its current RMS."""
        super().add_param_group(param_group)
        group = self.param_groups[-1]
        if group["eta_star"] is None:
            group["eta_star"] = 8.0 * group["lr"]
        for p in group["params"]:
            if not p.is_floating_point():
                raise SpecError(f"Madam parameters must be floating point, not {p.dtype}")
            rms = float(p.detach().double().pow(2).mean().sqrt()) if p.numel() else 0.0
            self.state[p] = {"step": 0, "exp_avg_sq": torch.zeros_like(p, memory_format=torch.preserve_format),
                             "sigma_star": group["sigma_scale"] * rms}

    @torch.no_grad()
    def step(self, closure=None):
        """One Madam step of every parameter with a gradient; returns the closure's loss (if given)."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            lr, beta = check_positive("lr", group["lr"]), group["beta"]
            g_bound = group["eta_star"] / lr
            for p in group["params"]:
                if p.grad is None:
                    continue
                st = self.state[p]
                st["step"] += 1
                g = p.grad
                v = st["exp_avg_sq"]
                v.mul_(beta).addcmul_(g, g, value=1 - beta)
                denom = (v / (1 - beta ** st["step"])).sqrt_() if group["bias_correction"] else v.sqrt()
                g_normed = torch.nan_to_num(g / denom, nan=0.0, posinf=g_bound, neginf=-g_bound)
                g_normed.clamp_(-g_bound, g_bound)
                p.mul_(torch.exp(-lr * g_normed * torch.sign(p)))
                p.clamp_(-st["sigma_star"], st["sigma_star"])
        return loss
