"""The README's trainer table: test accuracy on digits of FP32 Madam, Adam, SGD and B-bit Madam at 16/12/10/8 bits.

Runs ``lnsim train`` (same defaults everywhere: 64-128-10 MLP, batch 32, 100 epochs, plateau schedule, init
quantized) for each configuration over the same seeds, writes each run's JSON into ``--out``, and prints a
Markdown table with the mean and standard deviation over seeds and the paired difference to FP32 Madam. With
``--write FILE`` (repeatable) it puts the table into FILE between the markers ``<!-- table: python
benchmarks/train_table.py -->`` and ``<!-- end of table -->`` (benchmarks/tables.py): docs/train.md's full table,
README.md's summary (its first columns). About 35 s on one core.

Usage: python benchmarks/train_table.py [--seeds 5] [--epochs 100] [--dataset digits] [--out train-table]
       [--jobs 1] [--reuse] [--write docs/train.md --write README.md]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import re
import shlex
import subprocess
import sys

import numpy as np
import tables

from lnsim.cli import main as lnsim_main

COMMAND = "python benchmarks/train_table.py"

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


def run_rows(rows, common: list[str], out: str, jobs: int = 1, reuse: bool = False) -> list[tuple[str, dict]]:
    """Run ``lnsim train`` once per row (its options + ``common``), ``jobs`` at a time in subprocesses when
    ``jobs`` > 1; returns ``(label, JSON result)`` per row, in the rows' order. With ``reuse``, a row whose JSON
    is already in ``out`` (from an earlier run of the same script) is read instead of run again."""
    os.makedirs(out, exist_ok=True)

    def run(row):
        label, opts = row
        path = os.path.join(out, re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-") + ".json")
        argv = [*opts, *common, "--no-progress", "--json", path]
        if reuse and os.path.exists(path):
            print("# read " + path + " (measured before: --reuse)", flush=True)
            with open(path) as f:
                return label, json.load(f)
        print("$ lnsim train " + shlex.join(argv), flush=True)
        if jobs > 1:
            done = subprocess.run([sys.executable, "-m", "lnsim.cli", "train", *argv], stdout=subprocess.DEVNULL)
            failed = done.returncode != 0
        else:
            failed = lnsim_main(["train", *argv]) != 0
        if failed:
            raise SystemExit(f"lnsim train failed for {label}")
        with open(path) as f:
            return label, json.load(f)

    if jobs > 1:
        with concurrent.futures.ThreadPoolExecutor(jobs) as pool:
            return list(pool.map(run, rows))
    return [run(row) for row in rows]


#: The columns of ``table``; README.md's summary shows the first five.
COLUMNS = ["optimizer", "eta0", "eta", "test accuracy", "per seed", "vs FP32 Madam (paired)", "saturated codes", "seconds"]
SUMMARY_COLUMNS = ["optimizer", "eta0", "eta", "test accuracy", "vs FP32 Madam (paired)"]


def table(results, title: str | None, columns=COLUMNS) -> str:
    """The Markdown table of ``results`` (the first row is the reference of the paired differences), with
    ``columns`` (of ``COLUMNS``) and ``title`` and a blank line above it unless None."""
    ref = np.array(results[0][1]["test_accuracy"]["per_seed"])
    keep = [COLUMNS.index(c) for c in columns]
    lines = [] if title is None else [title, ""]
    lines += ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for label, r in results:
        acc = 100 * np.array(r["test_accuracy"]["per_seed"])
        diff = acc - 100 * ref
        eta0 = f"{r['eta0']:g}" if r["eta0"] is not None else "-"
        eta = f"{r['eta']:g}" if r["eta"] is not None else f"lr {r['lr']:g}"
        sat = r["saturated"]
        sat_txt = (f"{np.mean(sat['k0']) / sat['weights']:.1%} at k=0, {np.mean(sat['kmax']) / sat['weights']:.1%} "
                   f"at k=max") if sat else "-"
        vs = "-" if label == "FP32 Madam" else f"{diff.mean():+.2f} +- {diff.std(ddof=1):.2f}"
        cells = [label, eta0, eta, f"{acc.mean():.2f} +- {acc.std(ddof=1):.2f}", " ".join(f"{x:.1f}" for x in acc),
                 vs, sat_txt, f"{r['seconds']:.0f}"]
        lines.append("| " + " | ".join(cells[i] for i in keep) + " |")
    return "\n".join(lines)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--epochs", type=int, default=100)
    p.add_argument("--dataset", default="digits")
    p.add_argument("--out", default="train-table")
    p.add_argument("--jobs", type=int, default=1, help="runs at a time, in subprocesses when more than 1 (default 1)")
    p.add_argument("--reuse", action="store_true", help="read the rows whose JSON is already in --out instead of running them again")
    p.add_argument("--write", metavar="FILE", action="append",
                   help="replace the table between the markers in FILE (repeatable; README.md gets the summary)")
    a = p.parse_args(argv)
    results = run_rows(ROWS, ["--dataset", a.dataset, "--epochs", str(a.epochs), "--seeds", str(a.seeds)], a.out,
                       jobs=a.jobs, reuse=a.reuse)
    text = table(results, f"{a.dataset}, {results[0][1]['model']} MLP, batch {results[0][1]['batch_size']}, "
                          f"{a.epochs} epochs, seeds 0..{a.seeds - 1}; test accuracy in %")
    print()
    print(text)
    tables.write_each(a.write, COMMAND, table(results, None), readme=table(results, None, SUMMARY_COLUMNS))


if __name__ == "__main__":
    main()
