"""Which pipeline stage first disagrees with the golden model, for one mismatching vector (host side).

The vector's stage values are rebuilt from the RTL's own stage components (:mod:`lnsim_rtl.stages`,
simulated with ``amaranth.sim``, with the same table contents the unit was built with), chained as the
unit chains them: stage 1 gets the vector's gradient, each later stage the RTL outputs of the stages
before it. Each stage's outputs are compared with the golden model's values of the same names
(:func:`lnsim.golden.update_trace`); the first stage that differs is named. If every stage agrees, the
difference lies in what joins them in :class:`lnsim_rtl.UpdateUnit`: the pipeline registers, the
handshake or the NaN select.
"""

from __future__ import annotations

__all__ = ["STAGES", "stage_values", "first_differing_stage"]

#: (number, component name, input ports, output ports compared with the golden model).
STAGES = (
    (1, "Unpack", ("gbits",), ("sg", "nan", "inf", "zero", "en", "S16")),
    (2, "Ema", ("st", "S16", "en", "zero"), ("Em", "Sm", "st_new")),
    (3, "LogRatio", ("S16", "en", "Em", "Sm", "zero"), ("X",)),
    (4, "RungStep", ("X", "log_eta", "log_bc", "zero"), ("Y", "n")),
    (5, "SaturatingAdd", ("sw", "sg", "k", "n"), ("k_new",)),
)


def stage_values(spec, vector: dict, *, log_table=None, antilog_table=None) -> dict:
    """Every stage output of the RTL's stage components for ``vector`` (keys ``sw, k, g, st, log_eta, log_bc``)."""
    from amaranth.hdl import Module
    from amaranth.sim import Simulator

    from lnsim_rtl import stages as rtl

    m = Module()
    comps = {
        "Unpack": rtl.Unpack(spec),
        "Ema": rtl.Ema(spec),
        "LogRatio": rtl.LogRatio(spec, log_table=log_table),
        "RungStep": rtl.RungStep(spec, antilog_table=antilog_table),
        "SaturatingAdd": rtl.SaturatingAdd(spec),
    }
    for name, comp in comps.items():
        m.submodules[name] = comp
    values = {"gbits": vector["g"], "st": vector["st"], "sw": vector["sw"], "k": vector["k"],
              "log_eta": vector["log_eta"], "log_bc": vector["log_bc"]}

    async def bench(ctx):
        for _, name, ins, outs in STAGES:
            comp = comps[name]
            for port in ins:
                ctx.set(getattr(comp, port), values[port])
            for port in outs:
                values[port] = ctx.get(getattr(comp, port))

    sim = Simulator(m)
    sim.add_testbench(bench)
    sim.run()
    return values


def _relevant(port: str, gold: dict) -> bool:
    """Whether the golden model's value of ``port`` is the stage's output for this vector.

    The golden ``k_new`` and ``st_new`` are after the NaN select (the stages' are before it), and ``X``,
    ``Y`` of a zero gradient are unused values.
    """
    if port in ("k_new", "st_new"):
        return not gold["nan"]
    if port in ("X", "Y"):
        return not gold["zero"]
    return True


def first_differing_stage(spec, vector: dict, *, log_table=None, antilog_table=None) -> dict:
    """The first stage whose outputs differ from the golden model's, for one vector.

    Returns
    -------
    dict
        ``stage`` (1..5, or None if all agree), ``name`` (e.g. ``"RungStep"``), ``differences``
        (``{port: {"rtl": ..., "golden": ...}}``), ``rtl`` and ``golden`` (all stage values) and
        ``summary`` (one line).
    """
    from lnsim.golden import update_trace

    gold = update_trace(spec, vector["sw"], vector["k"], vector["g"], vector["st"],
                        log_eta=vector["log_eta"], log_bc=vector["log_bc"])
    rtl = stage_values(spec, vector, log_table=log_table, antilog_table=antilog_table)
    for number, name, _, outs in STAGES:
        diffs = {p: {"rtl": rtl[p], "golden": gold[p]} for p in outs if _relevant(p, gold) and rtl[p] != gold[p]}
        if diffs:
            detail = ", ".join(f"{p}: RTL {d['rtl']} golden {d['golden']}" for p, d in diffs.items())
            return {"stage": number, "name": name, "differences": diffs, "rtl": _pick(rtl), "golden": _pick_named(gold),
                    "summary": f"stage {number} ({name}): {detail}"}
    return {"stage": None, "name": None, "differences": {}, "rtl": _pick(rtl), "golden": _pick_named(gold),
            "summary": "stages 1-5 agree with the golden model for this vector: the difference arises in "
                       "UpdateUnit's pipeline registers, handshake or NaN select"}


def _pick(values: dict) -> dict:
    return {p: values[p] for _, _, _, outs in STAGES for p in outs}


def _pick_named(values: dict) -> dict:
    """The stages' outputs among ``values``, in ``values``' own order (the report leaves out the golden trace's
    table inputs, which no stage port carries)."""
    compared = {p for _, _, _, outs in STAGES for p in outs}
    return {p: v for p, v in values.items() if p in compared}
