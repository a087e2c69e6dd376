"""cocotb bench: stage 5 (``SaturatingAdd``) alone, exhaustively, against docs/datapath.md's rule.

Every ``(k, n, sw, sg)`` with ``k`` over all codes and ``n`` over the whole range of the stage's rung-step
port, for each spec the runner lists (B <= 10 in CI): ``k' = clamp(k + (n if sw == sg else -n), 0, KMAX)``.
The design is ``lnsim_testbenches.wrappers.SaturatingAddArray``, ``copies[i]`` stages side by side for
``specs[i]``, so one simulator round trip checks that many combinations.
"""

from __future__ import annotations

import time

import cocotb
import numpy as np
from cocotb.triggers import Timer

from lnsim.spec import Spec
from lnsim_testbenches.common import SAT_N_OFFSET, SAT_OUT_BITS, bench_params, write_results


def combinations(B: int, nw: int):
    """Every ``(sw, sg, k, n)`` for ``k`` in ``0 .. 2**B - 1`` and ``n`` in ``0 .. 2**nw - 1`` (uint32 arrays)."""
    idx = np.arange(2 ** (B + nw + 2), dtype=np.uint32)
    sw, sg = idx & 1, (idx >> 1) & 1
    n = (idx >> 2) & (2**nw - 1)
    k = idx >> (2 + nw)
    return sw, sg, k, n


def saturating_add(sw, sg, k, n, kmax: int):
    """docs/datapath.md, stage 5: ``clamp(k + (n if sw == sg else -n), 0, KMAX)``."""
    d = np.where(sw == sg, n.astype(np.int64), -n.astype(np.int64))
    return np.clip(k.astype(np.int64) + d, 0, kmax)


@cocotb.test()
async def exhaustive(dut):
    """All combinations per spec, ``copies[i]`` per evaluation."""
    params = bench_params()
    results = {"tests": {}, "vectors": 0, "mismatches": 0, "first_mismatches": []}
    t_start = time.perf_counter()
    for i, sj in enumerate(params["specs"]):
        spec = Spec.from_dict(sj)
        copies = int(params["copies"][i])
        B, nw, kmax = spec.fmt.bits, spec.eta_star_rungs.bit_length(), spec.fmt.code_max
        sw, sg, k, n = combinations(B, nw)
        expected = saturating_add(sw, sg, k, n, kmax).astype(np.uint16)
        total = len(k)
        pad = -total % copies
        lanes = sw | (sg << 1) | (k << 2) | (n << SAT_N_OFFSET)
        lanes = np.concatenate([lanes, np.zeros(pad, np.uint32)]).astype("<u4").reshape(-1, copies)
        want = np.concatenate([expected, np.zeros(pad, np.uint16)]).astype("<u2").reshape(-1, copies)
        x, y = getattr(dut, f"x{i}"), getattr(dut, f"y{i}")
        nbytes = copies * SAT_OUT_BITS // 8
        mismatches = 0
        t0 = time.perf_counter()
        for row in range(lanes.shape[0]):
            x.value = int.from_bytes(lanes[row].tobytes(), "little")
            await Timer(1, "ns")
            got = np.frombuffer(y.value.to_unsigned().to_bytes(nbytes, "little"), "<u2")
            bad = np.nonzero(got != want[row])[0]
            if bad.size:
                valid = bad[row * copies + bad < total]
                mismatches += int(valid.size)
                for c in valid[: max(0, 10 - len(results["first_mismatches"]))]:
                    j = row * copies + int(c)
                    results["first_mismatches"].append({
                        "spec": spec.fmt.describe(), "eta_star_rungs": spec.eta_star_rungs,
                        "inputs": {"sw": int(sw[j]), "sg": int(sg[j]), "k": int(k[j]), "n": int(n[j])},
                        "rtl": int(got[c]), "golden": int(want[row, c]),
                    })
        seconds = time.perf_counter() - t0
        results["tests"][f"B={B} SSTAR={spec.eta_star_rungs}"] = {"vectors": total, "mismatches": mismatches,
                                                                   "seconds": seconds}
        results["vectors"] += total
        results["mismatches"] += mismatches
    results["seconds"] = time.perf_counter() - t_start
    write_results(params.get("results"), results)
    first = results["first_mismatches"][:3]
    assert results["mismatches"] == 0, (
        f"{results['mismatches']} mismatches; first (inputs, RTL k', golden k'): "
        + "; ".join(f"{m['spec']} {m['inputs']} RTL {m['rtl']} golden {m['golden']}" for m in first)
    )

