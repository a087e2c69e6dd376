"""Helpers shared by the RTL tests (tests/test_rtl_*.py, tests/test_baseline_unit.py), not tests themselves.

``SPECS`` (specs covering every axis of the datapath), ``vectors`` (update inputs: every gradient class,
evolved states, random words), ``run_stream`` (a unit's streams under random valid/ready stalls in Amaranth's
simulator) and the payload packing of a lane by its layout (``pack_lane``, ``unpack_lane``, the layouts the
units take from :class:`lnsim_rtl.stages.Widths`).
"""

from __future__ import annotations

import numpy as np
from amaranth.hdl import Shape, Value
from amaranth.sim import Simulator

from lnsim import LNSFormat, MadamConfig, Spec, tables
from lnsim.golden import update_trace

__all__ = ["SPECS", "vectors", "evolved", "run_stream", "pack_lane", "unpack_lane"]


B12 = LNSFormat(bits=12, eta0=0.001)
POW2 = LNSFormat(bits=12, base="pow2", frac_bits=10)

#: Specs covering every axis of the datapath: code width, gradient format, base, s, F/a, bias correction.
SPECS = {
    "default": Spec(B12, MadamConfig()),
    "bits4": Spec(LNSFormat(bits=4, eta0=0.25), MadamConfig(eta=0.25, eta_star=1.5)),
    "bits16-float16-s1": Spec(LNSFormat(bits=16, eta0=0.001), MadamConfig(eta=0.005, eta_star=0.04, grad_format="float16", beta_shift=1)),
    "float16-s16": Spec(B12, MadamConfig(grad_format="float16", beta_shift=16)),
    "float32-s14": Spec(B12, MadamConfig(grad_format="float32", beta_shift=14)),
    "float32-s1-state28": Spec(B12, MadamConfig(grad_format="float32", beta_shift=1, state_bits=28)),
    "pow2": Spec(POW2, MadamConfig.from_rungs(POW2, 15, 120)),
    "F8-a3": Spec(B12, MadamConfig(eta=0.005, eta_star=0.04, log_frac_bits=8, table_index_bits=3)),
    "F20-a12-nobc": Spec(B12, MadamConfig(log_frac_bits=20, table_index_bits=12, bias_correction=False)),
    "F8-a9-s1": Spec(B12, MadamConfig(eta_star=0.06, log_frac_bits=8, table_index_bits=9, beta_shift=1)),
}


def _grad_corners(spec):
    """Gradient bit patterns of every class: +-0, subnormals, normals at the edges, +-Inf, NaNs."""
    g = spec.cfg.grad_format
    W, MB, EMAXF, bias = g.width, g.man_bits, g.exp_field_max, g.bias
    mags = [
        0, 1, 2, 3, (1 << MB) - 1, 1 << (MB - 1),              # zero and subnormals
        1 << MB, (1 << MB) | 1, (2 << MB) - 1,                  # smallest normals
        bias << MB, (bias << MB) | 1, ((bias + 1) << MB) - 1,   # around 1.0
        ((EMAXF - 1) << MB), ((EMAXF - 1) << MB) | ((1 << MB) - 1),  # largest finite
        EMAXF << MB,                                            # Inf
        (EMAXF << MB) | 1, (EMAXF << MB) | (1 << (MB - 1)), (EMAXF << MB) | ((1 << MB) - 1),  # NaNs
    ]
    return [s << (W - 1) | m for m in mags for s in (0, 1)]


def _random_grads(spec, rng, n):
    """Random bit patterns: half uniform over all words, half with magnitudes near 1, some +-0."""
    g = spec.cfg.grad_format
    W, MB = g.width, g.man_bits
    uniform = rng.integers(0, 1 << W, n // 2, dtype=np.int64)
    e = rng.integers(g.bias - 40, g.bias + 10, n - n // 2).clip(0, g.exp_field_max - 1)
    near = (rng.integers(0, 2, len(e)) << (W - 1)) | (e << MB) | rng.integers(0, 1 << MB, len(e))
    out = np.concatenate([uniform, near])
    out[rng.random(n) < 0.05] = 0
    return [int(x) for x in out]


def _scaled_grads(spec, rng, scale):
    """Gradients with exponent fields near ``scale`` (one per element), random signs and mantissas."""
    g = spec.cfg.grad_format
    n = len(scale)
    e = (scale + rng.integers(-3, 4, n)).clip(1, g.exp_field_max - 1)
    return (rng.integers(0, 2, n) << (g.width - 1)) | (e << g.man_bits) | rng.integers(0, 1 << g.man_bits, n)


def evolved(spec, rng, n, steps=12):
    """State words after a few golden steps from fresh, and the next gradient of each element.

    Each element has its own gradient scale, so the next gradient is commensurate with its state (mid-range
    rung steps); one gradient in ten is zero.
    """
    g = spec.cfg.grad_format
    st = [0] * n
    scale = rng.integers(g.bias - 30, g.bias + 5, n)
    log_eta = tables.log_eta_term(spec)
    for t in range(1, steps + 1):
        gb = _scaled_grads(spec, rng, scale)
        gb[rng.random(n) < 0.1] = 0
        log_bc = tables.bias_correction_term(spec, t)
        # update_trace: compiled once for every spec (update_inplace compiles a loop per spec).
        st = [update_trace(spec, 0, 0, int(x), s, log_eta=log_eta, log_bc=log_bc)["st_new"] for x, s in zip(gb, st)]
    nxt = _scaled_grads(spec, rng, scale)
    nxt[rng.random(n) < 0.1] = 0
    return [int(x) for x in st], [int(x) for x in nxt]


def _states(spec, rng, n):
    """Fresh, random valid (normalised or E = 0), extreme and arbitrary (invalid) state words."""
    WM, WE, sb = spec.cfg.state_man_bits, spec.cfg.state_exp_bits, spec.cfg.state_bits
    corners = [0, 1, (1 << WM) - 1, 1 << (WM - 1), (1 << sb) - 1, ((1 << WE) - 1) << WM | 1 << (WM - 1)]
    m = (n - len(corners)) // 3
    E = rng.integers(1, 1 << WE, m)
    valid = (E << WM) | rng.integers(1 << (WM - 1), 1 << WM, m)
    decayed = rng.integers(0, 1 << WM, m)
    arbitrary = rng.integers(0, 1 << sb, n - len(corners) - 2 * m)
    return corners + [int(x) for x in np.concatenate([valid, decayed, arbitrary])]


def _step_scalars(spec, rng, n):
    """(log_eta, log_bc) pairs: every schedule value a host computes, plus the ports' extreme values."""
    F, S = spec.cfg.log_frac_bits, spec.eta_star_rungs
    r = rng.integers(1, S + 1, n)
    t = rng.choice([1, 2, 3, 10, 100, 1000, 10**5], n)
    pairs = [(tables.log_eta_term(spec, int(ri)), tables.bias_correction_term(spec, int(ti))) for ri, ti in zip(r, t)]
    pairs[:3] = [((1 << (F + 6)) - 1, 0), (0, (1 << (F + 5)) - 1), ((1 << (F + 6)) - 1, (1 << (F + 5)) - 1)]
    return pairs


def _codes(spec, rng, n):
    """Codes: both ends, within one step of them, and uniform."""
    KMAX, S = spec.fmt.code_max, spec.eta_star_rungs
    pick = rng.integers(0, 5, n)
    near = rng.integers(0, S + 1, n)
    uniform = rng.integers(0, KMAX + 1, n)
    out = np.choose(pick, [np.zeros(n, np.int64), np.full(n, KMAX), near, KMAX - near, uniform])
    out[:4] = [0, KMAX, 1, KMAX - 1]
    return [int(x) for x in out]


def vectors(spec, n, seed):
    """``n`` update inputs (sw, k, gbits, st, log_eta, log_bc).

    Every gradient class against random states (fresh, valid, decayed, invalid), then evolved states with
    commensurate gradients (about 40%), then random gradients against random states.
    """
    rng = np.random.default_rng(seed)
    corners = _grad_corners(spec)
    n_evolved = (2 * n) // 5
    st_e, g_e = evolved(spec, rng, n_evolved)
    n_rest = n - n_evolved
    grads = corners + g_e + _random_grads(spec, rng, n_rest - len(corners))
    states = _states(spec, rng, n_rest)
    rng.shuffle(states)
    states = states[:len(corners)] + st_e + states[len(corners):]
    codes, scalars = _codes(spec, rng, n), _step_scalars(spec, rng, n)
    sw = rng.integers(0, 2, n)
    return [(int(sw[i]), codes[i], grads[i], states[i], *scalars[i]) for i in range(n)]


def run_stream(dut, beats, *, seed, p_valid=0.7, p_ready=0.7, set_inputs, drain=8):
    """Push ``beats`` through ``dut`` with random valid/ready stalls; returns the raw output payloads.

    ``set_inputs(ctx, beat)`` drives the payload and per-beat ports; idle cycles drive random junk with
    ``valid`` low. After the last output the stream must stay quiet for ``drain`` cycles.
    """
    rng = np.random.default_rng(seed)
    junk = np.random.default_rng(seed + 1)
    outputs = []
    payload_in, payload_out = Value.cast(dut.i.payload), Value.cast(dut.o.payload)

    async def producer(ctx):
        for beat in beats:
            while rng.random() > p_valid:
                ctx.set(dut.i.valid, 0)
                ctx.set(payload_in, int(junk.integers(0, 2**62)) % 2 ** len(payload_in))
                await ctx.tick()
            set_inputs(ctx, beat)
            ctx.set(dut.i.valid, 1)
            await ctx.tick().until(dut.i.ready)
        ctx.set(dut.i.valid, 0)

    async def consumer(ctx):
        deadline = 20 * len(beats) + 100  # cycles: a hung pipeline fails instead of running forever
        while len(outputs) < len(beats):
            deadline -= 1
            assert deadline > 0, f"only {len(outputs)} of {len(beats)} outputs"
            ctx.set(dut.o.ready, int(rng.random() < p_ready))
            _, _, valid, ready, payload = await ctx.tick().sample(dut.o.valid, dut.o.ready, payload_out)
            if valid and ready:
                outputs.append(payload)
        ctx.set(dut.o.ready, 1)
        for _ in range(drain):
            _, _, valid = await ctx.tick().sample(dut.o.valid)
            assert not valid, "an extra output after the last input"

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(producer)
    sim.add_testbench(consumer)
    sim.run()
    return outputs


def pack_lane(layout, **fields) -> int:
    """One lane's payload word: each field of the ``data.StructLayout`` ``layout`` at its offset (from the LSB),
    as two's complement in its width (so a negative value of a signed field packs as its bit pattern)."""
    return sum((fields[name] & (2**f.width - 1)) << f.offset for name, f in layout)


def unpack_lane(layout, word: int, lane: int = 0) -> dict:
    """Lane ``lane`` of a payload word of lanes laid out by ``layout`` (lane ``j`` at ``j * layout.size``):
    ``{field: value}``, a signed field's value as a signed int."""
    x = word >> (lane * layout.size)
    out = {}
    for name, f in layout:
        v = x >> f.offset & (2**f.width - 1)
        out[name] = v - 2**f.width if Shape.cast(f.shape).signed and v >> (f.width - 1) else v
    return out
