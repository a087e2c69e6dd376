"""lnsim.golden.lut: table lookups that compile to register permutes give exactly the table's entries."""

from __future__ import annotations

import numba
import numpy as np
import pytest

from lnsim.golden import lut as lut_module
from lnsim.golden.lut import MAX_PERMUTE_ENTRIES, MIN_LLVM_VERSION, Lut, permutes_available, permutes_supported


@numba.njit
def _lookup_all(lut, idx, out):
    for i in range(idx.shape[0]):
        out[i] = lut[idx[i]]


def _tables():
    rng = np.random.default_rng(3)
    extremes = np.array([-(2**31), 2**31 - 1, 0, -1, 1], np.int64)
    for n in (1, 2, 16, 32, 64, 128, 256, 512):
        t = rng.integers(-(2**31), 2**31, n)
        t[: min(n, 5)] = extremes[: min(n, 5)]
        yield t.astype(np.int32)


@pytest.mark.parametrize("table", list(_tables()), ids=lambda t: f"{len(t)}-entries")
def test_every_entry_in_python_and_compiled(table):
    """Each index of the table, in every lane position of the vector loop (and the loop's remainder)."""
    lut = Lut(table)
    n = len(table)
    idx = np.concatenate([np.arange(n), np.random.default_rng(n).integers(0, n, 16 * n + 7)]).astype(np.int32)
    out = np.empty(idx.shape, np.int32)
    _lookup_all(lut, idx, out)
    assert np.array_equal(out, table[idx])
    assert [lut[j] for j in range(n)] == table.tolist()


@pytest.mark.skipif(not permutes_available(), reason="this CPU has no AVX-512 (the lookups stay gathers)")
def test_a_vectorised_lookup_uses_permutes_not_gathers():
    lut = Lut(np.arange(128, dtype=np.int32) * 7919)
    idx = np.arange(4096, dtype=np.int32) % 128
    out = np.empty(idx.shape, np.int32)
    _lookup_all(lut, idx, out)
    asm = _lookup_all.inspect_asm((numba.typeof(lut), numba.typeof(idx), numba.typeof(out)))
    assert "vpermi2d" in asm or "vpermt2d" in asm
    assert "gather" not in asm
    assert MAX_PERMUTE_ENTRIES >= 128


@pytest.mark.parametrize("bad", [np.zeros(0, np.int32), np.zeros(3, np.int32), np.zeros((2, 2), np.int32)])
def test_a_table_must_have_a_power_of_two_entries(bad):
    with pytest.raises(ValueError, match=r"a Lut table must be a non-empty 1-d array of 2\*\*n entries"):
        Lut(bad)


AVX512 = {"avx512f": True, "avx2": True}


@pytest.mark.parametrize(
    "cpu_name, llvm_version, features, expected",
    [
        (None, (22, 1, 0), AVX512, True),
        ("host", (16, 0, 0), AVX512, True),
        (None, (15, 0, 7), AVX512, False),  # llvmlite 0.44: no memory(none) attribute, plain loads
        (None, (14, 0, 6), AVX512, False),  # llvmlite 0.42 / 0.43 (numba 0.59 / 0.60)
        (None, (22, 1, 0), {"avx512f": False, "avx2": True}, False),
        (None, (22, 1, 0), {}, False),
        ("skylake-avx512", (22, 1, 0), AVX512, False),  # compiled for another CPU than this one
    ],
)
def test_permutes_need_the_host_cpu_llvm_16_and_avx512(cpu_name, llvm_version, features, expected):
    assert permutes_supported(cpu_name, llvm_version, features) is expected
    assert MIN_LLVM_VERSION == (16, 0, 0)


def test_without_permutes_a_lookup_is_a_plain_load(monkeypatch):
    """The fallback: no vector variant, no attributes LLVM < 16 cannot parse; the entries are the same."""
    monkeypatch.setattr(lut_module, "permutes_available", lambda: False)
    table = np.arange(64, dtype=np.int32) * -7
    lut = Lut(table)

    @numba.njit
    def lookup_all_plain(lut, idx, out):  # a new function: compiled now, with the fallback
        for i in range(idx.shape[0]):
            out[i] = lut[idx[i]]

    idx = np.arange(640, dtype=np.int32) % 64
    out = np.empty(idx.shape, np.int32)
    lookup_all_plain(lut, idx, out)
    assert np.array_equal(out, table[idx])
    sig = (numba.typeof(lut), numba.typeof(idx), numba.typeof(out))
    ir = lookup_all_plain.inspect_llvm(sig)
    assert "vector-function-abi-variant" not in ir and "memory(none)" not in ir
    assert "vpermi2d" not in lookup_all_plain.inspect_asm(sig)
