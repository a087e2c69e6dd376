"""A synthesis report (:func:`lnsim.fpga.synthesize`) as the lines ``lnsim synth`` prints."""

from __future__ import annotations

from lnsim.fpga.targets import TARGETS, bel_order

__all__ = ["format_fit", "format_report"]


def format_fit(report: dict) -> str:
    """Whether an unplaced report's unit fits its device, from the utilisation nextpnr packed:
    ``"fits: 2729/5280 logic cells, 4/8 DSPs"`` or ``"does NOT fit: 8195/5280 logic cells, 10/8 DSPs"`` (the BEL
    types the target names, in use), or ``"unknown (...)"`` without a utilisation."""
    util = report.get("device_utilization") or {}
    if report.get("fits") is None or not util:
        return "unknown (nextpnr reported no utilisation)"
    target = TARGETS[report["target"]]
    shown = [f"{used}/{avail} {target.bel_names[bel]}" for bel, (used, avail) in bel_order(target, util)
             if bel in target.bel_names and used]
    return ("fits: " if report["fits"] else "does NOT fit: ") + ", ".join(shown)


def format_report(report: dict) -> str:
    """The report as text: target and constraint, unit, LUTs, flip-flops, block RAMs, DSPs (and the flip-flops
    packed into them), Fmax and whether it met the constraint (and what it leaves out, such as iCE40's DSP
    paths), the critical path's blocks, the tool versions. An unplaced report (``place=False``, or a failed
    placement) has a ``device`` line saying whether the unit fits, and no Fmax or critical path.

    One line each, joined by newlines, no newline at the end.
    """
    r = report
    cp = r["critical_path"]
    pm = r["packed_mult_registers"]
    moved = f" ({pm['ffs']} flip-flops moved into {pm['mults']} of them)" if pm["mults"] else ""
    lines = [
        f"target            {r['target']}  (seed {r['seed']}, constraint {r['freq_target_mhz']:g} MHz)",
        f"unit              {r['unit']}, B={r['bits']}, {r['lanes']} lane(s)"
        + (f", {r['depth']} rows" if r.get("depth") else ""),
        f"LUTs              {r['luts']}",
        f"flip-flops        {r['ffs']}",
        f"block RAMs        {r['brams']}",
        f"DSPs/multipliers  {r['dsps']}{moved}",
    ]
    if r.get("placed", True):
        untimed = f"; {r['untimed']}" if r.get("untimed") else ""
        lines += [f"Fmax              {r['fmax_mhz']:.1f} MHz ({'met' if r['timing_met'] else 'NOT met'}{untimed})",
                  f"critical path     {cp['delay_ns']:.2f} ns, {len(cp['steps'])} steps: "
                  f"{' -> '.join(cp['blocks']) or '(its cells have no names in this netlist)'}"]
    else:
        lines += [f"device            {format_fit(r)}",
                  "Fmax              not measured (not placed)"]
    lines.append(f"tools             {r['tools']['yosys']}; {r['tools']['nextpnr']}")
    return "\n".join(lines)
