"""The pipelined B-bit Madam update unit: per lane one chain of the five stages of docs/datapath.md
(stages 1-4 each split into parts with registers between them)."""

from __future__ import annotations

from amaranth.hdl import Module, Mux
from amaranth.lib import data
from amaranth.lib.wiring import In

from lnsim.spec import Spec

from ._util import LaneStreamComponent, Step, check_table, pipeline, stream_pipeline
from .ema import ema_parts
from .log_ratio import log_ratio_parts
from .rung_step import rung_step_parts
from .saturating_add import SaturatingAdd
from .unpack import unpack_parts
from .widths import Widths

__all__ = ["UpdateUnit", "update_layouts"]

#: Pipeline registers, one after each stage of :func:`lane_stages`: stage 1 in two parts (classify,
#: normalise), stage 2 in six (square, round, align, halve, sum, renormalise), stage 3 in five (exponent
#: difference and table reads, I and bank selects, multiplies, interpolation sums, X), stage 4 in seven (Y,
#: table reads, bank select, multiply, interpolation sum, shift, round), stage 5. :func:`lane_stages` raises
#: if its list has another length.
LATENCY = 21


def update_layouts(spec: Spec) -> tuple[data.StructLayout, data.StructLayout]:
    """One lane's input and output payload layouts (field order of docs/rtl.md, from the LSB).

    Input: ``sw`` (1), ``k`` (B), ``g`` (W), ``st`` (state_bits). Output: ``k`` (B), ``st`` (state_bits),
    ``nan`` (1), ``inf`` (1).
    """
    w = Widths(spec)
    return w.lane_in, w.lane_out


class UpdateUnit(LaneStreamComponent):
    """The B-bit Madam update unit (docs/datapath.md), ``lanes`` elements per clock.

    Fully pipelined: a register after each part of the five stages (see :data:`LATENCY`), so an accepted
    input leaves :attr:`latency` cycles later; one update per lane per cycle. Back-pressure stalls the whole
    pipeline (``i.ready = ~o.valid | o.ready``; every register, valid bits and data, advances only then), so
    no element is lost or duplicated. Reset clears the valid bits only.

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

    Attributes
    ----------
    stage_registers : list
        Set by :meth:`elaborate`: per lane, per stage of :func:`lane_stages`, the pipeline registers after it
        (``{name: Signal}``), for formal checks of what each stage holds.
    valid_bits : list
        Set by :meth:`elaborate`: the valid bit after each stage, ``o.valid`` last.
    """

    def __init__(self, spec: Spec, *, lanes: int = 1, log_table=None, antilog_table=None):
        self._w = w = Widths(spec)
        entries = 2**w.a + 1
        self._log_table = None if log_table is None else check_table("log_table", log_table, entries, w.log_entry)
        self._antilog_table = (None if antilog_table is None
                               else check_table("antilog_table", antilog_table, entries, w.antilog_entry))
        super().__init__(w.lane_in, w.lane_out, lanes, LATENCY, {"log_eta": In(w.log_eta), "log_bc": In(w.log_bc)})

    @property
    def spec(self) -> Spec:
        """The spec the unit is built from."""
        return self._w.spec

    @property
    def widths(self) -> Widths:
        """Every constant and width of the datapath (:class:`~lnsim_rtl.stages.Widths`)."""
        return self._w

    def elaborate(self, platform):
        m = Module()

        # Advance the whole pipeline unless a valid output is held back.
        self.valid_bits = []
        advance = stream_pipeline(m, self.i, self.o, LATENCY, valid_bits=self.valid_bits)

        # One chain of stages per lane (the step's scalars go with every lane's elements; Yosys merges the
        # lanes' identical copies of them).
        self.stage_registers = [[] for _ in range(self._lanes)]
        for j in range(self._lanes):
            x, y = self.i.payload[j], self.o.payload[j]
            ins = {"sw": x.sw, "k": x.k, "gbits": x.g, "st": x.st, "log_eta": self.log_eta, "log_bc": self.log_bc}
            stages = lane_stages(self.spec, log_table=self._log_table, antilog_table=self._antilog_table)
            out = pipeline(m, stages, ins, ("k", "st", "nan", "inf"), advance=advance, prefix=f"lane{j}_",
                           taps=self.stage_registers[j])
            m.d.comb += [y.k.eq(out["k"]), y.st.eq(out["st"]), y.nan.eq(out["nan"]), y.inf.eq(out["inf"])]
        return m


def lane_stages(spec: Spec, *, log_table=None, antilog_table=None) -> list:
    """One lane's :data:`LATENCY` pipeline stages (:func:`~lnsim_rtl._util.pipeline`): the parts of the five
    reference stages, each followed by a register in :class:`UpdateUnit`, and the two NaN selects (a NaN
    keeps ``st`` and ``k``).

    Raises
    ------
    RuntimeError
        If the list does not have :data:`LATENCY` stages (the constant and the parts disagree).
    """
    keep_st = Step(("nan", "st", "st_new"), ("st",), lambda nan, st, st_new: {"st": Mux(nan, st, st_new)})
    keep_k = Step(("nan", "k", "k_new"), ("k",), lambda nan, k, k_new: {"k": Mux(nan, k, k_new)})
    ema = ema_parts(spec)
    ema[-1]["keep_st"] = keep_st
    log = log_ratio_parts(spec, log_table=log_table)
    ema[0].update(log[0])  # eg: needs only en
    ema[-1].update(log[1])  # fv: right after Sm, so the log tables are read straight from a register
    rung = rung_step_parts(spec, antilog_table=antilog_table)
    unpack = unpack_parts(spec)
    unpack[0].update(rung[0])  # the step's scalars, log_r
    stages = [
        *unpack,
        *ema,
        *log[2:],
        *rung[1:],
        {"saturating_add": SaturatingAdd(spec), "keep_k": keep_k},
    ]
    # The latency is a constant the benches and headers read before anything is built: hold it to the list.
    if len(stages) != LATENCY:
        raise RuntimeError(f"lane_stages builds {len(stages)} pipeline stages, but update_unit.LATENCY is "
                           f"{LATENCY}: change one to match the other")
    return stages
