"""Fidelity of the golden datapath to float64 Madam per configuration, as a Markdown table.

For each configuration: the share of rung steps equal to round((eta/eta0) * clamp(g/gbar, eta_star/eta))
in float64 on the same quantised gradients, the count off by one, the largest error, and the ROM bits of
the update tables. With ``--write FILE`` (repeatable: README.md, docs/datapath.md) it puts the table into FILE
between the markers ``<!-- table: python benchmarks/fidelity_table.py -->`` and ``<!-- end of table -->``
(benchmarks/tables.py). Deterministic (seeded); about 40 s on one core, half that with ``--jobs 2``.

Usage: python benchmarks/fidelity_table.py [--n 1000000] [--steps 30] [--seed 0] [--jobs 1] [--write FILE]
"""

from __future__ import annotations

import argparse
import concurrent.futures

import tables

from lnsim import LNSFormat, MadamConfig, Spec
from lnsim.fidelity import measure

B12 = LNSFormat(bits=12, eta0=0.001)
POW2 = LNSFormat(bits=12, base="pow2", frac_bits=10)

CONFIGS = [
    ("B=12 eta0=0.001, defaults", Spec(B12, MadamConfig())),
    ("B=12, float16 gradients", Spec(B12, MadamConfig(grad_format="float16"))),
    ("B=12, float32 gradients", Spec(B12, MadamConfig(grad_format="float32"))),
    ("B=12, no bias correction", Spec(B12, MadamConfig(bias_correction=False))),
    ("B=16 eta0=0.001, eta=5 rungs", Spec(LNSFormat(bits=16, eta0=0.001), MadamConfig(eta=0.005, eta_star=0.04))),
    ("B=10 eta0=0.004, eta=2 rungs", Spec(LNSFormat(bits=10, eta0=0.004), MadamConfig(eta=0.008, eta_star=0.064))),
    ("B=8 eta0=0.016, eta=1 rung", Spec(LNSFormat(bits=8, eta0=0.016), MadamConfig(eta=0.016, eta_star=0.128))),
    ("B=12 pow2 m=10, eta=15 rungs", Spec(POW2, MadamConfig.from_rungs(POW2, 15, 120))),
    ("B=12, F=16 a=9", Spec(B12, MadamConfig(table_index_bits=9))),
    ("B=12, F=16 a=5", Spec(B12, MadamConfig(table_index_bits=5))),
    ("B=12, F=12 a=5", Spec(B12, MadamConfig(log_frac_bits=12, table_index_bits=5))),
    ("B=12, F=10 a=4", Spec(B12, MadamConfig(log_frac_bits=10, table_index_bits=4))),
    ("B=12, state 28 bits", Spec(B12, MadamConfig(state_bits=28))),
]


COMMAND = "python benchmarks/fidelity_table.py"


def row(name, spec, n, steps, seed) -> str:
    r = measure(spec, n=n, steps=steps, seed=seed)
    return f"| {name} | {100 * r['exact']:.3f}% | {r['off_by_one']:,} | {r['max_error']} | {r['table_bits']:,} |"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--jobs", type=int, default=1, help="configurations measured at a time, in processes (default 1)")
    ap.add_argument("--write", metavar="FILE", action="append", help="replace the table between the markers in FILE (repeatable)")
    args = ap.parse_args(argv)
    lines = [f"{args.n:,} elements x {args.steps} steps, seed {args.seed}", "",
             "| configuration | exact | off by one | max error (rungs) | update table bits |", "|---|---|---|---|---|"]
    print("\n".join(lines), flush=True)
    jobs = [(name, spec, args.n, args.steps, args.seed) for name, spec in CONFIGS]
    if args.jobs > 1:
        with concurrent.futures.ProcessPoolExecutor(args.jobs) as pool:
            rows = pool.map(row, *zip(*jobs))
            for line in rows:
                print(line, flush=True)
                lines.append(line)
    else:
        for job in jobs:
            lines.append(row(*job))
            print(lines[-1], flush=True)
    tables.write_each(args.write, COMMAND, "\n".join(lines))


if __name__ == "__main__":
    main()
