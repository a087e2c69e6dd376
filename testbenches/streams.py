"""Stream driver, monitor and in-order checker for the cocotb benches (simulator side).

The three are small classes joined by callbacks and stepped by one clocked loop, :func:`run_stream`:
each cycle it lets the driver and the monitor set their signals after the falling edge, waits for the
values to settle (``ReadOnly``), then lets them sample the handshake that the next rising edge completes.
One coroutine per cycle instead of one per class halves the scheduler's work per cycle; the classes stay
separate. A beat carries a whole multi-lane payload, so one cycle moves ``lanes`` vectors.

Each beat also carries the words the checker expects and the index of its first vector; the driver
and the checker share one queue (:class:`Pending`) of beats not yet received, so after a reset the
driver simply resends everything the checker has not seen.
"""

from __future__ import annotations

import collections
import time
from dataclasses import dataclass, field

import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, ReadOnly, RisingEdge

__all__ = ["Beat", "Pending", "StallPattern", "StreamDriver", "StreamMonitor", "InOrderChecker", "Progress",
           "run_stream", "start_in_reset"]


@dataclass(frozen=True, slots=True)
class Beat:
    """One stream transfer: the input payload, the per-beat scalars, the expected output payload."""

    payload: int
    scalars: tuple
    expected: int
    #: Index of the beat's first vector in the test's sequence (for reports).
    index: int


class Pending:
    """Beats loaded but not yet received, in order; the driver's send position is an offset into it."""

    def __init__(self, source):
        self._source = iter(source)
        self.beats = collections.deque()
        self.exhausted = False

    def fill(self, at_least: int) -> None:
        """Load batches (lists of beats) from the source until ``at_least`` beats wait or it runs dry."""
        while len(self.beats) < at_least and not self.exhausted:
            try:
                self.beats.extend(next(self._source))
            except StopIteration:
                self.exhausted = True


class StallPattern:
    """Random on/off cycles: segments of 64..4096 cycles, each with an on-probability from ``profile``.

    ``profile=(1.0,)`` never stalls. Drawn in chunks with NumPy to keep per-cycle cost low.
    """

    def __init__(self, rng: np.random.Generator, profile=(1.0, 0.9, 0.5, 0.1)):
        self._rng, self._profile = rng, tuple(profile)
        self._chunk: list = []
        self._pos = 0

    def _refill(self) -> None:
        rng = self._rng
        parts = []
        for _ in range(16):
            p = self._profile[rng.integers(len(self._profile))]
            n = int(rng.integers(64, 4097))
            parts.append(np.ones(n, bool) if p >= 1.0 else rng.random(n) < p)
        self._chunk = np.concatenate(parts).tolist()
        self._pos = 0

    def next(self) -> bool:
        """Whether the side is on (driving ``valid`` or ``ready``) in the next cycle."""
        if self._pos >= len(self._chunk):
            self._refill()
        v = self._chunk[self._pos]
        self._pos += 1
        return v


class StreamDriver:
    """Drives ``valid``/``payload`` (and per-beat scalar ports) from the pending beats, with random gaps."""

    def __init__(self, valid, payload, ready, scalar_ports, pending: Pending, pattern: StallPattern, on_accept=None):
        self._valid, self._payload, self._ready = valid, payload, ready
        self._scalar_ports = tuple(scalar_ports)
        self._pending, self._pattern, self._on_accept = pending, pattern, on_accept
        #: Offset of the next beat to send in ``pending.beats``.
        self.sent = 0
        self.enabled = True
        self._v = None
        self._last_payload = None
        self._last_scalars = None
        self.valid = False

    def drive(self) -> None:
        """After the falling edge: offer the next unsent beat, or not, as the stall pattern says."""
        beats = self._pending.beats
        if self.sent >= len(beats) - 1:
            self._pending.fill(self.sent + 256)
        v = self.enabled and self.sent < len(beats) and self._pattern.next()
        if v:
            beat = beats[self.sent]
            if beat.payload != self._last_payload:
                self._payload.value = beat.payload
                self._last_payload = beat.payload
            if beat.scalars != self._last_scalars:
                for port, x in zip(self._scalar_ports, beat.scalars):
                    port.value = x
                self._last_scalars = beat.scalars
        if v != self._v:
            self._valid.value = int(v)
            self._v = v
        self.valid = v

    def sample(self) -> bool:
        """True if the beat is accepted at the coming rising edge (``valid`` and ``ready``)."""
        if self.valid and self._ready.value:
            self.sent += 1
            if self._on_accept is not None:
                self._on_accept()
            return True
        return False

    def rewind(self) -> None:
        """After a reset: resend every beat not yet received."""
        self.sent = 0


class StreamMonitor:
    """Drives ``ready`` with random stalls; hands each received payload (an int) to ``on_output``."""

    def __init__(self, valid, payload, ready, pattern: StallPattern, on_output):
        self._valid, self._payload, self._ready = valid, payload, ready
        self._pattern, self._on_output = pattern, on_output
        self.enabled = True
        self._r = None
        self.ready = False
        #: Whether ``valid`` was high at the last sample (received or not).
        self.valid = False

    def drive(self) -> None:
        """After the falling edge: raise or drop ``ready`` as the stall pattern says."""
        r = self.enabled and self._pattern.next()
        if r != self._r:
            self._ready.value = int(r)
            self._r = r
        self.ready = r

    def sample(self) -> bool:
        """True (and the payload handed on) if a beat is received at the coming rising edge."""
        self.valid = bool(self._valid.value)
        if self.valid and self.ready:
            self._on_output(self._payload.value.to_unsigned())
            return True
        return False


@dataclass
class InOrderChecker:
    """Compares each received payload, as raw bits, with the next pending beat's expected payload.

    ``describe(beat, got)`` turns a mismatching beat into a list of per-vector reports (inputs, RTL bits,
    golden bits, decoded values); the first ``keep`` of them are kept.
    """

    pending: Pending
    driver: StreamDriver
    describe: object
    keep: int = 10
    received: int = 0
    mismatched_beats: int = 0
    mismatches: int = 0
    reports: list = field(default_factory=list)

    def on_output(self, got: int) -> None:
        """Check the received payload ``got`` (raw bits) against the oldest beat in flight."""
        if not self.pending.beats or self.driver.sent <= 0:
            self.mismatched_beats += 1
            self.mismatches += 1
            if len(self.reports) < self.keep:
                self.reports.append({"error": "output with no input in flight (a duplicated or invented beat)",
                                     "rtl": hex(got)})
            return
        beat = self.pending.beats.popleft()
        self.driver.sent -= 1
        self.received += 1
        if got != beat.expected:
            self.mismatched_beats += 1
            lanes = self.describe(beat, got)
            self.mismatches += len(lanes)
            self.reports.extend(lanes[: max(0, self.keep - len(self.reports))])


class Progress:
    """Appends ``name done total`` lines to a file (read by the runner) at most every ``period`` seconds."""

    def __init__(self, path, name: str, total: int, period: float = 0.5):
        self._path, self.name, self.total, self._period = path, name, total, period
        self._next = 0.0

    def update(self, done: int, force: bool = False) -> None:
        """Record ``done`` of ``total`` vectors, unless a line was written less than ``period`` ago (or ``force``)."""
        if not self._path:
            return
        now = time.monotonic()
        if force or now >= self._next:
            self._next = now + self._period
            with open(self._path, "a") as f:
                f.write(f"{self.name} {done} {self.total}\n")


async def run_stream(dut, driver: StreamDriver, monitor: StreamMonitor, checker: InOrderChecker, *, total_beats: int,
                     max_cycles: int, rst=None, resets=(), latency: int | None = None, progress=None,
                     lanes: int = 1, on_cycle=None) -> dict:
    """Step the driver and monitor each cycle until ``total_beats`` beats have been received.

    Parameters
    ----------
    rst : handle, optional
        The synchronous reset; with ``resets`` = [(cycle, length), ...] it is asserted mid-stream (driver
        and monitor idle meanwhile), after which the driver resends every beat not yet received. The
        output must then stay idle until a resent beat can have reached it (``latency`` cycles).
    latency : int, optional
        The unit's latency, checked on the first beat (accepted with the output idle).
    on_cycle : callable, optional
        Called with no arguments in each cycle out of reset, after both sides are sampled (coverage).

    Returns
    -------
    dict
        ``cycles``, ``latency_seen`` (cycles from the first accept to the first valid output),
        ``bubbles`` (cycles with valid input, ready output and ``i.ready`` low: lost throughput),
        ``resent`` (beats in flight at a reset, sent again) and ``errors`` (protocol errors: output too
        early after a reset, wrong latency).
    """
    fe, ro = FallingEdge(dut.clk), ReadOnly()
    cycle = 0
    first_accept = first_valid = None
    quiet_until = None  # after a reset: no valid output before this cycle
    resets = sorted(resets)
    reset_left = 0
    resent = 0
    bubbles = 0
    errors = []
    while checker.received < total_beats:
        await fe
        if resets and cycle >= resets[0][0] and reset_left == 0:
            reset_left = resets.pop(0)[1]
            rst.value = 1
            driver.enabled = monitor.enabled = False
        elif reset_left:
            reset_left -= 1
            if reset_left == 0:
                rst.value = 0
                driver.enabled = monitor.enabled = True
                resent += driver.sent
                driver.rewind()
                quiet_until = float("inf")
        driver.drive()
        monitor.drive()
        await ro
        accepted = driver.sample()
        if accepted and quiet_until == float("inf"):
            quiet_until = cycle + (latency or 0)
        if accepted and first_accept is None:
            first_accept = cycle
        monitor.sample()
        if monitor.valid:
            if first_valid is None:
                first_valid = cycle
            if quiet_until is not None and cycle < quiet_until and not reset_left:
                errors.append(f"cycle {cycle}: o.valid high after a reset before any resent beat could arrive")
                quiet_until = None
        if driver.valid and monitor.ready and not accepted and not reset_left:
            bubbles += 1
        if on_cycle is not None and not reset_left:
            on_cycle()
        cycle += 1
        if cycle >= max_cycles:
            errors.append(f"timeout: {checker.received} of {total_beats} beats received after {cycle} cycles")
            break
        if progress is not None and (cycle & 1023) == 0:
            progress.update(checker.received * lanes)
    latency_seen = None if first_accept is None or first_valid is None else first_valid - first_accept
    if latency is not None and latency_seen is not None and latency_seen != latency:
        errors.append(f"latency: first output {latency_seen} cycles after the first input, not {latency}")
    return {"cycles": cycle, "latency_seen": latency_seen, "bubbles": bubbles, "errors": errors, "resent": resent}


async def start_in_reset(dut, cycles: int = 3) -> None:
    """Start a 10 ns clock on ``dut.clk`` and hold ``rst`` for ``cycles`` cycles with both streams idle (input
    not valid, output not ready); returns with ``rst`` just released."""
    Clock(dut.clk, 10, unit="ns").start()
    dut.rst.value = 1
    dut.i__valid.value = 0
    dut.o__ready.value = 0
    for _ in range(cycles):
        await RisingEdge(dut.clk)
    dut.rst.value = 0
