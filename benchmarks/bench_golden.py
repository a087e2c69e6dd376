"""Throughput of the golden update kernel against a tight NumPy float32 Madam step and np.copyto.

Prints updates/s for the golden model (parallel and serial), for a NumPy float32 Madam step over the same
number of elements written with ``out=`` arguments and no temporaries, and the bytes/s of ``np.copyto``
over the arrays the kernel reads and writes; then the ratios. All measured in one run, best of
``--repeat``. Targets: golden >= 0.5 x copy bandwidth for the bytes it moves, >= 2.5 x NumPy.

Usage: python benchmarks/bench_golden.py [--n 10000000] [--repeat 7]
"""

from __future__ import annotations

import argparse

import numpy as np
from _timing import best_time

import lnsim
from lnsim import tables
from lnsim.golden import update_inplace


class NumpyMadam:
    """Float32 Madam (the authors' algorithm) over preallocated buffers: every ufunc writes with ``out=``."""

    def __init__(self, w, beta=0.999, eta=0.01, g_bound=8.0):
        n = w.size
        self.w, self.v = w, np.zeros(n, np.float32)
        self.sw = np.sign(w).astype(np.float32)
        self.beta, self.eta, self.g_bound = np.float32(beta), np.float32(eta), np.float32(g_bound)
        self.sigma = np.float32(3 * np.sqrt(np.mean(w * w)))
        self.tmp = np.empty(n, np.float32)
        self.t = 0

    def step(self, g):
        self.t += 1
        tmp, v = self.tmp, self.v
        np.multiply(g, g, out=tmp)
        np.multiply(tmp, 1 - self.beta, out=tmp)
        np.multiply(v, self.beta, out=v)
        np.add(v, tmp, out=v)
        np.multiply(v, np.float32(1.0 / (1.0 - 0.999**self.t)), out=tmp)
        np.sqrt(tmp, out=tmp)
        np.divide(g, tmp, out=tmp)
        np.clip(tmp, -self.g_bound, self.g_bound, out=tmp)
        np.multiply(tmp, self.sw, out=tmp)
        np.multiply(tmp, -self.eta, out=tmp)
        np.exp(tmp, out=tmp)
        np.multiply(self.w, tmp, out=self.w)
        np.clip(self.w, -self.sigma, self.sigma, out=self.w)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=10_000_000)
    ap.add_argument("--repeat", type=int, default=7)
    args = ap.parse_args(argv)
    n = args.n

    spec = lnsim.Spec(lnsim.LNSFormat(bits=12, eta0=0.001), lnsim.MadamConfig())
    rng = np.random.default_rng(0)
    w = (rng.standard_normal(n) * 0.05).astype(np.float32)
    g = (rng.standard_normal(n) * np.exp(rng.uniform(-10, 2, n))).astype(np.float32)
    sign, k = lnsim.encode(w, spec.fmt, 3 * float(np.sqrt(np.mean(w.astype(np.float64) ** 2))))
    gbits = lnsim.grad_to_bits(g)
    state = np.zeros(n, np.uint32)
    log_eta = tables.log_eta_term(spec)
    # Warm the state so the timed steps see a realistic EMA, then time steady-state steps.
    update_inplace(spec, sign, k, gbits, state, log_eta=log_eta, log_bc=tables.bias_correction_term(spec, 1))
    log_bc = tables.bias_correction_term(spec, 2)

    t_par = best_time(lambda: update_inplace(spec, sign, k, gbits, state, log_eta=log_eta, log_bc=log_bc), args.repeat)
    t_ser = best_time(
        lambda: update_inplace(spec, sign, k, gbits, state, log_eta=log_eta, log_bc=log_bc, parallel=False), 3
    )
    nm = NumpyMadam(w.copy())
    t_np = best_time(lambda: nm.step(g), args.repeat)

    # Bytes the kernel moves: reads sign, k, grad, state; writes k, state.
    read = sign.nbytes + k.nbytes + gbits.nbytes + state.nbytes
    written = k.nbytes + state.nbytes
    src = np.ones(read + written, np.uint8)
    dst = np.empty_like(src)
    t_copy = best_time(lambda: np.copyto(dst, src), args.repeat)
    copy_bw = 2 * src.nbytes / t_copy  # a copy reads and writes every byte
    golden_bw = (read + written) / t_par

    print(f"elements               {n:,}  ({(read + written) / n:.0f} bytes moved per update)")
    print(f"golden (parallel)      {n / t_par / 1e6:8.1f} M updates/s  {golden_bw / 1e9:6.2f} GB/s")
    print(f"golden (serial)        {n / t_ser / 1e6:8.1f} M updates/s")
    print(f"numpy float32 Madam    {n / t_np / 1e6:8.1f} M updates/s")
    print(f"np.copyto              {copy_bw / 1e9:8.2f} GB/s (read + write)")
    print(f"golden / numpy         {t_np / t_par:8.2f} x   (target >= 2.5)")
    print(f"golden / copy          {golden_bw / copy_bw:8.2f}     (target >= 0.5)")


if __name__ == "__main__":
    main()
