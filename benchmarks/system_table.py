"""The update engine's system numbers (docs/hardware.md, "System numbers"): ``lnsim synth --unit engine`` of
one lane at B = 12 (default eta0) on every target, and what the targets' block RAMs give per B
(:mod:`lnsim.fpga.capacity`).

The measured rows come from docs/img/engine-synth.csv (``--csv``); ``--run`` synthesises them again first
(seed 1, each target's default constraint; 2-5 minutes per target on one core) and rewrites that CSV. With
``--write FILE`` (repeatable) the tables go into FILE between the markers
``<!-- table: python benchmarks/system_table.py -->`` and ``<!-- end of table -->`` (benchmarks/tables.py).

Usage: python benchmarks/system_table.py [--run] [--csv docs/img/engine-synth.csv] [--write FILE]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile

import tables

from lnsim.fpga import TARGETS
from lnsim.fpga.capacity import step_cycles, system_numbers, word_bits
from lnsim.spec import Spec

COMMAND = "python benchmarks/system_table.py"
#: The measured runs: target -> depth (the iCE40's 30 EBRs hold 2,560 rows of 45 bits, not 4,096).
RUNS = {"ecp5-25k": 4096, "ecp5-85k": 4096, "gowin-gw1nr9": 4096, "gatemate-a1": 4096, "ice40-up5k": 2048}
BITS = 12
WIDTHS = (8, 10, 12, 16)
FIELDS = ("target", "depth", "bits", "lanes", "status", "luts", "ffs", "brams", "dsps", "fmax_mhz", "timing_met",
          "freq_target_mhz", "seconds", "error")


def synth(target: str, depth: int) -> dict:
    """One run's report as a CSV row (``status`` "failed" and the error line when a tool fails)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "r.json")
        argv = ["synth", "--unit", "engine", "--depth", str(depth), "--bits", str(BITS), "--target", target,
                "--json", path]
        print("$ lnsim " + " ".join(argv), flush=True)
        # A failed placement exits 1 and still writes its synthesis-level report.
        done = subprocess.run([sys.executable, "-m", "lnsim.cli", *argv], stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True, check=False)
        r = {"target": target}
        if os.path.exists(path):
            with open(path) as f:
                r = json.load(f)
    errors = [ln for ln in done.stderr.splitlines() if ln.startswith("lnsim: error:")]
    row = {k: r.get(k, "") for k in FIELDS}
    row.update(target=target, depth=depth, bits=BITS, lanes=1, status="ok" if done.returncode == 0 else "failed",
               error=errors[-1].removeprefix("lnsim: error: ") if errors else "")
    return row


def measured_table(rows) -> str:
    """One row per run: its cells and Fmax, or why it failed."""
    lines = ["| target | depth | LUTs | FFs | block RAMs | DSPs | Fmax (MHz) | seconds |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if r["status"] == "ok":
            met = "met" if r["timing_met"] == "True" else f"NOT met at {float(r['freq_target_mhz']):g}"
            fmax = f"{float(r['fmax_mhz']):.1f} ({met})"
        else:
            fmax = "not placed: " + r["error"].split("; yowasp-")[0]  # what does not fit, without the tool's line
        cells = [r[k] for k in ("luts", "ffs", "brams", "dsps")]
        lines.append(f"| {r['target']} | {r['depth']} | {' | '.join(map(str, cells))} | {fmax} | {r['seconds']} |")
    return "\n".join(lines)


def capacity_table(specs) -> str:
    """Per target: its block RAMs and the largest depth they hold for each B (one lane)."""
    head = " | ".join(f"largest N, B={b} ({word_bits(s)}-bit words)" for b, s in specs.items())
    lines = [f"| target | block RAMs | {head} |", "|---|---|" + "---|" * len(specs)]
    for name, t in TARGETS.items():
        n = [f"{system_numbers(s, name, fmax_mhz=1.0)['max_rows']:,}" for s in specs.values()]
        lines.append(f"| {name} | {t.bram.count} {t.bram.cell} | {' | '.join(n)} |")
    return "\n".join(lines)


def system_rows(spec, rows) -> str:
    """Per measured target at B = 12, one lane: BRAM per 10**6 weights, updates/s and the step time at the
    largest depth, from its Fmax."""
    lines = ["| target | Fmax (MHz) | BRAM per 10^6 weights | updates/s | largest N | cycles per step | time per step |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        if r["status"] != "ok":
            continue
        n = system_numbers(spec, r["target"], fmax_mhz=float(r["fmax_mhz"]))
        lines.append(f"| {r['target']} | {float(r['fmax_mhz']):.1f} | {n['brams_per_million']:,} | "
                     f"{n['updates_per_s'] / 1e6:.1f} M | {n['max_rows']:,} | {step_cycles(n['max_rows']):,} | "
                     f"{n['step_s'] * 1e6:.1f} us |")
    return "\n".join(lines)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--run", action="store_true", help="synthesise the measured rows again and rewrite --csv")
    p.add_argument("--csv", default="docs/img/engine-synth.csv")
    p.add_argument("--write", metavar="FILE", action="append", help="replace the table between the markers in FILE")
    a = p.parse_args(argv)
    if a.run:
        rows = [synth(t, d) for t, d in RUNS.items()]
        with open(a.csv, "w", newline="") as f:
            w = csv.DictWriter(f, FIELDS)
            w.writeheader()
            w.writerows(rows)
    with open(a.csv, newline="") as f:
        rows = list(csv.DictReader(f))
    specs = {b: Spec.from_options(bits=b) for b in WIDTHS}
    text = "\n\n".join([measured_table(rows), capacity_table(specs), system_rows(specs[BITS], rows)])
    print(text)
    tables.write_each(a.write, COMMAND, text)


if __name__ == "__main__":
    main()
