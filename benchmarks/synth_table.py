"""The FPGA cost tables: ``lnsim synth --sweep --eta0 0.001 --target ecp5-25k`` (both units, B 8/10/12/16 x 1
and 4 lanes, seed 1, 150 MHz constraint, the pinned yowasp tools) as docs/hardware.md's table, one row per
configuration, and README.md's summary, one row per unit and lane count.

Runs the sweep into ``--out`` (its CSV and PNG; about 15-20 minutes on 2 cores with ``--jobs 2``), or with
``--csv FILE`` renders the tables from a sweep CSV already measured (docs/img/synth-sweep.csv is the committed
one). With ``--write FILE`` (repeatable) the table goes into FILE between the markers ``<!-- table: python
benchmarks/synth_table.py -->`` and ``<!-- end of table -->`` (benchmarks/tables.py): README.md gets the
summary. Fmax is shown to 0.1 MHz, or to 0.01 MHz where 0.1 would round a missed 150 MHz up to 150.0.

Usage: python benchmarks/synth_table.py [--jobs 2] [--out synth-table] [--csv FILE] [--write FILE]
"""

from __future__ import annotations

import argparse
import csv
import os

import tables

from lnsim.cli import main as lnsim_main
from lnsim_rtl.update_unit import LATENCY

COMMAND = "python benchmarks/synth_table.py"
SWEEP = ["synth", "--sweep", "--eta0", "0.001", "--target", "ecp5-25k"]
AIM_MHZ = 150.0


def read_rows(path: str) -> list[dict]:
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    bad = [r for r in rows if r["status"] != "ok"]
    if bad:
        raise SystemExit(f"{path}: {len(bad)} configurations did not finish ({bad[0]['unit']} B={bad[0]['bits']}: "
                         f"{bad[0]['error']})")
    return rows


def _close_miss(row: dict) -> bool:
    """Whether the row missed the aim by less than 0.05 MHz (0.1 MHz rounding would show it as met)."""
    return float(f"{float(row['fmax_mhz']):.1f}") >= AIM_MHZ and row["timing_met"] != "True"


def fmax(row: dict) -> str:
    return f"{float(row['fmax_mhz']):.2f}" if _close_miss(row) else f"{float(row['fmax_mhz']):.1f}"


def table(rows) -> str:
    """docs/hardware.md's table: one row per configuration, in the CSV's order."""
    lines = ["| unit | B | lanes | LUTs | FFs | BRAM | DSP | Fmax (MHz) | 150 MHz met |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['unit']} | {r['bits']} | {r['lanes']} | {r['luts']} | {r['ffs']} | {r['brams']} | "
                     f"{r['dsps']} | {fmax(r)} | {'yes' if r['timing_met'] == 'True' else 'no'} |")
    return "\n".join(lines)


def summary(rows) -> str:
    """README.md's table: per unit and lane count, the widths side by side (FFs as a range)."""
    names = {"madam": "B-bit Madam", "linear": "linear baseline"}
    lines = ["| unit | B | lanes | LUTs | FFs | DSPs | Fmax (MHz) |", "|---|---|---|---|---|---|---|"]
    groups = {}
    for r in rows:
        groups.setdefault((r["unit"], r["lanes"]), []).append(r)
    first_madam = True
    for (unit, lanes), group in groups.items():
        name = names.get(unit, unit)
        if unit == "madam" and first_madam:
            name, first_madam = f"{name} ({LATENCY}-cycle pipeline)", False
        ffs = sorted(int(r["ffs"]) for r in group)
        dsps = sorted({r["dsps"] for r in group})
        f = [fmax(r) + (" (missed)" if _close_miss(r) else "") for r in group]
        lines.append(f"| {name} | {' / '.join(r['bits'] for r in group)} | {lanes} | "
                     f"{' / '.join(r['luts'] for r in group)} | {ffs[0]}-{ffs[-1]} | {' / '.join(dsps)} | {' / '.join(f)} |")
    return "\n".join(lines)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--jobs", type=int, default=2, help="configurations synthesised at a time (default 2)")
    p.add_argument("--out", default="synth-table")
    p.add_argument("--csv", metavar="FILE", help="render the tables from this sweep CSV instead of running the sweep")
    p.add_argument("--write", metavar="FILE", action="append",
                   help="replace the table between the markers in FILE (repeatable; README.md gets the summary)")
    a = p.parse_args(argv)
    path = a.csv
    if path is None:
        os.makedirs(a.out, exist_ok=True)
        path = os.path.join(a.out, "synth-sweep.csv")
        argv = [*SWEEP, "--jobs", str(a.jobs), "--csv", path, "--plot", os.path.join(a.out, "synth-sweep.png")]
        print("$ lnsim " + " ".join(argv), flush=True)
        if lnsim_main(argv) != 0:
            raise SystemExit("lnsim synth --sweep failed")
    rows = read_rows(path)
    text = table(rows)
    print(text)
    tables.write_each(a.write, COMMAND, text, readme=summary(rows))


if __name__ == "__main__":
    main()
