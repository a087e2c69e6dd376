"""The synthesis sweep: both units over :data:`SWEEP_BITS` x :data:`SWEEP_LANES`, one row per configuration, as
text lines, a CSV table and a plot of LUTs and Fmax against the bits."""

from __future__ import annotations

import csv

from lnsim.fpga.flow import synthesize
from lnsim.fpga.targets import UNITS
from lnsim.fpga.tools import SynthError

__all__ = ["SWEEP_BITS", "SWEEP_LANES", "SWEEP_CSV_FIELDS", "sweep_points", "sweep_row", "format_sweep_row",
           "write_sweep_csv", "plot_sweep"]

#: Code widths B of the sweep.
SWEEP_BITS = (8, 10, 12, 16)
#: Lane counts of the sweep.
SWEEP_LANES = (1, 4)
#: The CSV's columns, in order.
SWEEP_CSV_FIELDS = ("target", "unit", "bits", "lanes", "status", "luts", "ffs", "brams", "dsps", "fmax_mhz",
                    "timing_met", "seed", "error")


def sweep_points() -> list:
    """The sweep's configurations ``(unit, bits, lanes)`` in the order it runs them: units outermost, lanes
    innermost."""
    return [(unit, bits, lanes) for unit in UNITS for bits in SWEEP_BITS for lanes in SWEEP_LANES]


def sweep_row(spec, *, target: str, unit: str, lanes: int, seed: int = 1, **options) -> dict:
    """One configuration's report (:func:`lnsim.fpga.synthesize` of ``spec`` with ``options``) with ``status``
    "ok" and ``error`` "".

    When a tool fails (a design that does not fit the device fails in placement) the row is
    ``{"target", "unit", "bits", "lanes", "status": "failed", "seed", "error"}``, the error the SynthError's
    message, so the sweep goes on. An invalid option still raises SpecError.
    """
    try:
        return {"status": "ok", "error": "",
                **synthesize(spec, target=target, unit=unit, lanes=lanes, seed=seed, **options)}
    except SynthError as e:
        return {"target": target, "unit": unit, "bits": spec.fmt.bits, "lanes": lanes, "status": "failed",
                "seed": seed, "error": str(e)}


def format_sweep_row(row: dict) -> str:
    """One line of a sweep row (:func:`sweep_row`): unit, B, lanes, then LUTs, FFs, BRAMs, DSPs and Fmax (MHz), or
    ``FAILED:`` and the error."""
    head = f"{row['unit']:<7} B={row['bits']:<3} lanes={row['lanes']}  "
    if row["status"] != "ok":
        return head + f"FAILED: {row['error']}"
    return head + (f"LUTs {row['luts']:>6}  FFs {row['ffs']:>5}  BRAM {row['brams']}  DSP {row['dsps']}  "
                   f"Fmax {row['fmax_mhz']:6.1f} MHz")


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
    for unit in UNITS:
        for lanes, style in zip(SWEEP_LANES, ("-o", "--s")):
            sel = sorted((r for r in rows if r["unit"] == unit and r["lanes"] == lanes and r.get("status", "ok") == "ok"),
                         key=lambda r: r["bits"])
            if sel:
                label = f"{unit}, {lanes} lane(s)"
                a.plot([r["bits"] for r in sel], [r["luts"] for r in sel], style, label=label)
                b.plot([r["bits"] for r in sel], [r["fmax_mhz"] for r in sel], style, label=label)
    a.set(xlabel="bits B", ylabel="LUTs (unit)", title=f"LUTs, {target}", yscale="log")
    b.set(xlabel="bits B", ylabel="Fmax (MHz)", title=f"Fmax, {target}")
    for ax in (a, b):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
