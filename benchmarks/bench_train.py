"""Time per training step of the B-bit Madam MLP against a float32 NumPy MLP with Adam on the same shapes.

Both steps run the trainer's float32 forward and backward pass (lnsim.train.model.MLP) on the same
minibatches; B-bit Madam then quantises the gradients, updates every code and decodes the new weights
(bit-true bfloat16 decoder) in one FusedMadam call (the trainer's way), or through GoldenMadam.step per tensor;
Adam updates float32 arrays in place with ``out=`` ufuncs. Also prints where the B-bit step's time goes. One run, best of
``--repeat`` passes over ``--steps`` minibatches, one thread (as the trainer runs). Target: ratio <= 1.2.

Usage: python benchmarks/bench_train.py [--dataset digits] [--hidden 128] [--batch-size 32] [--bits 12]
                                        [--eta0 0.001] [--steps 200] [--repeat 7]
"""

from __future__ import annotations

import argparse

import numpy as np
from _timing import best_time

import lnsim
from lnsim.golden import FusedMadam
from lnsim.train.data import load_dataset
from lnsim.train.model import MLP
from lnsim.train.optim import LNSParams, init_lns
from lnsim.train.runner import limit_threads


class Adam32:
    """Float32 Adam (torch.optim.Adam's rule) over preallocated buffers, every ufunc writing with ``out=``."""

    def __init__(self, w, lr=1e-3, b1=0.9, b2=0.999, eps=1e-8):
        self.w = w
        self.m, self.v, self.tmp = np.zeros_like(w), np.zeros_like(w), np.empty_like(w)
        self.lr, self.b1, self.b2, self.eps = lr, np.float32(b1), np.float32(b2), np.float32(eps)
        self.t = 0

    def step(self, g):
        self.t += 1
        m, v, tmp = self.m, self.v, self.tmp
        np.multiply(m, self.b1, out=m)
        np.multiply(g, 1 - self.b1, out=tmp)
        np.add(m, tmp, out=m)
        np.multiply(v, self.b2, out=v)
        np.multiply(g, g, out=tmp)
        np.multiply(tmp, 1 - self.b2, out=tmp)
        np.add(v, tmp, out=v)
        bc2 = np.float32(1.0 / np.sqrt(1.0 - 0.999**self.t))
        np.sqrt(v, out=tmp)
        np.multiply(tmp, bc2, out=tmp)
        np.add(tmp, self.eps, out=tmp)
        np.divide(m, tmp, out=tmp)
        np.multiply(tmp, np.float32(-self.lr / (1.0 - 0.9**self.t)), out=tmp)
        np.add(self.w, tmp, out=self.w)




def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", default="digits")
    p.add_argument("--hidden", default="128", help="comma-separated hidden sizes (default 128)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--bits", type=int, default=12)
    p.add_argument("--eta0", type=float, default=0.001)
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--repeat", type=int, default=7)
    a = p.parse_args(argv)

    split = load_dataset(a.dataset, seed=0)
    hidden = tuple(int(h) for h in a.hidden.split(",") if h)
    model = MLP(split.n_features, hidden, split.n_classes)
    fmt = lnsim.LNSFormat(a.bits, a.eta0)
    rungs = max(1, int(0.01 / a.eta0 + 0.5))
    spec = lnsim.Spec(fmt, lnsim.MadamConfig.from_rungs(fmt, rungs, 8 * rungs))
    rng = np.random.default_rng(0)
    n = len(split.y_train)
    batches = [rng.choice(n, a.batch_size, replace=False) for _ in range(a.steps)]
    data = [(split.X_train[i], split.y_train[i]) for i in batches]

    w0 = model.init_float(np.random.default_rng(1))
    lns = LNSParams(init_lns(spec, w0, model.init_scale(), "quantized", 3.0, rng))
    per_tensor = LNSParams(init_lns(spec, w0, model.init_scale(), "quantized", 3.0, rng), fused=False)
    w32 = [w.astype(np.float32) for w in w0]
    adams = [Adam32(w) for w in w32]

    def trainer_pass(params):
        def run():
            for X, y in data:
                _, _, grads = model.loss_and_grads(params.params(), X, y)
                params.step(grads, rungs)
        return run

    def adam_pass():
        for X, y in data:
            _, _, grads = model.loss_and_grads(w32, X, y)
            for opt, g in zip(adams, grads):
                opt.step(g)

    # The fused B-bit step split into its parts: the float32 pass, and the one FusedMadam call.
    grads_fixed = model.loss_and_grads(lns.params(), *data[0])[2]
    spare = LNSParams(init_lns(spec, w0, model.init_scale(), "quantized", 3.0, rng))

    def fwd_bwd_pass():
        params = lns.params()
        for X, y in data:
            model.loss_and_grads(params, X, y)

    def fused_pass():  # on a spare copy, with a real step's gradients
        for _ in data:
            spare.fused.step(grads_fixed, rungs)

    # Fixed cost of one call on a one-element tensor: checks + dispatch, no work.
    calls = 1000
    one = FusedMadam([lnsim.GoldenMadam(np.zeros(1, np.uint8), np.zeros(1, fmt.code_dtype), spec, 0.5)])
    one_grad = [np.zeros(1, np.float32)]

    def call_cost(fn):
        def run():
            for _ in range(calls):
                fn()
        return run

    bias = per_tensor.tensors[-1]
    zero_bias = np.zeros(bias.shape, np.float32)
    fixed = {
        "GoldenMadam.step (10-element bias)": lambda: bias.step(zero_bias),
        "FusedMadam.step (1 element)": lambda: one.step(one_grad, rungs),
    }

    with limit_threads(1):
        t_lns = best_time(trainer_pass(lns), a.repeat) / a.steps
        t_per_tensor = best_time(trainer_pass(per_tensor), a.repeat) / a.steps
        t_adam = best_time(adam_pass, a.repeat) / a.steps
        parts = {
            "forward + backward (float32)": best_time(fwd_bwd_pass, a.repeat) / a.steps,
            "FusedMadam.step (quantise, update, decode)": best_time(fused_pass, a.repeat) / a.steps,
        }
        fixed_cost = {name: best_time(call_cost(fn), a.repeat) / calls for name, fn in fixed.items()}

    sizes = " + ".join(f"{np.prod(s)}" for s in model.shapes)
    print(f"model {model.describe()} ({sizes} weights), batch {a.batch_size}, {spec.fmt.describe()}, "
          f"eta {rungs} rungs; {a.steps} steps, best of {a.repeat}, 1 thread")
    print(f"lns-madam step (fused, the trainer's)   {t_lns * 1e6:8.1f} us")
    print(f"lns-madam step (GoldenMadam.step each)  {t_per_tensor * 1e6:8.1f} us")
    print(f"float32 Adam step                       {t_adam * 1e6:8.1f} us")
    print(f"ratio                                   {t_lns / t_adam:8.2f} x  (target <= 1.2; "
          f"{t_per_tensor / t_adam:.2f} x per tensor)")
    print("fused B-bit step, by part:")
    for name, t in parts.items():
        print(f"  {name:<44} {t * 1e6:8.1f} us")
    print(f"  {'rest (glue; parts run colder in the loop)':<44} {(t_lns - sum(parts.values())) * 1e6:8.1f} us")
    print("fixed cost per call (one element: validation + dispatch):")
    for name, t in fixed_cost.items():
        print(f"  {name:<44} {t * 1e6:8.1f} us")


if __name__ == "__main__":
    main()
