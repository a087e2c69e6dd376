"""The PyTorch CNN table: test accuracy of FP32 Madam, Adam, SGD and B-bit Madam (lnsim.torch.LNSMadam) at
16/12/10/8/6/4 bits on the two CNN tasks, with paired differences to FP32 Madam.

Each row is one ``lnsim train --model ... --dataset ...`` over the same seeds (same split, initial weights and
batches per seed). The B-bit rows keep the 12-bit ladder's dynamic range of 60 by raising eta0 (the paper's
recipe: eta0 = 4.095 / (2**B - 1)); eta is the spec's default, the whole rungs nearest 0.01 (at least one).
Prints one Markdown table per task and, with ``--write FILE`` (repeatable), puts them in FILE between the
markers ``<!-- table: python benchmarks/torch_table.py -->`` and ``<!-- end of table -->`` (benchmarks/tables.py):
both tables into docs/torch.md, a summary of both side by side (``SUMMARY_ROWS``) into README.md. About 25
minutes with ``--jobs 2``.

Usage: python benchmarks/torch_table.py [--seeds 5] [--epochs 100] [--jobs 2] [--out torch-table]
       [--write docs/torch.md --write README.md] [--reuse]
"""

from __future__ import annotations

import argparse
import os

import numpy as np
import tables
from train_table import run_rows, table

COMMAND = "python benchmarks/torch_table.py"

#: (model, dataset) of each task.
TASKS = [("cnn1d", "mnist1d"), ("cnn2d", "digits")]

#: Base precision per bit width: the 12-bit ladder's depth, 4.095 nepers (a dynamic range of 60).
ETA0 = {16: "0.0000625", 12: "0.001", 10: "0.004", 8: "0.016", 6: "0.065", 4: "0.273"}

ROWS = [
    ("FP32 Madam", ["--optimizer", "madam"]),
    ("Adam", ["--optimizer", "adam"]),
    ("SGD + momentum", ["--optimizer", "sgd"]),
    *((f"{b}-bit Madam", ["--optimizer", "lns-madam", "--bits", str(b), "--eta0", eta0]) for b, eta0 in ETA0.items()),
]

#: The rows of README.md's summary, and how its header names each task's data.
SUMMARY_ROWS = ["FP32 Madam", "Adam", "12-bit Madam", "8-bit Madam", "6-bit Madam", "4-bit Madam"]
DATA_NAMES = {"mnist1d": "MNIST-1D"}


def knee(results) -> str:
    """One line: FP32 Madam against Adam, and the narrowest width within 0.5 point of FP32 Madam."""
    acc = {label: 100 * np.array(r["test_accuracy"]["per_seed"]) for label, r in results}
    madam = acc["FP32 Madam"]
    within = [b for b in ETA0 if abs((acc[f"{b}-bit Madam"] - madam).mean()) <= 0.5]
    gap = (acc["Adam"] - madam).mean()
    fits = f"{min(within)} bits is the narrowest width within 0.5 point of FP32 Madam" if within else \
        "no width is within 0.5 point of FP32 Madam"
    return f"FP32 Madam is {abs(gap):.2f} points {'below' if gap > 0 else 'above'} Adam; {fits}."


def summary(per_task) -> str:
    """README.md's table: per row of ``SUMMARY_ROWS``, the mean +- std test accuracy of each task (in %) and
    the paired difference to FP32 Madam; ``per_task`` is ``[((model, dataset), results), ...]``."""
    head = ["optimizer"]
    for (model, dataset), _ in per_task:
        head += [f"{model}, {DATA_NAMES.get(dataset, dataset)}", "vs FP32 Madam"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for label in SUMMARY_ROWS:
        cells = []
        for _, results in per_task:
            r = dict(results)
            acc, ref = (100 * np.array(r[x]["test_accuracy"]["per_seed"]) for x in (label, "FP32 Madam"))
            diff = acc - ref
            cells += [f"{acc.mean():.2f} +- {acc.std(ddof=1):.2f}",
                      "-" if label == "FP32 Madam" else f"{diff.mean():+.2f} +- {diff.std(ddof=1):.2f}"]
        r0 = dict(per_task[0][1])[label]
        if label.endswith("-bit Madam"):
            name = label
        elif r0["eta"] is not None:
            name = f"{label} (eta {r0['eta']:g})"
        else:
            name = f"{label} (lr {r0['lr']:g})"
        lines.append("| " + " | ".join([name, *cells]) + " |")
    return "\n".join(lines)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--epochs", type=int, default=100)
    p.add_argument("--jobs", type=int, default=2, help="runs at a time, one thread each (default 2)")
    p.add_argument("--out", default="torch-table")
    p.add_argument("--write", metavar="FILE", action="append",
                   help="replace the table between the markers in FILE (repeatable; README.md gets the summary)")
    p.add_argument("--reuse", action="store_true", help="read the rows whose JSON is already in --out instead of running them again")
    a = p.parse_args(argv)
    blocks, per_task = [], []
    for model, dataset in TASKS:
        common = ["--model", model, "--dataset", dataset, "--epochs", str(a.epochs), "--seeds", str(a.seeds)]
        results = run_rows(ROWS, common, os.path.join(a.out, f"{model}-{dataset}"), jobs=a.jobs, reuse=a.reuse)
        per_task.append(((model, dataset), results))
        r0 = results[0][1]
        blocks.append(table(results, f"{dataset}, {r0['model']}, batch {r0['batch_size']}, {a.epochs} "
                                     f"epochs, seeds 0..{a.seeds - 1}; test accuracy in %") + "\n\n" + knee(results))
    text = "\n\n".join(blocks)
    print()
    print(text)
    tables.write_each(a.write, COMMAND, text, readme=summary(per_task))


if __name__ == "__main__":
    main()
