"""The PyTorch CNN table: test accuracy of FP32 Madam, Adam, SGD and B-bit Madam (lnsim.torch.LNSMadam) at
16/12/10/8/6/4 bits on the two CNN tasks, with paired differences to FP32 Madam.

Each row is one ``lnsim train --model ... --dataset ...`` over the same seeds (same split, initial weights and
batches per seed). The B-bit rows keep the 12-bit ladder's dynamic range of 60 by raising eta0 (the paper's
recipe: eta0 = 4.095 / (2**B - 1)); eta is the spec's default, the whole rungs nearest 0.01 (at least one).
Prints one Markdown table per task and, with ``--write FILE``, puts them in FILE between the markers
``<!-- torch table: python benchmarks/torch_table.py -->`` and ``<!-- end of torch table -->``.

Usage: python benchmarks/torch_table.py [--seeds 5] [--epochs 100] [--jobs 2] [--out torch-table]
       [--write docs/torch.md] [--reuse]
"""

from __future__ import annotations

import argparse
import os
import re

import numpy as np
from train_table import run_rows, table

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

BEGIN = "<!-- torch table: python benchmarks/torch_table.py -->"
END = "<!-- end of torch table -->"


def knee(results) -> str:
    """One line: FP32 Madam against Adam, and the narrowest width within 0.5 point of FP32 Madam."""
    acc = {label: 100 * np.array(r["test_accuracy"]["per_seed"]) for label, r in results}
    madam = acc["FP32 Madam"]
    within = [b for b in ETA0 if abs((acc[f"{b}-bit Madam"] - madam).mean()) <= 0.5]
    gap = (acc["Adam"] - madam).mean()
    fits = f"{min(within)} bits is the narrowest width within 0.5 point of FP32 Madam" if within else \
        "no width is within 0.5 point of FP32 Madam"
    return f"FP32 Madam is {abs(gap):.2f} points {'below' if gap > 0 else 'above'} Adam; {fits}."


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--epochs", type=int, default=100)
    p.add_argument("--jobs", type=int, default=2, help="runs at a time, one thread each (default 2)")
    p.add_argument("--out", default="torch-table")
    p.add_argument("--write", metavar="FILE", help="replace the table between the markers in FILE")
    p.add_argument("--reuse", action="store_true", help="read the rows whose JSON is already in --out instead of running them again")
    a = p.parse_args(argv)
    blocks = []
    for model, dataset in TASKS:
        common = ["--model", model, "--dataset", dataset, "--epochs", str(a.epochs), "--seeds", str(a.seeds)]
        results = run_rows(ROWS, common, os.path.join(a.out, f"{model}-{dataset}"), jobs=a.jobs, reuse=a.reuse)
        r0 = results[0][1]
        blocks.append(table(results, f"{dataset}, {r0['model']}, batch {r0['batch_size']}, {a.epochs} "
                                     f"epochs, seeds 0..{a.seeds - 1}; test accuracy in %") + "\n\n" + knee(results))
    text = "\n\n".join(blocks)
    print()
    print(text)
    if a.write:
        with open(a.write) as f:
            doc = f.read()
        if BEGIN not in doc or END not in doc:
            raise SystemExit(f"{a.write} has no {BEGIN} ... {END} markers")
        doc = re.sub(re.escape(BEGIN) + ".*?" + re.escape(END), lambda _: f"{BEGIN}\n{text}\n{END}", doc, flags=re.S)
        with open(a.write, "w") as f:
            f.write(doc)


if __name__ == "__main__":
    main()
