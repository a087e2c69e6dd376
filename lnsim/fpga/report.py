"""A synthesis report (:func:`lnsim.fpga.synthesize`) as the lines ``lnsim synth`` prints."""

from __future__ import annotations

__all__ = ["format_report"]


def format_report(report: dict) -> str:
    """The report as text: target and constraint, unit, LUTs, flip-flops, block RAMs, DSPs (and the flip-flops
    packed into them), Fmax and whether it met the constraint, the critical path's blocks, the tool versions.

    One line each, joined by newlines, no newline at the end.
    """
    r = report
    cp = r["critical_path"]
    pm = r["packed_mult_registers"]
    moved = f" ({pm['ffs']} flip-flops moved into {pm['mults']} of them)" if pm["mults"] else ""
    return "\n".join([
        f"target            {r['target']}  (seed {r['seed']}, constraint {r['freq_target_mhz']:g} MHz)",
        f"unit              {r['unit']}, B={r['bits']}, {r['lanes']} lane(s)",
        f"LUTs              {r['luts']}",
        f"flip-flops        {r['ffs']}",
        f"block RAMs        {r['brams']}",
        f"DSPs/multipliers  {r['dsps']}{moved}",
        f"Fmax              {r['fmax_mhz']:.1f} MHz ({'met' if r['timing_met'] else 'NOT met'})",
        f"critical path     {cp['delay_ns']:.2f} ns, {len(cp['steps'])} steps: {' -> '.join(cp['blocks'])}",
        f"tools             {r['tools']['yosys']}; {r['tools']['nextpnr']}",
    ])
