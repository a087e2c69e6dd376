"""lnsim.golden.lut: table lookups that compile to register permutes give exactly the table's entries."""

from __future__ import annotations

import numba
import numpy as np
import pytest

from lnsim.golden.lut import MAX_PERMUTE_ENTRIES, Lut, permutes_available


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
