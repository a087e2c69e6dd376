"""Small int32 tables whose lookups in a vectorised Numba loop compile to register permutes, not gathers.

A table lookup in a loop that LLVM vectorises becomes a gather (``vpgatherdd``), which costs about as much as
the rest of the golden update together. On a CPU with AVX-512, a table of up to 256 entries fits in
registers: ``vpermi2d`` looks up 32 entries per instruction and a few selects on the index's upper bits pick
among them. Numba cannot express that directly, so :class:`Lut` wraps a table and its lookup ``lut[j]``
compiles to a call of a small scalar function carrying LLVM's ``vector-function-abi-variant`` attribute: the
loop vectoriser replaces the call with the 16-lane variant built here from permutes. Elsewhere (no AVX-512,
an LLVM older than :data:`MIN_LLVM_VERSION`, larger tables, a loop that is not vectorised) the lookup is the
plain load it always was.

The results are the table's entries either way: ``lut[j] == table[j & (len(table) - 1)]`` (lengths are powers
of two, and callers keep ``j`` in range).
"""

from __future__ import annotations

import functools
import hashlib
import operator

import numba
import numpy as np
from llvmlite import binding as llvm
from llvmlite import ir
from numba.core import types
from numba.core.imputils import lower_constant
from numba.extending import NativeValue, intrinsic, models, overload, register_model, typeof_impl, unbox

__all__ = ["Lut", "permutes_available", "permutes_supported", "MIN_LLVM_VERSION"]

#: Oldest LLVM that takes the scalar function's attributes as written here: ``memory(none)`` is LLVM 16
#: syntax (LLVM 14 and 15, as in llvmlite < 0.45, spell it ``readnone`` and reject the module).
MIN_LLVM_VERSION = (16, 0, 0)
#: Entries of the largest table looked up with permutes (8 x vpermi2d and a 3-level select tree).
MAX_PERMUTE_ENTRIES = 256
#: Lanes of the vector variant: one zmm register of int32.
_LANES = 16
_I32 = ir.IntType(32)
_V = ir.VectorType(_I32, _LANES)

#: Table contents by key, for code generation (a compiled loop loaded from Numba's cache needs none).
_TABLES: dict[str, np.ndarray] = {}


def permutes_supported(cpu_name, llvm_version, features) -> bool:
    """Whether lookups may compile to permutes, given Numba's target CPU, the LLVM version and the CPU features.

    ``cpu_name``: ``numba.config.CPU_NAME`` (None or ``"host"``: the code runs on the CPU it is compiled on);
    ``llvm_version``: ``(major, minor, patch)``, as ``llvmlite.binding.llvm_version_info``; ``features``: a
    mapping of feature names to booleans, as ``llvmlite.binding.get_host_cpu_features()``. True only for the
    host CPU, LLVM >= :data:`MIN_LLVM_VERSION` and AVX-512F; otherwise the lookups are plain loads.
    """
    if cpu_name not in (None, "host"):
        return False
    if tuple(int(v) for v in llvm_version) < MIN_LLVM_VERSION:
        return False
    return bool(features.get("avx512f", False))


@functools.cache
def permutes_available() -> bool:
    """:func:`permutes_supported` for this process: Numba's target, llvmlite's LLVM and this host's CPU."""
    try:
        features = llvm.get_host_cpu_features()
    except RuntimeError:  # LLVM cannot list this host's features: plain loads are right on every CPU
        features = {}
    return permutes_supported(numba.config.CPU_NAME, llvm.llvm_version_info, features)


class Lut:
    """An int32 table of 2**n entries for jitted code; ``lut[j]`` is ``table[j]`` (see the module docstring)."""

    def __init__(self, table):
        t = np.array(table, dtype=np.int32)
        n = t.shape[0] if t.ndim == 1 else 0
        if n == 0 or n & (n - 1):
            raise ValueError(f"a Lut table must be a non-empty 1-d array of 2**n entries, not shape {t.shape}")
        t.flags.writeable = False
        self.table = t
        self.key = f"{n}_{hashlib.sha256(t.tobytes()).hexdigest()[:20]}"
        _TABLES.setdefault(self.key, t)

    def __getitem__(self, j):
        return int(self.table[j])


class LutType(types.Type):
    """Numba type of a :class:`Lut`: the table is part of the type (its key), so it is known when compiling."""

    def __init__(self, key: str):
        self.table_key = key
        super().__init__(name=f"Lut({key})")


@typeof_impl.register(Lut)
def _typeof_lut(val, c):
    return LutType(val.key)


@register_model(LutType)
class _LutModel(models.StructModel):
    def __init__(self, dmm, fe_type):
        super().__init__(dmm, fe_type, [])


@lower_constant(LutType)
def _lower_lut_constant(context, builder, ty, pyval):
    return context.get_constant_null(ty)


@unbox(LutType)
def _unbox_lut(typ, obj, c):
    return NativeValue(c.context.get_constant_null(typ))


def _table_global(module, key: str, table: np.ndarray):
    name = f"lnsim_lut_{key}"
    g = module.globals.get(name)
    if g is None:
        aty = ir.ArrayType(_I32, len(table))
        g = ir.GlobalVariable(module, aty, name)
        g.linkage = "internal"
        g.global_constant = True
        g.initializer = ir.Constant(aty, [int(x) for x in table])
    return g


def _vector_variant(module, key: str, table: np.ndarray):
    """``<16 x i32> f(<16 x i32> j)``: ``table[j & (n-1)]`` per lane, by vpermi2d over 32-entry blocks and selects."""
    name = f"lnsim_lut_{key}_v{_LANES}"
    fn = module.globals.get(name)
    if fn is not None:
        return fn
    perm = module.globals.get("llvm.x86.avx512.vpermi2var.d.512")
    if perm is None:
        perm = ir.Function(module, ir.FunctionType(_V, [_V, _V, _V]), "llvm.x86.avx512.vpermi2var.d.512")
    fn = ir.Function(module, ir.FunctionType(_V, [_V]), name)
    # weak_odr: kept although nothing calls it before the vectoriser runs; identical copies in other modules merge.
    fn.linkage = "weak_odr"
    fn.attributes.add("alwaysinline")
    b = ir.IRBuilder(fn.append_basic_block())
    j = fn.args[0]
    n = len(table)
    padded = np.resize(table, max(n, 32))  # a 16-entry table repeats: j & 31 then reads the same entry
    blocks = [
        b.call(perm, [ir.Constant(_V, [int(x) for x in padded[o:o + 16]]), j,
                      ir.Constant(_V, [int(x) for x in padded[o + 16:o + 32]])])
        for o in range(0, len(padded), 32)
    ]
    bit = 5
    while len(blocks) > 1:  # pick by the index's bits 5, 6, 7
        mask = ir.Constant(_V, [1 << bit] * _LANES)
        low = b.icmp_unsigned("==", b.and_(j, mask), ir.Constant(_V, [0] * _LANES))
        blocks = [b.select(low, blocks[i], blocks[i + 1]) for i in range(0, len(blocks), 2)]
        bit += 1
    b.ret(blocks[0])
    return fn


def _scalar_function(module, key: str, table: np.ndarray):
    """``i32 f(i32 j)`` = ``table[j & (n-1)]``; with the vector variant attached where permutes are available."""
    fname = f"lnsim_lut_{key}_at"
    fn = module.globals.get(fname)
    if fn is not None:
        return fn
    fn = ir.Function(module, ir.FunctionType(_I32, [_I32]), fname)
    fn.linkage = "internal"
    fn.attributes.add("nounwind")
    if permutes_available() and len(table) <= MAX_PERMUTE_ENTRIES:
        variant = _vector_variant(module, key, table)
        # Not inlined before the loop vectoriser, which swaps the call for the variant (LLVM's vector function
        # ABI: "e" = AVX-512, N = no mask, 16 lanes, "v" = a vector argument).
        fn.attributes.add("noinline")
        set.add(fn.attributes, f'"vector-function-abi-variant"="_ZGVeN{_LANES}v_{fname}({variant.name})"')
        # llvmlite knows neither attribute by name; both are needed for the call to count as vectorisable.
        set.add(fn.attributes, "willreturn")
        set.add(fn.attributes, "memory(none)")  # reads only the constant table
    else:
        fn.attributes.add("alwaysinline")
    b = ir.IRBuilder(fn.append_basic_block())
    g = _table_global(module, key, table)
    idx = b.and_(fn.args[0], ir.Constant(_I32, len(table) - 1))
    b.ret(b.load(b.gep(g, [ir.Constant(_I32, 0), idx], inbounds=True)))
    return fn


@intrinsic
def _lut_at(typingctx, lut, j):
    if not isinstance(lut, LutType) or not isinstance(j, types.Integer):
        return None

    def codegen(context, builder, sig, args):
        key = sig.args[0].table_key
        jv = context.cast(builder, args[1], sig.args[1], types.int32)
        return builder.call(_scalar_function(builder.module, key, _TABLES[key]), [jv])

    return types.int32(lut, j), codegen


@overload(operator.getitem)
def _lut_getitem(lut, j):
    if isinstance(lut, LutType) and isinstance(j, types.Integer):
        return lambda lut, j: _lut_at(lut, j)

