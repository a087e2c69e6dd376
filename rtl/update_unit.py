"""The pipelined B-bit Madam update unit: per lane one chain of the five stages of docs/datapath.md."""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from lnsim.spec import Spec

from ._util import check_lanes, check_table, register
from .stages import Ema, LogRatio, RungStep, SaturatingAdd, Unpack, Widths

__all__ = ["UpdateUnit", "update_layouts"]

#: Pipeline registers: one after each of the five stages.
LATENCY = 5


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

    Fully pipelined: one register after each of the five stages, so an accepted input leaves
    :attr:`latency` = 5 cycles later; one update per lane per cycle. Back-pressure stalls the whole pipeline
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
        advance = Signal()
        m.d.comb += [advance.eq(~self.o.valid | self.o.ready), self.i.ready.eq(advance)]

        # Move the valid bits down the pipeline.
        valid = [Signal(name=f"s{n}_valid") for n in range(1, LATENCY + 1)]
        with m.If(advance):
            m.d.sync += valid[0].eq(self.i.valid)
            m.d.sync += [valid[n].eq(valid[n - 1]) for n in range(1, LATENCY)]
        m.d.comb += self.o.valid.eq(valid[-1])

        # Carry the step's scalars with their elements as far as stage 4.
        scalars = dict(log_eta=self.log_eta, log_bc=self.log_bc)
        for n in range(1, 4):
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

        # Stage 2: update the second moment; a NaN keeps the old state word.
        m.submodules[f"lane{j}_ema"] = ema = Ema(spec)
        m.d.comb += [ema.st.eq(r1["st"]), ema.S16.eq(r1["S16"]), ema.en.eq(r1["en"]), ema.zero.eq(r1["zero"])]
        keep = {name: r1[name] for name in ("sw", "k", "sg", "nan", "inf", "zero")}
        r2 = register(m, advance, f"lane{j}_s2", **keep, en=r1["en"], S16=r1["S16"], Em=ema.Em, Sm=ema.Sm,
                      st=Mux(r1["nan"], r1["st"], ema.st_new))

        # Stage 3: the log of g**2 / v.
        m.submodules[f"lane{j}_log_ratio"] = log_ratio = LogRatio(spec, log_table=self._log_table)
        m.d.comb += [log_ratio.S16.eq(r2["S16"]), log_ratio.en.eq(r2["en"]), log_ratio.Em.eq(r2["Em"]),
                     log_ratio.Sm.eq(r2["Sm"]), log_ratio.zero.eq(r2["zero"])]
        keep = {name: r2[name] for name in ("sw", "k", "sg", "nan", "inf", "zero", "st")}
        r3 = register(m, advance, f"lane{j}_s3", **keep, X=log_ratio.X)

        # Stage 4: the rung step.
        m.submodules[f"lane{j}_rung_step"] = rung_step = RungStep(spec, antilog_table=self._antilog_table)
        m.d.comb += [rung_step.X.eq(r3["X"]), rung_step.log_eta.eq(scalars["log_eta"]),
                     rung_step.log_bc.eq(scalars["log_bc"]), rung_step.zero.eq(r3["zero"])]
        keep = {name: r3[name] for name in ("sw", "k", "sg", "nan", "inf", "st")}
        r4 = register(m, advance, f"lane{j}_s4", **keep, n=rung_step.n)

        # Stage 5: the saturating add; a NaN keeps the old code.
        m.submodules[f"lane{j}_saturating_add"] = sat_add = SaturatingAdd(spec)
        m.d.comb += [sat_add.sw.eq(r4["sw"]), sat_add.sg.eq(r4["sg"]), sat_add.k.eq(r4["k"]), sat_add.n.eq(r4["n"])]
        r5 = register(m, advance, f"lane{j}_s5", k=Mux(r4["nan"], r4["k"], sat_add.k_new), st=r4["st"],
                      nan=r4["nan"], inf=r4["inf"])

        # Drive the output lane.
        m.d.comb += [y.k.eq(r5["k"]), y.st.eq(r5["st"]), y.nan.eq(r5["nan"]), y.inf.eq(r5["inf"])]
