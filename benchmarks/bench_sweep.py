"""Wall time of the README's sweep grid on two workers, then of the same command again (every run cached).

Runs ``lnsim sweep --bits 6:12 --eta0 0.001,0.004 --dataset digits --seeds 2 --jobs 2`` into a fresh
temporary directory twice and prints both times and their ratio. Targets: first run under 10
minutes on 2 cores, the rerun in seconds.

Usage: python benchmarks/bench_sweep.py [--jobs 2] [--epochs 100]
"""

from __future__ import annotations

import argparse
import tempfile
import time

from lnsim.cli import main as lnsim


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--jobs", default="2")
    p.add_argument("--epochs", default="100")
    a = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as out:
        cmd = ["sweep", "--bits", "6:12", "--eta0", "0.001,0.004", "--dataset", "digits", "--seeds", "2",
               "--jobs", a.jobs, "--epochs", a.epochs, "--quiet", "--out", out]
        times = []
        for _ in range(2):
            t0 = time.perf_counter()
            if lnsim(cmd) != 0:
                raise SystemExit("the sweep failed")
            times.append(time.perf_counter() - t0)
    print(f"lnsim {' '.join(cmd[:-2])}")
    print(f"first run   {times[0]:8.1f} s   (target < 600 s on 2 cores)")
    print(f"rerun       {times[1]:8.1f} s   ({times[1] / times[0]:.3f} of the first run)")


if __name__ == "__main__":
    main()
