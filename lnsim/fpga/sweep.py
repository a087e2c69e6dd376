"""The synthesis sweep: both units over :data:`SWEEP_BITS` x :data:`SWEEP_LANES`, one row per configuration, run
one or several at a time (:func:`run_sweep`), as text lines, a CSV table and a plot of LUTs and Fmax against the
bits."""

from __future__ import annotations

import csv
import threading
from concurrent.futures import ThreadPoolExecutor, as_completed

from lnsim.fpga.flow import synthesize
from lnsim.fpga.report import format_fit
from lnsim.fpga.tools import PlacementError, SynthError
from lnsim.validation import check_int

__all__ = ["SWEEP_BITS", "SWEEP_LANES", "SWEEP_CSV_FIELDS", "sweep_points", "sweep_row", "check_sweep_jobs", "run_sweep",
           "format_sweep_row", "write_sweep_csv", "plot_sweep"]

#: Code widths B of the sweep.
SWEEP_BITS = (8, 10, 12, 16)
#: Lane counts of the sweep.
SWEEP_LANES = (1, 4)
#: The units of the sweep: the update unit and the linear baseline (not the engine, which has a depth).
SWEEP_UNITS = ("madam", "linear")
#: The CSV's columns, in order.
SWEEP_CSV_FIELDS = ("target", "unit", "bits", "lanes", "status", "luts", "ffs", "brams", "dsps", "fmax_mhz",
                    "timing_met", "seed", "fits", "error")


def sweep_points() -> list:
    """The sweep's configurations ``(unit, bits, lanes)`` in the order it runs them: units outermost, lanes
    innermost."""
    return [(unit, bits, lanes) for unit in SWEEP_UNITS for bits in SWEEP_BITS for lanes in SWEEP_LANES]


def sweep_row(spec, *, target: str, unit: str, lanes: int, seed: int = 1, **options) -> dict:
    """One configuration's report (:func:`lnsim.fpga.synthesize` of ``spec`` with ``options``) with ``status``
    "ok" and ``error`` "".

    When a tool fails the row has ``status`` "failed" and ``error`` the SynthError's message, so the sweep goes
    on. A failed placement (a design that does not fit the device) keeps the synthesis-level report: the unit's
    cells, the device's utilisation and ``fits``, no Fmax. A failed synthesis has only ``{"target", "unit",
    "bits", "lanes", "status", "seed", "error"}``. An invalid option still raises SpecError.
    """
    try:
        return {"status": "ok", "error": "",
                **synthesize(spec, target=target, unit=unit, lanes=lanes, seed=seed, **options)}
    except PlacementError as e:
        return {**e.report, "status": "failed", "error": str(e)}
    except SynthError as e:
        return {"target": target, "unit": unit, "bits": spec.fmt.bits, "lanes": lanes, "status": "failed",
                "seed": seed, "error": str(e)}


def check_sweep_jobs(jobs) -> int:
    """``jobs`` as an int if it is an integer in 1..16 (the sweep's configurations), else a SpecError
    ``"jobs must be an integer in 1..16, not 0"``."""
    return check_int("jobs", jobs, 1, len(sweep_points()))


def run_sweep(specs: dict, *, target: str, jobs: int = 1, progress=None, on_row=None, **options) -> list:
    """The rows (:func:`sweep_row`) of every configuration of :func:`sweep_points`, in that order.

    ``specs`` maps each of :data:`SWEEP_BITS` to its spec; ``options`` go to :func:`lnsim.fpga.synthesize`.
    ``jobs`` configurations (1..16, the sweep's size) run at a time, each in a thread whose tools are processes
    of their own. ``progress(message)`` gets one line per step (prefixed with the configuration when
    ``jobs`` > 1); ``on_row(row, rows)`` is called in the calling thread as each row is done, ``rows`` the
    finished ones in sweep order.

    Ctrl-C (KeyboardInterrupt) stops every running tool, waits for the threads to remove their work
    directories, and is raised again; so does any other error of a configuration (a SpecError for an invalid
    option). ``jobs`` outside 1..16 is a SpecError (:func:`check_sweep_jobs`) before any work.
    """
    points = sweep_points()
    jobs = check_sweep_jobs(jobs)
    say = progress or (lambda message: None)
    done: dict = {}

    def finished(i, row):
        done[i] = row
        if on_row is not None:
            on_row(row, [done[k] for k in sorted(done)])

    if jobs == 1:
        for i, (unit, bits, lanes) in enumerate(points):
            say(f"sweep {i + 1}/{len(points)}")
            finished(i, sweep_row(specs[bits], target=target, unit=unit, lanes=lanes, progress=progress, **options))
        return [done[i] for i in range(len(points))]
    stop = threading.Event()
    say(f"sweep: {len(points)} configurations, {jobs} at a time")
    with ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="lnsim-synth") as pool:
        futures = {}
        for i, (unit, bits, lanes) in enumerate(points):
            label = f"{unit} B={bits} lanes={lanes}: "
            futures[pool.submit(sweep_row, specs[bits], target=target, unit=unit, lanes=lanes, stop=stop,
                                progress=lambda m, label=label: say(label + m), **options)] = i
        try:
            for future in as_completed(futures):
                finished(futures[future], future.result())
        except BaseException:
            stop.set()
            for future in futures:
                future.cancel()
            raise
    return [done[i] for i in range(len(points))]


def format_sweep_row(row: dict) -> str:
    """One line of a sweep row (:func:`sweep_row`): unit, B, lanes, then LUTs, FFs, BRAMs, DSPs and Fmax (MHz), or
    whether it fits when not placed; ``FAILED:`` and the error after a failure (after the synthesis-level
    cells when there are any)."""
    head = f"{row['unit']:<7} B={row['bits']:<3} lanes={row['lanes']}  "
    cost = (f"LUTs {row['luts']:>6}  FFs {row['ffs']:>5}  BRAM {row['brams']}  DSP {row['dsps']}  "
            if "luts" in row else "")
    if row["status"] != "ok":
        return head + cost + f"FAILED: {row['error']}"
    if not row.get("placed", True):
        return head + cost + format_fit(row)
    return head + cost + f"Fmax {row['fmax_mhz']:6.1f} MHz"


def write_sweep_csv(f, rows: list) -> None:
    """Write the sweep's CSV to the text file ``f`` (opened with ``newline=""``): a header of
    :data:`SWEEP_CSV_FIELDS`, then one line per row, failed ones with their error and no costs."""
    w = csv.DictWriter(f, fieldnames=SWEEP_CSV_FIELDS, extrasaction="ignore")
    w.writeheader()
    w.writerows(rows)


def plot_sweep(rows: list, path: str, target: str) -> None:
    """Save a PNG to ``path``: the successful rows' LUTs (log scale) and Fmax (MHz) against the bits, one line per
    unit and lane count, titled with ``target``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    for unit in SWEEP_UNITS:
        for lanes, style in zip(SWEEP_LANES, ("-o", "--s")):
            sel = sorted((r for r in rows if r["unit"] == unit and r["lanes"] == lanes and r.get("status", "ok") == "ok"),
                         key=lambda r: r["bits"])
            timed = [r for r in sel if r.get("fmax_mhz") is not None]  # none without placement
            label = f"{unit}, {lanes} lane(s)"
            if sel:
                a.plot([r["bits"] for r in sel], [r["luts"] for r in sel], style, label=label)
            if timed:
                b.plot([r["bits"] for r in timed], [r["fmax_mhz"] for r in timed], style, label=label)
    a.set(xlabel="bits B", ylabel="LUTs (unit)", title=f"LUTs, {target}", yscale="log")
    b.set(xlabel="bits B", ylabel="Fmax (MHz)", title=f"Fmax, {target}")
    for ax in (a, b):
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
