"""Time of one LNSMadam.step() against torch.optim.Adam (foreach, and fused where the CPU build has it).

Every optimiser steps its own copy of the same model (same parameter shapes and values); every parameter is
on the B-bit datapath (biases' zeros filled by :func:`lnsim.torch.param_groups` with ``small="lns"``). Two sets
of random gradients are drawn once and the parameters' ``.grad`` alternate between them from step to step
(outside the timed region), so the codes walk instead of saturating. Only ``optimizer.step()`` is timed, each
call on its own; the optimisers take turns (``--repeat`` rounds of ``--steps`` steps each) so they share the
machine's load. Prints the median and best ms per step, the time of the compiled fused step alone
(``FusedMadam.step(None)`` on the gradients already in its flat buffer: ``step()`` without LNSMadam's Python
work), and the ratios LNSMadam / Adam, with 1 thread and 2 (``torch.set_num_threads`` and
``numba.set_num_threads`` together), and the load average before and after (other processes on the machine
slow the 2-thread runs most: every parallel region waits for its slowest thread). A benchmark, not a test: it asserts
nothing about time. Target: LNSMadam <= 1.2 x Adam(foreach=True) on the 10M-parameter MLP.

Usage: python benchmarks/bench_torch.py [--quick] [--repeat 7] [--bits 12] [--threads 1 2]
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import time

import numba
import torch
from torch import nn

from lnsim.torch import LNSMadam, param_groups
from lnsim.torch.models import CNN1D, CNN2D

#: The MLP's widths: 1024-4096-1024-1024-512, 9,968,128 parameters with biases.
MLP_WIDTHS = (1024, 4096, 1024, 1024, 512)


def mlp() -> nn.Module:
    """The ~10M-parameter MLP: Linear layers of :data:`MLP_WIDTHS`, ReLU between."""
    layers = []
    for a, b in zip(MLP_WIDTHS, MLP_WIDTHS[1:]):
        layers += [nn.Linear(a, b), nn.ReLU()]
    return nn.Sequential(*layers[:-1])


#: name -> (model builder, steps per round in a full run); the trainer's CNNs with its default widths.
MODELS = {
    "mlp-10M": (mlp, 10),
    "cnn1d-40": (lambda: CNN1D(40, 10, (32, 32, 32)), 200),
    "cnn2d-8x8": (lambda: CNN2D(64, 10, (16, 32)), 200),
}


def adam_fused_available() -> bool:
    """Whether this torch build steps ``Adam(fused=True)`` on CPU tensors."""
    p = nn.Parameter(torch.ones(4))
    p.grad = torch.ones(4)
    try:
        torch.optim.Adam([p], fused=True).step()
    except (RuntimeError, TypeError, ValueError):
        return False
    return True


def make_optimisers(base: nn.Module, bits: int, with_fused: bool) -> dict:
    """name -> (optimiser, its parameters); each optimiser on its own deep copy of ``base``."""
    out = {}
    m = copy.deepcopy(base)
    out["LNSMadam"] = (LNSMadam(param_groups(m, small="lns")[0], bits=bits), list(m.parameters()))
    m = copy.deepcopy(base)
    out["Adam-foreach"] = (torch.optim.Adam(m.parameters(), lr=1e-3, foreach=True), list(m.parameters()))
    if with_fused:
        m = copy.deepcopy(base)
        out["Adam-fused"] = (torch.optim.Adam(m.parameters(), lr=1e-3, fused=True), list(m.parameters()))
    return out


def time_steps(opt, params, grad_sets, steps: int) -> list[float]:
    """Seconds of each of ``steps`` calls of ``opt.step()``, the gradients alternating between ``grad_sets``."""
    out = []
    for i in range(steps):
        for p, g in zip(params, grad_sets[i % 2]):
            p.grad = g
        t0 = time.perf_counter()
        opt.step()
        out.append(time.perf_counter() - t0)
    return out


def time_kernel(opt: LNSMadam, steps: int) -> list[float]:
    """Seconds of each of ``steps`` compiled fused steps alone (every group, on the gradients already there)."""
    out = []
    pairs = [(f, opt.eta_rungs(g)) for f, g in zip(opt._fused, opt.param_groups)]
    for _ in range(steps):
        t0 = time.perf_counter()
        for fused, eta_rungs in pairs:
            fused.step(None, eta_rungs)
        out.append(time.perf_counter() - t0)
    return out


def bench(name: str, threads: int, args, with_fused: bool) -> dict:
    """Median and best ms per step of each optimiser, and of the fused kernel alone, for one model and thread count."""
    build, steps = MODELS[name]
    steps = max(2, steps // 5) if args.quick else steps
    torch.manual_seed(0)
    base = build()
    param_groups(base, small="lns")  # fill the biases' zeros before the copies
    gen = torch.Generator().manual_seed(1)
    grad_sets = [[torch.randn(p.shape, generator=gen) * 1e-3 for p in base.parameters()] for _ in range(2)]
    torch.set_num_threads(threads)
    numba.set_num_threads(threads)
    opts = make_optimisers(base, args.bits, with_fused)
    times = {k: [] for k in opts} | {"kernel": []}
    for name_, (opt, params) in opts.items():  # warm-up: Adam's state, Numba's compilation
        time_steps(opt, params, grad_sets, 2)
    for _ in range(args.repeat):
        for name_, (opt, params) in opts.items():
            times[name_] += time_steps(opt, params, grad_sets, steps)
        times["kernel"] += time_kernel(opts["LNSMadam"][0], steps)
    n = sum(p.numel() for p in base.parameters())
    return {"model": name, "params": n, "threads": threads,
            **{k: (1e3 * statistics.median(v), 1e3 * min(v)) for k, v in times.items()}}


def load_average() -> str:
    """The 1-minute load average (``os.getloadavg``), or "?" where there is none."""
    try:
        return f"{os.getloadavg()[0]:.2f}"
    except OSError:
        return "?"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="a short run: 3 rounds, a fifth of the steps")
    ap.add_argument("--repeat", type=int, default=None, help="rounds (default 7, --quick 3)")
    ap.add_argument("--bits", type=int, default=12)
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    args = ap.parse_args(argv)
    args.repeat = args.repeat or (3 if args.quick else 7)
    threads = [t for t in args.threads if t <= numba.config.NUMBA_NUM_THREADS]
    with_fused = adam_fused_available()
    print(f"torch {torch.__version__}, numba {numba.__version__} ({numba.config.NUMBA_NUM_THREADS} threads max), "
          f"bits={args.bits}, {args.repeat} rounds; ms per step, median (best); load average {load_average()}")
    if not with_fused:
        print("Adam(fused=True) is not available on CPU in this torch build: that column is left out")
    cols = ["LNSMadam", "kernel", "Adam-foreach"] + (["Adam-fused"] if with_fused else [])
    head = f"{'model':<10} {'params':>10} {'thr':>3} " + " ".join(f"{c:>17}" for c in cols)
    head += f" {'LNS/foreach':>11}" + (f" {'LNS/fused':>9}" if with_fused else "")
    print(head)
    for name in args.models:
        for t in threads:
            r = bench(name, t, args, with_fused)
            row = f"{r['model']:<10} {r['params']:>10,} {t:>3} "
            row += " ".join(f"{r[c][0]:>8.3f} ({r[c][1]:>6.3f})" for c in cols)
            row += f" {r['LNSMadam'][0] / r['Adam-foreach'][0]:>11.2f}"
            if with_fused:
                row += f" {r['LNSMadam'][0] / r['Adam-fused'][0]:>9.2f}"
            print(row, flush=True)
    print(f"load average {load_average()} at the end ({os.cpu_count()} CPUs)")


if __name__ == "__main__":
    main()
