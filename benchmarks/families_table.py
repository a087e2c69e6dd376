"""The update unit on the further FPGA families: ``lnsim synth`` of one lane at B = 8 (eta0 0.016) and B = 12
(eta0 0.001) on ecp5-85k, gowin-gw1nr9 and gatemate-a1 (seed 1, each target's default constraint, the pinned
yowasp tools), as docs/hardware.md's table.

Each configuration's report goes to ``--out`` as JSON (``--reuse`` reads those already there instead of
synthesising again; about 3 minutes per configuration on one core, ``--jobs`` at a time). With ``--write FILE``
(repeatable) the table goes into FILE between the markers ``<!-- table: python benchmarks/families_table.py -->``
and ``<!-- end of table -->`` (benchmarks/tables.py).

Usage: python benchmarks/families_table.py [--jobs 2] [--out families-table] [--reuse] [--write FILE]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import subprocess
import sys

import tables

COMMAND = "python benchmarks/families_table.py"
TARGETS = ("ecp5-85k", "gowin-gw1nr9", "gatemate-a1")
#: B -> eta0 of the rows.
WIDTHS = {8: "0.016", 12: "0.001"}


def synth(target: str, bits: int, out: str, reuse: bool) -> dict:
    """The report of one configuration, synthesised in a process of its own (or read from ``out``)."""
    path = os.path.join(out, f"{target}-{bits}.json")
    if not (reuse and os.path.exists(path)):
        argv = ["synth", "--bits", str(bits), "--eta0", WIDTHS[bits], "--target", target, "--json", path]
        print("$ lnsim " + " ".join(argv), flush=True)
        subprocess.run([sys.executable, "-m", "lnsim.cli", *argv], check=True, stdout=subprocess.DEVNULL)
    with open(path) as f:
        return json.load(f)


def table(reports) -> str:
    """One row per report: target, B, the unit's LUTs, flip-flops, multipliers and the Fmax."""
    lines = ["| target | B | LUTs | FFs | multipliers | Fmax (MHz) |", "|---|---|---|---|---|---|"]
    for r in reports:
        bits = f"{r['bits']} (eta0 {WIDTHS[r['bits']]})" if r["target"] == TARGETS[0] else str(r["bits"])
        lines.append(f"| {r['target']} | {bits} | {r['luts']} | {r['ffs']} | {r['dsps']} | {r['fmax_mhz']:.1f} |")
    return "\n".join(lines)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--jobs", type=int, default=2, help="configurations synthesised at a time (default 2)")
    p.add_argument("--out", default="families-table")
    p.add_argument("--reuse", action="store_true", help="read the reports already in --out")
    p.add_argument("--write", metavar="FILE", action="append", help="replace the table between the markers in FILE")
    a = p.parse_args(argv)
    os.makedirs(a.out, exist_ok=True)
    points = [(t, b) for t in TARGETS for b in WIDTHS]
    with concurrent.futures.ThreadPoolExecutor(a.jobs) as pool:
        reports = list(pool.map(lambda point: synth(*point, a.out, a.reuse), points))
    text = table(reports)
    print(text)
    tables.write_each(a.write, COMMAND, text)


if __name__ == "__main__":
    main()
