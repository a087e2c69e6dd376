"""Readers of the tools' output: Yosys's ``stat`` section, nextpnr's log and ``--report`` JSON, and the unit's cost
and critical-path blocks made from them."""

from __future__ import annotations

import re

from lnsim.fpga.targets import Target

__all__ = ["parse_yosys_stat", "unit_cost", "parse_utilisation", "overfull", "parse_nextpnr_log", "parse_nextpnr_report",
           "path_summary"]

_STAT_LINE = re.compile(r"^\s+(\d+)\s+(?:[\d.]+\s+)?(\S+)\s*$")


def parse_yosys_stat(log: str, module: str) -> dict:
    """Cell counts by type of ``module`` from the last ``stat`` section ``=== module ===`` of a Yosys log.

    Returns ``{cell_type: count}`` (cell types only: names that are not wires, ports, cells or bits).
    Raises ValueError if the log has no such section.
    """
    starts = [m.end() for m in re.finditer(rf"^=== {re.escape(module)} ===\s*$", log, re.M)]
    if not starts:
        raise ValueError(f"no statistics for module {module!r} in the Yosys log")
    section = log[starts[-1]:]
    end = re.search(r"^(===|\d+\.\d+(\.\d+)*\. )", section, re.M)
    section = section[:end.start()] if end else section
    counts = {}
    for line in section.splitlines():
        m = _STAT_LINE.match(line)
        if m and not m.group(2).startswith("$") and m.group(2) not in (
                "wires", "cells", "ports", "submodules", "memories", "processes") and not line.rstrip().endswith(" bits"):
            counts[m.group(2).lstrip("\\")] = int(m.group(1))
    return counts


def unit_cost(counts: dict, target: Target) -> dict:
    """LUTs, flip-flops, block RAMs and DSPs of a cell count (:func:`parse_yosys_stat`) on ``target``.

    Returns ``{"luts", "ffs", "brams", "dsps"}`` as ints.
    """
    return {
        "luts": sum(n * counts.get(cell, 0) for cell, n in target.lut_cells.items()),
        "ffs": sum(v for k, v in counts.items() if k.startswith(target.ff_prefix)),
        "brams": sum(counts.get(cell, 0) for cell in target.bram_cells),
        "dsps": sum(counts.get(cell, 0) for cell in target.dsp_cells),
    }


_FMAX = re.compile(r"Max frequency for clock\s+'([^']*)':\s*([\d.]+) MHz \((PASS|FAIL) at ([\d.]+) MHz\)")
_UTIL = re.compile(r"^Info:\s+(\w+):\s+(\d+)/\s*(\d+)\s+\d+%", re.M)


def parse_utilisation(log: str) -> dict:
    """The device utilisation nextpnr logs after packing, before placement (so a failed placement has it too):
    ``{bel: [used, available]}`` of every BEL type in the last ``Device utilisation:`` block, {} if none."""
    if "Device utilisation:" not in log:
        return {}
    block = log.split("Device utilisation:")[-1].split("\n\n")[0]
    return {name: [int(used), int(avail)] for name, used, avail in _UTIL.findall(block)}


#: BEL types nextpnr counts with no sites on the device (``used/0``) that are not resources of their own: Gowin's
#: and GateMate's helper cells (of block RAMs, adders, multipliers, muxes), placed in other BELs' sites.
PSEUDO_BELS = ("DUMMY_CELL", "CPE_DUMMY", "CPE_ADDF", "CPE_ADDF2", "CPE_BRIDGE", "CPE_MULT", "CPE_MX4")


def overfull(utilisation: dict) -> dict:
    """The BEL types of a utilisation (``{bel: [used, available]}``) that need more than the device has (not the
    :data:`PSEUDO_BELS`)."""
    return {bel: [used, avail] for bel, (used, avail) in utilisation.items() if used > avail and bel not in PSEUDO_BELS}


def parse_nextpnr_log(log: str) -> dict:
    """Fmax (the last report, after routing) and the device utilisation from a nextpnr log.

    The clock is the slowest real one (not a pseudo clock of constant nets such as ``$PACKER_GND_NET``).

    Returns ``{"fmax_mhz", "freq_target_mhz", "timing_met", "clock", "utilization": {bel: [used, available]}}``.
    Raises ValueError if the log has no Fmax line.
    """
    found = _FMAX.findall(log)
    if not found:
        raise ValueError("no 'Max frequency' line in the nextpnr log")
    last = {clock: (fmax, verdict, freq) for clock, fmax, verdict, freq in found}
    real = [c for c in last if not c.startswith("$")] or list(last)
    clock = min(real, key=lambda c: float(last[c][0]))
    fmax, verdict, freq = last[clock]
    return {"fmax_mhz": float(fmax), "freq_target_mhz": float(freq), "timing_met": verdict == "PASS",
            "clock": clock, "utilization": parse_utilisation(log)}


def _edge_clock(text) -> str:
    return str(text).split(" ")[-1]


def parse_nextpnr_report(report: dict) -> dict:
    """Fmax, utilisation and the critical path from nextpnr's ``--report`` JSON.

    Returns ``{"fmax_mhz", "freq_target_mhz", "timing_met", "clock", "utilization", "critical_path"}``; the
    critical path is the clock's longest register-to-register path: ``{"delay_ns", "from", "to", "steps"}``
    with the steps a list of ``{"type", "from", "to", "delay_ns"}`` (cell.port names).
    """
    # nextpnr may add a pseudo clock for constant clock pins (iCE40 DSPs: '$PACKER_GND_NET...'); the
    # design's clock is the real net named clk, else the slowest.
    clocks = {k: v for k, v in report["fmax"].items() if not k.startswith("$")} or report["fmax"]
    named = [k for k in clocks if k == "clk" or k.startswith("clk$")]
    clock = named[0] if named else min(clocks, key=lambda k: clocks[k]["achieved"])
    f = clocks[clock]
    util = {k: [v["used"], v["available"]] for k, v in report.get("utilization", {}).items() if v["used"]}
    steps, total = [], 0.0
    paths = [p for p in report.get("critical_paths", []) if p.get("path") and _edge_clock(p.get("from")) == clock == _edge_clock(p.get("to"))]
    if paths:
        for s in paths[0]["path"]:
            total += s["delay"]
            steps.append({"type": s["type"], "from": f"{s['from']['cell']}.{s['from']['port']}",
                          "to": f"{s['to']['cell']}.{s['to']['port']}", "delay_ns": round(s["delay"], 3)})
    return {"fmax_mhz": round(float(f["achieved"]), 2), "freq_target_mhz": float(f["constraint"]),
            "timing_met": f["achieved"] >= f["constraint"], "clock": clock, "utilization": util,
            "critical_path": {"delay_ns": round(total, 3), "from": steps[0]["from"] if steps else None,
                              "to": steps[-1]["to"] if steps else None, "steps": steps}}


#: Where the synthesis tools' names of mapped cells start their own suffix (``lane0_s3_eg_TRELLIS_FF_Q``,
#: ``g_t0_1_DFFE_Q_4_D_LUT4_F``): a block's name is what comes before the first of them.
CELL_SUFFIXES = ("_TRELLIS", "_SB_", "_DFF", "_LUT", "_MUX2_", "_ALU")


def path_summary(steps: list) -> list:
    """The blocks of the unit (stages, pipeline registers, signals of its top module) a critical path's ``steps``
    pass through, in order.

    ``steps`` as in :func:`parse_nextpnr_report`; returns names such as ``"lane0_s3_X"`` (a lane's stage or
    register) or ``"Y"`` (a signal of the unit's own module, shared by the lanes or named without a lane),
    each once per run of consecutive steps in it, and ``"harness"`` for the shift registers around the unit.
    Cells the tools named only by a number (``$abc$...``, GateMate's netlists) name no block.
    """
    blocks = []
    for s in steps:
        cell = s["from"].rsplit(".", 1)[0]  # drop the port
        if cell.startswith("unit."):
            block = re.split("|".join(map(re.escape, CELL_SUFFIXES)), cell.removeprefix("unit.").split(".")[0].split("$")[0])[0]
        else:
            block = "harness"
        if block and (not blocks or blocks[-1] != block):
            blocks.append(block)
    return blocks
