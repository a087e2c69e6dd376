"""The update engine: the update unit next to its weights in memory, gradients in and decoded weights out on
AXI4-Stream (docs/rtl.md, "The update engine")."""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, memory, wiring
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.wiring import In, Out

from lnsim.spec import Spec, check_depth
from lnsim.validation import check_int

from .decode_unit import SIGMA_ES_BITS, DecodeUnit
from .update_unit import UpdateUnit
from .widths import Widths

__all__ = ["UpdateEngine", "engine_word_layout"]


def engine_word_layout(spec: Spec) -> data.StructLayout:
    """One element's memory word, from the LSB: ``sw`` (1, frozen sign), ``k`` (B, code), ``st``
    (state_bits, second-moment state word)."""
    w = Widths(spec)
    return data.StructLayout({"sw": 1, "k": w.B, "st": w.state_bits})


class UpdateEngine(wiring.Component):
    """``depth`` addresses of ``lanes`` weights each in a memory, stepped by an :class:`~lnsim_rtl.UpdateUnit`.

    A step is one pass over the addresses ``0 .. length-1`` (``length`` sampled at the step's first input
    beat): each accepted gradient beat reads the word at the next address and enters the unit; when the
    unit's result leaves the pipeline it is written back at its address and enters the
    :class:`~lnsim_rtl.DecodeUnit`, whose bfloat16 weights leave on ``m_axis`` in address order.

    Read-after-write rule: a step's first input beat is not accepted until the previous step's last result
    has been written back (``s_axis_tready`` is low in between), so every read sees the previous step's
    word whatever the length, latency and back-pressure.

    Flow control by credits: the unit and the decoder (with its product registers) never stall; the weights
    wait in a FIFO of ``latency + decoder latency + 4`` entries for ``m_axis``, and ``s_axis_tready`` is low
    while that many accepted beats have not left on ``m_axis``. So back-pressure on ``m_axis`` stops
    ``s_axis`` once the FIFO's room is used, and no combinational path runs from ``m_axis_tready`` to the
    pipelines or the memory (Fmax).

    Parameters
    ----------
    spec : Spec
    depth : int
        Addresses in the memory, 1..2**20 (:func:`lnsim.spec.check_depth`).
    lanes : int
        Weights per address and per beat.
    init : sequence of int, optional
        The memory's initial words, one per address: lane ``j`` at bits ``[j*E, (j+1)*E)``, ``E = 1 + B +
        state_bits``, each of :func:`engine_word_layout`. Default: all zero.

    Ports
    -----
    s_axis_tdata : In(lanes * W)
        Gradient bits, lane ``j`` at bits ``[j*W, (j+1)*W)``; beat ``a`` of a step is address ``a``.
    s_axis_tvalid, s_axis_tlast : In(1)
        ``tlast`` is not used: a step ends after ``length`` beats.
    s_axis_tready : Out(1)
    m_axis_tdata : Out(lanes * 16)
        bfloat16 weights after the update, lane ``j`` at bits ``[j*16, (j+1)*16)``.
    m_axis_tvalid, m_axis_tlast : Out(1)
        ``tlast`` marks a step's last address.
    m_axis_tready : In(1)
    length : In(bits of depth)
        Addresses per step; 0 or more than ``depth`` means ``depth``. Sampled at the step's first beat.
    log_eta, log_bc : In
        The step's scalars (as :class:`~lnsim_rtl.UpdateUnit`), sampled at the step's first input beat.
    sigma_es, sigma_mus : In
        The tensor's ``sigma_star`` (as :class:`~lnsim_rtl.DecodeUnit`), sampled as each weight is decoded.
    rd_addr : In(bits of depth), rd_data : Out(lanes * E)
        Read-back port, synchronous (a block RAM's): ``rd_data`` is the word at the previous cycle's
        ``rd_addr`` if in that cycle the engine was waiting for a step's first beat (the previous step written
        back) and ``s_axis_tvalid`` was low; otherwise the port was reading for the unit.

    The memory is an Amaranth ``Memory`` with one write port and one synchronous read port, a simple
    dual-port block RAM on every FPGA (ECP5 ``DP16KD``, iCE40 ``SB_RAM40_4K``, Gowin ``SDPB``/``DPB``, GateMate
    ``CC_BRAM_*``). The read port reads one cycle ahead of the issue; the frozen signs travel beside the
    unit's pipeline to the write-back. ``s_axis_tready`` is also low for one cycle after the port has served
    the host or re-reads a word written back in the cycle it was read (a one-address step's): the first beat
    of a step offered while the engine waits, or after a one-address step, is accepted a cycle later.
    """

    def __init__(self, spec: Spec, depth: int, *, lanes: int = 1, init=None):
        self._w = w = Widths(spec)
        self._depth = check_depth(depth)
        self._lanes = check_int("lanes", lanes, 1)
        self.word = engine_word_layout(spec)
        self.row = data.ArrayLayout(self.word, lanes)
        if init is None:
            init = [0] * depth
        init = list(init)
        if len(init) != depth:
            raise ValueError(f"init must have depth = {depth} words, not {len(init)}")
        self._init = [check_int(f"init[{i}]", v, 0, 2**self.row.size - 1) for i, v in enumerate(init)]
        abits = max(depth.bit_length(), 1)
        super().__init__({
            "s_axis_tdata": In(lanes * w.W), "s_axis_tvalid": In(1), "s_axis_tready": Out(1),
            "s_axis_tlast": In(1),
            "m_axis_tdata": Out(lanes * 16), "m_axis_tvalid": Out(1), "m_axis_tready": In(1),
            "m_axis_tlast": Out(1),
            "length": In(abits),
            "log_eta": In(w.log_eta), "log_bc": In(w.log_bc),
            "sigma_es": In(signed(SIGMA_ES_BITS)), "sigma_mus": In(16),
            "rd_addr": In(abits), "rd_data": Out(self.row.size),
        })

    @property
    def depth(self) -> int:
        """Addresses in the memory."""
        return self._depth

    @property
    def lanes(self) -> int:
        """Weights per address."""
        return self._lanes

    def elaborate(self, platform):
        m = Module()
        w, lanes, depth = self._w, self._lanes, self._depth
        abits = len(self.rd_addr)
        m.submodules.unit = unit = UpdateUnit(w.spec, lanes=lanes)
        # Every product of the decoder registered: its scaling would otherwise bound the engine's Fmax.
        m.submodules.decoder = dec = DecodeUnit(w.spec.fmt, lanes=lanes, product_registers=True)
        # At least two rows: a one-row memory has a zero-width address, which Verilog cannot declare.
        rows = max(depth, 2)
        m.submodules.mem = mem = memory.Memory(shape=unsigned(self.row.size), depth=rows,
                                               init=self._init + [0] * (rows - depth))
        # One write port and one synchronous read port (a simple dual-port block RAM): the read port serves
        # the issue and, while the engine waits for a step's first beat, the host's read-back.
        wr = mem.write_port()
        rd = mem.read_port(domain="sync")

        # Issue: one pass over the addresses per step, only once the previous step is written back and the
        # read port holds the word of the beat.
        issuing = Signal(init=1)
        first = Signal(init=1)  # rd_addr is 0: the next beat is a step's first
        primed = Signal()  # rd.data is the word now at rd_addr
        rd_addr = Signal(abits)
        wr_addr = Signal(abits)
        at_start = issuing & first
        # No `> depth` that cannot be true: the Verilog lints clean.
        too_long = (self.length > depth) if depth < 2**abits - 1 else 0
        length = Mux(~self.length.any() | too_long, depth, self.length)
        len_one = (self.length == 1) if depth > 1 else Const(1)  # length means 1
        # The step's last address and scalars, and whether it has one address, registered at its first beat
        # (so that no later cycle computes them from the ports).
        last_addr, single = Signal(abits), Signal()
        step_eta, step_bc = Signal(w.log_eta), Signal(w.log_bc)
        # Flow control by credits: the unit and the decoder never stall; their results wait in a FIFO of
        # `room` entries before m_axis, and a beat is accepted only while fewer than `room` accepted beats have
        # not left on m_axis, so the FIFO never overflows. No ready path runs from m_axis back through the
        # pipelines to the memory's address.
        room = unit.latency + dec.latency + 4
        m.submodules.out_fifo = fifo = SyncFIFOBuffered(width=lanes * 16 + 1, depth=room)
        owed = Signal(range(room + 1))  # beats accepted and not yet sent on m_axis
        ready = issuing & primed & (owed < room) & unit.i.ready
        accept = ready & self.s_axis_tvalid
        sent = fifo.r_rdy & self.m_axis_tready
        m.d.sync += owed.eq(owed + accept - sent)
        m.d.comb += [
            self.s_axis_tready.eq(ready),
            unit.i.valid.eq(issuing & primed & (owed < room) & self.s_axis_tvalid),
            unit.log_eta.eq(Mux(at_start, self.log_eta, step_eta)),
            unit.log_bc.eq(Mux(at_start, self.log_bc, step_bc)),
        ]
        with m.If(accept & at_start):
            m.d.sync += [last_addr.eq(length - 1), single.eq(len_one), step_eta.eq(self.log_eta),
                         step_bc.eq(self.log_bc)]
        # Read one cycle ahead: the port is given the address of the next cycle's beat, so its word is ready
        # when the beat arrives. The word read is the one before this cycle's write, hence not primed after a
        # write at that address: the last write-back of a one-address step, whose word the next step reads
        # first (every other write-back is of an address the step has issued already, or comes before the next
        # step's reads). While the engine waits for a step's first beat and none is offered, the port reads
        # rd_addr for the host instead.
        # After a step's first beat the port reads address 1 whatever the length, so that its address does not
        # wait for `length`; after a one-address step it is then not primed (and re-reads address 0).
        next_addr = Signal(abits)
        host = at_start & ~self.s_axis_tvalid
        wraps = rd_addr == last_addr
        with m.If(accept):
            with m.If(Mux(at_start, len_one, wraps)):
                m.d.comb += next_addr.eq(0)
                m.d.sync += [issuing.eq(0), first.eq(1)]
            with m.Else():
                m.d.comb += next_addr.eq(rd_addr + 1)
                m.d.sync += first.eq(0)
        with m.Else():
            m.d.comb += next_addr.eq(rd_addr)
        read_next = Mux(accept, Mux(~at_start & wraps, 0, rd_addr + 1), rd_addr)
        done = unit.o.valid
        last = wr_addr == last_addr
        m.d.comb += rd.addr.eq(Mux(host, self.rd_addr, read_next))
        m.d.sync += [rd_addr.eq(next_addr),
                     primed.eq(~host & ~(done & last & single) & ~(accept & at_start & len_one))]
        words = self.row(rd.data)
        for j in range(lanes):
            x = unit.i.payload[j]
            m.d.comb += [x.sw.eq(words[j].sw), x.k.eq(words[j].k), x.st.eq(words[j].st),
                         x.g.eq(self.s_axis_tdata[j * w.W:(j + 1) * w.W])]

        # The frozen signs go alongside the unit's pipeline, advancing with it, to the write-back.
        signs = [Signal(lanes, name=f"sign_s{n}", reset_less=True) for n in range(1, unit.latency + 1)]
        with m.If(unit.i.ready):
            m.d.sync += signs[0].eq(Cat(words[j].sw for j in range(lanes)))
            m.d.sync += [signs[n].eq(signs[n - 1]) for n in range(1, unit.latency)]

        # Write-back and decode as the unit's results leave it.
        new = self.row(wr.data)
        m.d.comb += [wr.addr.eq(wr_addr), wr.en.eq(done),
                     unit.o.ready.eq(1), dec.i.valid.eq(unit.o.valid), dec.o.ready.eq(1),
                     dec.sigma_es.eq(self.sigma_es), dec.sigma_mus.eq(self.sigma_mus)]
        for j in range(lanes):
            y, sw = unit.o.payload[j], signs[-1][j]
            m.d.comb += [new[j].sw.eq(sw), new[j].k.eq(y.k), new[j].st.eq(y.st),
                         dec.i.payload[j].sw.eq(sw), dec.i.payload[j].k.eq(y.k)]
        with m.If(done):
            with m.If(last):
                m.d.sync += [wr_addr.eq(0), issuing.eq(1)]
            with m.Else():
                m.d.sync += wr_addr.eq(wr_addr + 1)

        # tlast follows the decoder's pipeline, which advances every cycle; the weights and tlast wait in the
        # FIFO for m_axis.
        tlast = [Signal(name=f"tlast_s{n}") for n in range(1, dec.latency + 1)]
        m.d.sync += [tlast[0].eq(last), *(tlast[n].eq(tlast[n - 1]) for n in range(1, dec.latency))]
        bits = Cat(*(dec.o.payload[j].bits for j in range(lanes)), tlast[-1])
        m.d.comb += [fifo.w_data.eq(bits), fifo.w_en.eq(dec.o.valid), fifo.r_en.eq(self.m_axis_tready),
                     self.m_axis_tvalid.eq(fifo.r_rdy), self.m_axis_tdata.eq(fifo.r_data[:lanes * 16]),
                     self.m_axis_tlast.eq(fifo.r_data[-1]), self.rd_data.eq(rd.data)]
        return m
