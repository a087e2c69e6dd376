"""docs/explore.md's sweep tables: runs one ``lnsim sweep`` (digits, 2 seeds, 100 epochs, the trainer's defaults)
and prints the rows and columns of its ``summary.md`` that docs/explore.md shows.

``grid``: ``lnsim sweep --bits 6:12 --eta0 0.001,0.004 --dataset digits --seeds 2``, the even widths and FP32
Madam (30 runs, about 40 s with ``--jobs 2``). ``range60``: ``lnsim sweep --bits 6:16 --dynamic-range 60 --dataset
digits --seeds 2``, widths 6-10, 12 and 16 (24 runs, about 40 s with ``--jobs 2``). With ``--write FILE`` the
table goes into FILE between the markers ``<!-- table: python benchmarks/explore_table.py NAME -->`` and
``<!-- end of table -->`` (benchmarks/tables.py). The sweep's run store in ``--out`` makes a second run read the
finished runs instead of training them again.

Usage: python benchmarks/explore_table.py {grid,range60} [--jobs 2] [--out explore-table] [--write docs/explore.md]
"""

from __future__ import annotations

import argparse
import os

import tables

from lnsim.cli import main as lnsim_main

COMMAND = "python benchmarks/explore_table.py"

COMMON = ["--dataset", "digits", "--seeds", "2"]

#: Per table: the sweep's grid options, the widths shown (None: the FP32 Madam row) and the summary's columns shown.
SWEEPS = {
    "grid": (["--bits", "6:12", "--eta0", "0.001,0.004"], {6, 8, 10, 12, None},
             ["configuration", "bits", "eta0", "eta (rungs)", "dynamic range", "test accuracy",
              "vs FP32 Madam (paired)", "saturated codes"]),
    "range60": (["--bits", "6:16", "--dynamic-range", "60"], {6, 7, 8, 9, 10, 12, 16},
                ["bits", "eta0", "eta (rungs)", "test accuracy", "vs FP32 Madam (paired)", "saturated codes"]),
}


def select(summary_md: str, widths, columns) -> str:
    """The Markdown table of ``summary.md`` cut down to the rows of ``widths`` (a bits column of ``-``, the
    reference, is None) and to ``columns``, in that order."""
    rows = [[c.strip() for c in line.strip().strip("|").split("|")]
            for line in summary_md.splitlines() if line.startswith("|")]
    head, body = rows[0], rows[2:]
    keep = [head.index(c) for c in columns]
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for cells in body:
        bits = cells[head.index("bits")]
        if (None if bits == "-" else int(bits)) in widths:
            lines.append("| " + " | ".join(cells[i] for i in keep) + " |")
    return "\n".join(lines)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("name", choices=sorted(SWEEPS))
    p.add_argument("--jobs", type=int, default=2, help="runs at a time (default 2)")
    p.add_argument("--out", default="explore-table")
    p.add_argument("--write", metavar="FILE", action="append", help="replace the table between the markers in FILE")
    a = p.parse_args(argv)
    grid, widths, columns = SWEEPS[a.name]
    out = os.path.join(a.out, a.name)
    argv = ["sweep", *grid, *COMMON, "--jobs", str(a.jobs), "--out", out, "--quiet"]
    print("$ lnsim " + " ".join(argv), flush=True)
    if lnsim_main(argv) != 0:
        raise SystemExit("lnsim sweep failed")
    with open(os.path.join(out, "summary.md")) as f:
        text = select(f.read(), widths, columns)
    print(text)
    tables.write_each(a.write, f"{COMMAND} {a.name}", text)


if __name__ == "__main__":
    main()
