"""The pipelined B-bit Madam update unit: per lane one chain of the five stages of docs/datapath.md
(stages 2-4 each split into parts with registers between them)."""

from __future__ import annotations

from amaranth.hdl import Module, Mux
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from lnsim.spec import Spec

from ._util import check_lanes, check_table, register, stream_pipeline
from .stages import (EmaAdd, EmaAlign, EmaSquare, LogRatioLookup, RungStepLookup, RungStepRound, SaturatingAdd,
                     Unpack, Widths, outputs_for)

__all__ = ["UpdateUnit", "update_layouts"]

#: Pipeline registers: one after each of the five stages, and five more inside stages 2-4: stage 2 in
#: three steps (2a square, 2b align, 2c add), stage 3 in two (3a table reads, 3b multiplies and sum),
#: stage 4 in three (4a scalars and table reads, 4b interpolation multiply, 4c shift, round, clamp).
LATENCY = 10


def update_layouts(spec: Spec) -> tuple[data.StructLayout, data.StructLayout]:
    """One lane's input and output payload layouts (field order of docs/rtl.md, from the LSB).

    Input: ``sw`` (1), ``k`` (B), ``g`` (W), ``st`` (state_bits). Output: ``k`` (B), ``st`` (state_bits),
    ``nan`` (1), ``inf`` (1).
    """
    w = Widths(spec)
    lane_in = data.StructLayout({"sw": 1, "k": w.B, "g": w.W, "st": w.state_bits})
    lane_out = data.StructLayout({"k": w.B, "st": w.state_bits, "nan": 1, "inf": 1})
    return lane_in, lane_out


class UpdateUnit(wiring.Component):
    """The B-bit Madam update unit (docs/datapath.md), ``lanes`` elements per clock.

    Fully pipelined: one register after each of the five stages and five inside stages 2-4 (see
    :data:`LATENCY`), so an accepted input leaves :attr:`latency` = 10 cycles later; one update per lane per
    cycle. Back-pressure stalls the whole pipeline
    (``i.ready = ~o.valid | o.ready``; every register, valid bits and data, advances only then), so no
    element is lost or duplicated. Reset clears the valid bits only.

    Parameters
    ----------
    spec : Spec
        Format and optimiser; every width and table comes from it.
    lanes : int
        Elements per beat, each with its own chain of stages.
    log_table, antilog_table : sequence of int, optional
        Override the ROM contents (fault-injection tests only).

    Ports
    -----
    clk, rst : In(1)
        Clock and synchronous reset (active high), the ``sync`` domain.
    i : In(stream.Signature(ArrayLayout(lane_in, lanes)))
        ``i.valid``, ``i.ready``, ``i.payload``: lane ``j`` at bits ``[j*L, (j+1)*L)``, ``L = 1 + B + W +
        state_bits``; in a lane from the LSB ``sw`` (weight sign), ``k`` (code), ``g`` (gradient bits),
        ``st`` (state word, 0 for a fresh element).
    o : Out(stream.Signature(ArrayLayout(lane_out, lanes)))
        ``o.valid``, ``o.ready``, ``o.payload``: per lane from the LSB ``k`` (new code), ``st`` (new state
        word), ``nan`` (NaN gradient: ``k`` and ``st`` are the inputs unchanged), ``inf`` (+-Inf gradient).
    log_eta : In(F + 6)
        ``round(2**F * 2 * log2(eta_rungs))`` of the step; sampled with each accepted input.
    log_bc : In(F + 5)
        ``round(2**F * -log2(1 - beta**t))`` of the step (0 without bias correction); sampled likewise.
    """

    def __init__(self, spec: Spec, *, lanes: int = 1, log_table=None, antilog_table=None):
        self._w = w = Widths(spec)
        self._lanes = check_lanes(lanes)
        entries = 2**w.a + 1
        self._log_table = None if log_table is None else check_table("log_table", log_table, entries, w.log_entry)
        self._antilog_table = (None if antilog_table is None
                               else check_table("antilog_table", antilog_table, entries, w.antilog_entry))
        self.lane_in, self.lane_out = update_layouts(spec)
        super().__init__({
            "i": In(stream.Signature(data.ArrayLayout(self.lane_in, self._lanes))),
            "o": Out(stream.Signature(data.ArrayLayout(self.lane_out, self._lanes))),
            "log_eta": In(w.log_eta),
            "log_bc": In(w.log_bc),
        })

    @property
    def spec(self) -> Spec:
        return self._w.spec

    @property
    def widths(self) -> Widths:
        """Every constant and width of the datapath (:class:`~lnsim_rtl.stages.Widths`)."""
        return self._w

    @property
    def lanes(self) -> int:
        """Elements per beat."""
        return self._lanes

    @property
    def latency(self) -> int:
        """Cycles from an accepted input to its output (with ``o.ready`` held high)."""
        return LATENCY

    def elaborate(self, platform):
        m = Module()

        # Advance the whole pipeline unless a valid output is held back.
        advance = stream_pipeline(m, self.i, self.o, LATENCY)

        # Carry the step's scalars with their elements as far as stage 4 (through R1, R2a, R2b, R2, R3a, R3).
        scalars = dict(log_eta=self.log_eta, log_bc=self.log_bc)
        for n in ("1", "2a", "2b", "2", "3a", "3"):
            scalars = register(m, advance, f"s{n}", **scalars)

        # Build one chain of stages per lane.
        for j in range(self._lanes):
            self._lane(m, j, advance, self.i.payload[j], self.o.payload[j], scalars)
        return m

    def _lane(self, m, j, advance, x, y, scalars):
        spec = self.spec

        # Stage 1: unpack the gradient.
        m.submodules[f"lane{j}_unpack"] = unpack = Unpack(spec)
        m.d.comb += unpack.gbits.eq(x.g)
        r1 = register(m, advance, f"lane{j}_s1", sw=x.sw, k=x.k, st=x.st, sg=unpack.sg, nan=unpack.nan,
                      inf=unpack.inf, zero=unpack.zero, en=unpack.en, S16=unpack.S16)

        # Stage 2: update the second moment (2a square, 2b align, 2c add); a NaN keeps the old state word.
        m.submodules[f"lane{j}_ema_square"] = square = EmaSquare(spec)
        m.submodules[f"lane{j}_ema_align"] = align = EmaAlign(spec)
        m.submodules[f"lane{j}_ema_add"] = add = EmaAdd(spec)
        m.d.comb += [square.st.eq(r1["st"]), square.S16.eq(r1["S16"]), square.en.eq(r1["en"]),
                     square.zero.eq(r1["zero"])]
        names = ("sw", "k", "sg", "nan", "inf", "zero", "en", "S16", "st")
        r2a = register(m, advance, f"lane{j}_s2a", **{n: r1[n] for n in names}, **outputs_for(square, align),
                       Em0=square.Em0)
        m.d.comb += [getattr(align, n).eq(r2a[n]) for n in outputs_for(square, align)]
        r2b = register(m, advance, f"lane{j}_s2b", **{n: r2a[n] for n in names}, **outputs_for(align, add),
                       Em0=r2a["Em0"])
        m.d.comb += [getattr(add, n).eq(r2b[n]) for n in outputs_for(align, add)]
        m.d.comb += add.Em0.eq(r2b["Em0"])
        keep = {name: r2b[name] for name in ("sw", "k", "sg", "nan", "inf", "zero", "en", "S16")}
        r2 = register(m, advance, f"lane{j}_s2", **keep, Em=add.Em, Sm=add.Sm,
                      st=Mux(r2b["nan"], r2b["st"], add.st_new))

        # Stage 3: the log of g**2 / v (3a table reads, 3b multiplies and sum).
        m.submodules[f"lane{j}_log_ratio_lookup"] = lr_lookup = LogRatioLookup(spec, log_table=self._log_table)
        m.d.comb += [lr_lookup.S16.eq(r2["S16"]), lr_lookup.en.eq(r2["en"]), lr_lookup.Em.eq(r2["Em"]),
                     lr_lookup.Sm.eq(r2["Sm"]), lr_lookup.zero.eq(r2["zero"])]
        keep = {name: r2[name] for name in ("sw", "k", "sg", "nan", "inf", "zero", "st")}
        m.submodules[f"lane{j}_log_ratio_sum"] = lr_sum = lr_lookup.sum()
        r3a = register(m, advance, f"lane{j}_s3a", **keep, **outputs_for(lr_lookup, lr_sum))
        m.d.comb += [getattr(lr_sum, name).eq(r3a[name]) for name in outputs_for(lr_lookup, lr_sum)]
        keep = {name: r3a[name] for name in ("sw", "k", "sg", "nan", "inf", "zero", "st")}
        r3 = register(m, advance, f"lane{j}_s3", **keep, X=lr_sum.X)

        # Stage 4: the rung step (4a scalars and table reads, 4b interpolation multiply, 4c shift, round, clamp).
        m.submodules[f"lane{j}_rung_step_lookup"] = lookup = RungStepLookup(spec, antilog_table=self._antilog_table)
        m.d.comb += [lookup.X.eq(r3["X"]), lookup.log_eta.eq(scalars["log_eta"]),
                     lookup.log_bc.eq(scalars["log_bc"])]
        keep = {name: r3[name] for name in ("sw", "k", "sg", "nan", "inf", "zero", "st")}
        r4a = register(m, advance, f"lane{j}_s4a", **keep, t0=lookup.t0, d=lookup.d, l=lookup.l,
                       shift=lookup.shift)

        m.submodules[f"lane{j}_rung_step_interp"] = interp = lookup.interp()
        m.d.comb += [interp.t0.eq(r4a["t0"]), interp.d.eq(r4a["d"]), interp.l.eq(r4a["l"])]
        keep = {name: r4a[name] for name in ("sw", "k", "sg", "nan", "inf", "zero", "st")}
        r4b = register(m, advance, f"lane{j}_s4b", **keep, A=interp.y, shift=r4a["shift"])

        m.submodules[f"lane{j}_rung_step_round"] = rnd = RungStepRound(spec, a_bits=len(interp.y))
        m.d.comb += [rnd.A.eq(r4b["A"]), rnd.shift.eq(r4b["shift"]), rnd.zero.eq(r4b["zero"])]
        keep = {name: r4b[name] for name in ("sw", "k", "sg", "nan", "inf", "st")}
        r4 = register(m, advance, f"lane{j}_s4", **keep, n=rnd.n)

        # Stage 5: the saturating add; a NaN keeps the old code.
        m.submodules[f"lane{j}_saturating_add"] = sat_add = SaturatingAdd(spec)
        m.d.comb += [sat_add.sw.eq(r4["sw"]), sat_add.sg.eq(r4["sg"]), sat_add.k.eq(r4["k"]), sat_add.n.eq(r4["n"])]
        r5 = register(m, advance, f"lane{j}_s5", k=Mux(r4["nan"], r4["k"], sat_add.k_new), st=r4["st"],
                      nan=r4["nan"], inf=r4["inf"])

        # Drive the output lane.
        m.d.comb += [y.k.eq(r5["k"]), y.st.eq(r5["st"]), y.nan.eq(r5["nan"]), y.inf.eq(r5["inf"])]
