"""The batch co-simulation engine: the Verilated update unit run by a C++ harness, checked in NumPy (host side).

The same tests as the cocotb bench (:mod:`lnsim_testbenches.update_unit_tb`), with the same vectors for the same
seed (:class:`lnsim_testbenches.stimulus.Stimulus` on the same generators) and the same report, but no Python in
the per-cycle loop: the unit and the harness (``batch_harness.cpp``, built by :mod:`lnsim_testbenches.batch_build`)
are one shared library, loaded with ctypes. The host packs chunks of vectors into one uint32 array
(``[log_eta, log_bc]`` and per lane ``sw, k, g, st`` per beat), the harness streams them through the unit with the
bench's handshake, stall profile and resets and writes the received payloads' fields (per lane ``k, st, nan,
inf``) into another; NumPy compares them with the golden model's outputs for the same vectors. While the harness
simulates one chunk (ctypes releases the GIL), the next chunk's stimulus and golden outputs are made on the other
core. Nothing goes through files.

The stall pattern is the bench's profile drawn by the harness's own generator, so cycle counts differ from a
cocotb run of the same seed; vectors, expected values, mismatches and coverage are the same.
"""

from __future__ import annotations

import ctypes
import os
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from lnsim.spec import Spec
from lnsim_rtl.widths import Widths
from lnsim_testbenches.batch_build import BatchBuild
from lnsim_testbenches.coverage import FunctionalCoverage
from lnsim_testbenches.expected import STALL_PROFILES, Coverage, GoldenModel, decoded
from lnsim_testbenches.stimulus import Stimulus

__all__ = ["STALL_PROFILES", "TESTS", "BatchUnit", "run_tests"]

#: The tests, in the order the cocotb bench runs them.
TESTS = ("random_vectors", "reset_mid_stream", "directed_corners", "exhaustive_grad", "replay")
#: Vectors per harness call (a chunk): large enough that the call overhead vanishes, small enough for progress.
CHUNK_VECTORS = 1 << 17
#: Mismatch reports kept per test (as the cocotb bench's checker keeps).
KEEP = 10


class _Stats(ctypes.Structure):
    _fields_ = [(name, ctypes.c_int64) for name in
                ("cycles", "received", "first_accept", "first_valid", "bubbles", "resent", "early_outputs", "timeout")]


class BatchUnit:
    """One Verilated update unit in the harness library: ``run(rows)`` streams beats through it."""

    def __init__(self, build: BatchBuild, spec: Spec, lanes: int):
        self.spec, self.lanes = spec, lanes
        self._lib = lib = ctypes.CDLL(str(build.library))
        lib.lnsim_batch_new.restype = ctypes.c_void_p
        lib.lnsim_batch_free.argtypes = [ctypes.c_void_p]
        p = ctypes.POINTER
        lib.lnsim_batch_run.argtypes = [ctypes.c_void_p, p(ctypes.c_int32), p(ctypes.c_uint32), p(ctypes.c_uint32),
                                        ctypes.c_int64, ctypes.c_uint64, p(ctypes.c_double), ctypes.c_int,
                                        p(ctypes.c_int64), ctypes.c_int, ctypes.c_int64, ctypes.c_int64, p(_Stats)]
        lib.lnsim_batch_run.restype = ctypes.c_int
        w = Widths(spec)
        self.lane_in, self.lane_out = w.lane_in, w.lane_out
        fields = [lanes, w.lane_in.size, w.lane_out.size]
        for layout, names in ((w.lane_in, ("sw", "k", "g", "st")), (w.lane_out, ("k", "st", "nan", "inf"))):
            f = dict(iter(layout))
            for name in names:
                fields += [f[name].offset, f[name].width]
        self._layout = np.array(fields, np.int32)
        self._handle = lib.lnsim_batch_new()

    def close(self) -> None:
        if self._handle:
            self._lib.lnsim_batch_free(self._handle)
            self._handle = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def run(self, rows: np.ndarray, *, stalls: str = "none", stall_seed: int = 1, resets=(), latency: int = 0,
            max_cycles: int | None = None) -> tuple[np.ndarray, dict]:
        """Stream the beats ``rows`` (uint32, ``(beats, 2 + 4 * lanes)``) through the unit.

        Returns the received beats' fields (uint32, ``(received, 4 * lanes)``) and the stream's statistics
        (``cycles``, ``received``, ``first_accept``, ``first_valid``, ``bubbles``, ``resent``, ``early_outputs``,
        ``timeout``; cycles counted from the call). The pipeline is empty before and after a call.
        """
        rows = np.ascontiguousarray(rows, np.uint32)
        n = rows.shape[0]
        assert rows.shape[1] == 2 + 4 * self.lanes
        out = np.zeros((n, 4 * self.lanes), np.uint32)
        profile = np.array(STALL_PROFILES[stalls], np.float64)
        seed = 0 if stalls == "none" else int(stall_seed) % (2**63) or 1
        res = np.array([x for r in sorted(resets) for x in r] or [0], np.int64)
        stats = _Stats()
        max_cycles = 40 * n + 2000 if max_cycles is None else max_cycles
        u32, i32 = ctypes.POINTER(ctypes.c_uint32), ctypes.POINTER(ctypes.c_int32)
        rc = self._lib.lnsim_batch_run(self._handle, self._layout.ctypes.data_as(i32), rows.ctypes.data_as(u32),
                                       out.ctypes.data_as(u32), n, seed,
                                       profile.ctypes.data_as(ctypes.POINTER(ctypes.c_double)), len(profile),
                                       res.ctypes.data_as(ctypes.POINTER(ctypes.c_int64)), len(resets), latency,
                                       max_cycles, ctypes.byref(stats))
        if rc != 0:
            raise RuntimeError("the batch harness handles payload ports up to 2016 bits")
        s = {name: int(getattr(stats, name)) for name, _ in _Stats._fields_}
        return out[: s["received"]], s


class _Chunk:
    """Beats of one harness call: input rows, expected fields, the index of its first vector."""

    def __init__(self, rows, expected, start):
        self.rows, self.expected, self.start = rows, expected, start


def _chunks(groups, lanes: int, limit: int):
    """Pack ``groups`` (the stimulus's tuples; with the golden outputs appended) into chunks of about ``limit``
    vectors: ``_Chunk`` with ``rows`` ``(beats, 2 + 4 lanes)`` and ``expected`` ``(beats, 4 lanes)``."""
    pending, size, start = [], 0, 0

    def flush():
        nonlocal pending, size, start
        beats = size // lanes
        rows = np.empty((beats, 2 + 4 * lanes), np.uint32)
        expected = np.empty((beats, 4 * lanes), np.uint32)
        at = 0
        for sw, k, g, st, log_eta, log_bc, (k_new, st_new, nan, inf) in pending:
            b = len(sw) // lanes
            r, e = rows[at:at + b], expected[at:at + b]
            r[:, 0], r[:, 1] = log_eta, log_bc
            for f, col in enumerate((sw, k, g, st)):
                r[:, 2 + f::4] = col.reshape(b, lanes)
            for f, col in enumerate((k_new, st_new, nan, inf)):
                e[:, f::4] = col.reshape(b, lanes)
            at += b
        chunk = _Chunk(rows, expected, start)
        start += size
        pending, size = [], 0
        return chunk

    for group in groups:
        pending.append(group)
        size += len(group[0])
        if size >= limit:
            yield flush()
    if pending:
        yield flush()


class _Test:
    """One test's run: feeds chunks to the harness (in a worker thread) and checks what comes back."""

    def __init__(self, spec: Spec, lanes: int, name: str, units, model: GoldenModel, *, latency: int,
                 stalls: str, stall_seed: int, progress=None, total: int = 0, coverage: bool = False):
        self.spec, self.lanes, self.name, self.units, self.model = spec, lanes, name, list(units), model
        self.latency, self.stalls, self.stall_seed = latency, stalls, stall_seed
        self.progress, self.total = progress, total
        self.coverage = Coverage(spec)
        # The harness stalls out of sight: its back-pressure bins are not applicable (None).
        self.functional = FunctionalCoverage(spec, backpressure=False) if coverage else None
        self.reports: list = []
        self.received = self.mismatches = self.mismatched_beats = 0
        self.stats = {"cycles": 0, "bubbles": 0, "resent": 0, "latency_seen": None}
        self.errors: list = []

    def _submit(self, pool, chunk: _Chunk, index: int, resets) -> list:
        """Start simulating ``chunk``: split between the units (each half from an empty pipeline), unless it has
        resets (whose cycles count from the chunk's start) or too few beats."""
        rows = chunk.rows
        parts = len(self.units) if not resets and rows.shape[0] >= 4096 else 1
        bounds = np.linspace(0, rows.shape[0], parts + 1).astype(int)
        return [pool.submit(unit.run, rows[a:b], stalls=self.stalls, resets=resets, latency=self.latency,
                            stall_seed=(self.stall_seed * 1_000_003 + index) * 7 + i)
                for i, (unit, a, b) in enumerate(zip(self.units, bounds[:-1], bounds[1:]))]

    @staticmethod
    def _collect(futures) -> tuple:
        """The parts' outputs joined, their statistics combined (cycles summed over the units)."""
        outs, total = [], None
        for f in futures:
            out, s = f.result()
            if total is None:
                total = dict(s)
            else:
                for key in ("cycles", "received", "bubbles", "resent", "early_outputs"):
                    total[key] += s[key]
            if total["timeout"]:
                outs.append(out)
                break  # later parts' outputs would not follow on
            outs.append(out)
            total["timeout"] = s["timeout"]
        out = outs[0] if len(outs) == 1 else np.concatenate(outs)
        total["received"] = out.shape[0]
        return out, total

    def run(self, chunks, *, resets=()) -> dict:
        t0 = time.perf_counter()
        with ThreadPoolExecutor(len(self.units), thread_name_prefix="lnsim-batch") as pool:
            it = iter(chunks)
            current = next(it, None)
            futures = self._submit(pool, current, 0, resets) if current is not None else None
            index = 0
            while current is not None:
                nxt = next(it, None)  # made while the harness simulates `current`
                out, s = self._collect(futures)
                if nxt is not None:
                    index += 1
                    futures = self._submit(pool, nxt, index, ())
                self._check(current, out, s)
                if s["timeout"]:
                    break
                current = nxt
        seconds = time.perf_counter() - t0
        if self.progress is not None and self.received == 0:
            self.progress(self.name, 0, self.total)
        vectors = self.received * self.lanes
        return {
            "vectors": vectors,
            "beats": self.received,
            "mismatches": self.mismatches,
            "mismatched_beats": self.mismatched_beats,
            "seconds": seconds,
            "golden_seconds": self.model.seconds,
            "vectors_per_second": vectors / seconds if seconds > 0 else 0.0,
            "cycles": self.stats["cycles"],
            "latency_seen": self.stats["latency_seen"],
            "bubbles": self.stats["bubbles"],
            "errors": self.errors,
            "first_mismatches": self.reports,
            "resets": [list(r) for r in resets],
            "resent_beats": self.stats["resent"],
            "coverage": self.coverage.counts,
            **({"functional_coverage": self.functional.counts} if self.functional is not None else {}),
            "engine": "batch",
        }

    def _check(self, chunk: _Chunk, out: np.ndarray, s: dict) -> None:
        st = self.stats
        if st["latency_seen"] is None and s["first_accept"] >= 0 and s["first_valid"] >= 0:
            st["latency_seen"] = s["first_valid"] - s["first_accept"]
            if st["latency_seen"] != self.latency:
                self.errors.append(f"latency: first output {st['latency_seen']} cycles after the first input, "
                                   f"not {self.latency}")
        if s["early_outputs"]:
            self.errors.append(f"cycle {st['cycles']}+: o.valid high after a reset before any resent beat could "
                               f"arrive")
        st["cycles"] += s["cycles"]
        st["bubbles"] += s["bubbles"]
        st["resent"] += s["resent"]
        lanes, rows, expected = self.lanes, chunk.rows, chunk.expected
        got = out.shape[0]
        if s["timeout"]:
            self.errors.append(f"timeout: {self.received + got} of {self.received + rows.shape[0]} beats received "
                               f"after {st['cycles']} cycles")
        exp = expected[:got]
        r = rows[:got, 2:]
        self.coverage.add(r[:, 1::4].ravel(), r[:, 2::4].ravel(), r[:, 3::4].ravel(),
                          exp[:, 0::4].ravel(), exp[:, 2::4].ravel(), exp[:, 3::4].ravel())
        if self.functional is not None:
            beat_scalars = rows[:got, :2].astype(np.int64)
            self.functional.add(r[:, 0::4].ravel(), r[:, 1::4].ravel(), r[:, 2::4].ravel(), r[:, 3::4].ravel(),
                                np.repeat(beat_scalars[:, 0], lanes), np.repeat(beat_scalars[:, 1], lanes))
        bad = (out != exp).reshape(got, lanes, 4).any(axis=2)  # (beats, lanes)
        n_bad = int(np.count_nonzero(bad))
        if n_bad:
            self.mismatches += n_bad
            self.mismatched_beats += int(np.count_nonzero(bad.any(axis=1)))
            for b, j in zip(*np.nonzero(bad)):
                if len(self.reports) >= KEEP:
                    break
                self.reports.append(self._describe(chunk, int(b), int(j), out))
        self.received += got
        if self.progress is not None:
            self.progress(self.name, self.received * lanes, self.total)

    def _describe(self, chunk: _Chunk, b: int, j: int, out) -> dict:
        """A mismatch report in the cocotb bench's form: inputs, RTL and golden fields and bits, decoded values."""
        row, names_in, names_out = chunk.rows[b], ("sw", "k", "g", "st"), ("k", "st", "nan", "inf")
        x = {n: int(row[2 + 4 * j + i]) for i, n in enumerate(names_in)}
        rtl = {n: int(out[b, 4 * j + i]) for i, n in enumerate(names_out)}
        gold = {n: int(chunk.expected[b, 4 * j + i]) for i, n in enumerate(names_out)}
        return {
            "test": self.name,
            "vector": chunk.start + b * self.lanes + j,
            "lane": j,
            "inputs": {**x, "log_eta": int(row[0]), "log_bc": int(row[1])},
            "rtl": rtl,
            "golden": gold,
            "rtl_bits": hex(self._pack(rtl)),
            "golden_bits": hex(self._pack(gold)),
            "decoded": decoded(self.spec, x, rtl, gold),
        }

    def _pack(self, fields: dict) -> int:
        return sum(fields[name] << f.offset for name, f in self.units[0].lane_out)

def _with_golden(groups, model: GoldenModel):
    """The groups with the golden outputs appended (``random_steps`` has them already)."""
    for group in groups:
        if len(group) > 6:
            yield group
        else:
            yield (*group, model.update(*group))


def run_tests(build: BatchBuild, spec: Spec, *, lanes: int, latency: int, tests, vectors: int = 10_000,
              seed: int = 0, stalls: str = "random", reset_vectors: int = 4096, replay=None, progress=None,
              chunk_vectors: int = CHUNK_VECTORS, simulators: int | None = None, coverage: bool = False) -> dict:
    """Run ``tests`` (names from :data:`TESTS`) in the harness; results in the form ``runner.run`` returns them.

    Each test draws its vectors from the generators the cocotb bench seeds for it (``[seed, salt]`` and
    ``[seed, salt, 1]``, salt the sum of the test name's characters), so both engines check the same vectors.
    As in the bench, ``stalls`` applies to the random and exhaustive tests; the reset and corner tests always
    stall at random, the replay never.

    ``simulators`` instances of the unit (default: 2 on a machine of two cores or more, else 1) simulate the two
    halves of each chunk in threads of their own, each half from an empty pipeline; the harness releases the GIL,
    so they and the host's stimulus, golden model and comparison run side by side.

    With ``coverage`` each test's result also has ``functional_coverage`` (:mod:`lnsim_testbenches.coverage`).
    """
    if simulators is None:
        simulators = 2 if (os.cpu_count() or 1) >= 2 else 1
    results: dict = {"tests": {}, "engine": "batch"}
    failed = 0
    units = [BatchUnit(build, spec, lanes) for _ in range(max(1, int(simulators)))]
    try:
        for name in tests:
            model = GoldenModel(spec)
            salt = sum(map(ord, name))
            rng = np.random.default_rng([seed, salt])
            stim = Stimulus(spec, lanes, np.random.default_rng([seed, salt, 1]), model)
            resets, test_stalls, ok = (), "random", []
            if name == "random_vectors":
                n = -(-int(vectors) // lanes) * lanes
                groups, test_stalls = stim.random_steps(n), stalls
            elif name == "reset_mid_stream":
                n = -(-int(reset_vectors) // lanes) * lanes
                beats = n // lanes
                resets = tuple((int(c), int(rng.integers(1, 4)))
                               for c in sorted(rng.choice(np.arange(20, beats), 4, replace=False)))
                groups = stim.random_steps(n, population=512)
            elif name == "directed_corners":
                groups = stim.corners()
                n = sum(len(g[0]) for g in groups)
            elif name == "exhaustive_grad":
                if spec.cfg.grad_format.width != 16:
                    results["tests"][name] = {"vectors": 0, "mismatches": 0, "seconds": 0.0, "first_mismatches": [],
                                              "errors": [], "skipped": "32-bit gradients"}
                    continue
                groups, test_stalls = stim.exhaustive(), stalls
                n = sum(len(g[0]) for g in groups)
            elif name == "replay":
                groups, test_stalls = [], "none"
                for r in replay or []:
                    one = np.array([[r["sw"], r["k"], r["g"], r["st"]]] * lanes, dtype=np.uint64)
                    groups.append(stim.group(one, int(r["log_eta"]), int(r["log_bc"])))
                n = len(groups) * lanes
            else:
                raise ValueError(f"unknown test {name!r}; the batch engine runs {', '.join(TESTS)}")
            size = n if name == "reset_mid_stream" else chunk_vectors
            test = _Test(spec, lanes, name, units, model, latency=latency, stalls=test_stalls,
                         stall_seed=int(rng.integers(1, 2**62)), progress=progress, total=n, coverage=coverage)
            r = test.run(_chunks(_with_golden(groups, model), lanes, max(size, lanes)), resets=resets)
            if name == "reset_mid_stream" and r["resent_beats"] == 0:
                ok.append("no beat was in flight at any reset: the test proved nothing")
            if r["bubbles"]:
                ok.append(f"{name}: {r['bubbles']} cycles lost with o.ready high")
            if r["vectors"] != n:
                ok.append(f"{name}: {r['vectors']} of {n} vectors received")
            r["errors"] = r["errors"] + ok
            failed += bool(r["mismatches"] or r["errors"])
            results["tests"][name] = r
    finally:
        for unit in units:
            unit.close()
    tests_ = results["tests"].values()
    results.update(
        vectors=sum(t["vectors"] for t in tests_),
        mismatches=sum(t["mismatches"] for t in tests_),
        seconds=sum(t["seconds"] for t in tests_),
        first_mismatches=[r for t in tests_ for r in t["first_mismatches"]][:10],
        errors=[e for t in tests_ for e in t["errors"]],
        tests_failed=failed,
    )
    results["vectors_per_second"] = results["vectors"] / results["seconds"] if results["seconds"] else 0.0
    return results
