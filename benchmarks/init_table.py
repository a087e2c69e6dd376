"""docs/train.md's initialisation table: B-bit Madam on digits with ``--init quantized`` against ``--init
uniform-rungs`` at 16/12/10/8 bits, 10 seeds, 100 epochs, with the paired differences to FP32 Madam.

Runs ``lnsim train`` per row (as benchmarks/train_table.py) into ``--out``; with ``--write FILE`` the table goes
into FILE between the markers ``<!-- table: python benchmarks/init_table.py -->`` and ``<!-- end of table -->``
(benchmarks/tables.py). About 2 minutes (81 runs of a few seconds).

Usage: python benchmarks/init_table.py [--jobs 1] [--out init-table] [--reuse] [--write docs/train.md]
"""

from __future__ import annotations

import argparse

import numpy as np
import tables
from train_table import run_rows

COMMAND = "python benchmarks/init_table.py"
ETA0 = {16: "0.001", 12: "0.001", 10: "0.004", 8: "0.016"}
INITS = ("quantized", "uniform-rungs")
ROWS = [("FP32 Madam", ["--optimizer", "madam"]),
        *((f"{b}-bit {init}", ["--optimizer", "lns-madam", "--bits", str(b), "--eta0", eta0, "--init", init])
          for b, eta0 in ETA0.items() for init in INITS)]
COMMON = ["--dataset", "digits", "--epochs", "100", "--seeds", "10"]


def table(results) -> str:
    acc = {label: 100 * np.array(r["test_accuracy"]["per_seed"]) for label, r in results}
    ref = acc["FP32 Madam"]
    lines = [f"FP32 Madam {ref.mean():.2f} +- {ref.std(ddof=1):.2f}:", "",
             "| bits | quantized | paired diff. to FP32 Madam | uniform-rungs | paired diff. to FP32 Madam |",
             "|---|---|---|---|---|"]
    for b, eta0 in ETA0.items():
        cells = [f"{b} (eta0 {eta0})"]
        for init in INITS:
            a, d = acc[f"{b}-bit {init}"], acc[f"{b}-bit {init}"] - ref
            cells += [f"{a.mean():.2f} +- {a.std(ddof=1):.2f}", f"{d.mean():+.2f} +- {d.std(ddof=1):.2f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--jobs", type=int, default=1, help="runs at a time, in subprocesses when more than 1 (default 1)")
    p.add_argument("--out", default="init-table")
    p.add_argument("--reuse", action="store_true", help="read the rows whose JSON is already in --out")
    p.add_argument("--write", metavar="FILE", action="append", help="replace the table between the markers in FILE")
    a = p.parse_args(argv)
    text = table(run_rows(ROWS, COMMON, a.out, jobs=a.jobs, reuse=a.reuse))
    print()
    print(text)
    tables.write_each(a.write, COMMAND, text)


if __name__ == "__main__":
    main()
