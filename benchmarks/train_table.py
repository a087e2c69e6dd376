"""The README's trainer table: test accuracy on digits of FP32 Madam, Adam, SGD and B-bit Madam at 16/12/10/8 bits.

Runs ``lnsim train`` (same defaults everywhere: 64-128-10 MLP, batch 32, 100 epochs, plateau schedule, init
quantized) for each configuration over the same seeds, writes each run's JSON into ``--out``, and prints a
Markdown table with the mean and standard deviation over seeds and the paired difference to FP32 Madam.

Usage: python benchmarks/train_table.py [--seeds 5] [--epochs 100] [--dataset digits] [--out train-table]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex

import numpy as np

from lnsim.cli import main as lnsim_main

#: (label, options) of each row; 10 and 8 bits keep the 12-bit dynamic range by raising eta0 (the paper's way).
ROWS = [
    ("FP32 Madam", ["--optimizer", "madam"]),
    ("Adam", ["--optimizer", "adam"]),
    ("SGD + momentum", ["--optimizer", "sgd"]),
    ("16-bit Madam", ["--optimizer", "lns-madam", "--bits", "16", "--eta0", "0.001"]),
    ("12-bit Madam", ["--optimizer", "lns-madam", "--bits", "12", "--eta0", "0.001"]),
    ("10-bit Madam", ["--optimizer", "lns-madam", "--bits", "10", "--eta0", "0.004"]),
    ("8-bit Madam", ["--optimizer", "lns-madam", "--bits", "8", "--eta0", "0.016"]),
]


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--epochs", type=int, default=100)
    p.add_argument("--dataset", default="digits")
    p.add_argument("--out", default="train-table")
    a = p.parse_args(argv)
    os.makedirs(a.out, exist_ok=True)
    results = []
    for label, opts in ROWS:
        path = os.path.join(a.out, re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-") + ".json")
        argv = [*opts, "--dataset", a.dataset, "--epochs", str(a.epochs), "--seeds", str(a.seeds), "--no-progress",
                "--json", path]
        print("$ lnsim train " + shlex.join(argv), flush=True)
        if lnsim_main(["train", *argv]) != 0:
            raise SystemExit(f"lnsim train failed for {label}")
        with open(path) as f:
            results.append((label, json.load(f)))
    ref = np.array(results[0][1]["test_accuracy"]["per_seed"])
    print()
    print(f"{a.dataset}, {results[0][1]['model']} MLP, batch {results[0][1]['batch_size']}, {a.epochs} epochs, "
          f"seeds 0..{a.seeds - 1}; test accuracy in %")
    print()
    print("| optimizer | eta0 | eta | test accuracy | per seed | vs FP32 Madam (paired) | saturated codes | seconds |")
    print("|---|---|---|---|---|---|---|---|")
    for label, r in results:
        acc = 100 * np.array(r["test_accuracy"]["per_seed"])
        diff = acc - 100 * ref
        eta0 = f"{r['eta0']:g}" if r["eta0"] is not None else "-"
        eta = f"{r['eta']:g}" if r["eta"] is not None else f"lr {r['lr']:g}"
        sat = r["saturated"]
        sat_txt = (f"{np.mean(sat['k0']) / sat['weights']:.1%} at k=0, {np.mean(sat['kmax']) / sat['weights']:.1%} "
                   f"at k=max") if sat else "-"
        vs = "-" if label == "FP32 Madam" else f"{diff.mean():+.2f} +- {diff.std(ddof=1):.2f}"
        print(f"| {label} | {eta0} | {eta} | {acc.mean():.2f} +- {acc.std(ddof=1):.2f} | "
              f"{' '.join(f'{x:.1f}' for x in acc)} | {vs} | {sat_txt} | {r['seconds']:.0f} |")


if __name__ == "__main__":
    main()
