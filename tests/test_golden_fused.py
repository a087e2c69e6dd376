"""FusedMadam (one call per step: quantise, update, decode) against GoldenMadam.step and decode_bf16, bit for bit."""

import copy as copy_module
import pickle

import numba
import numpy as np
import pytest

import lnsim
from lnsim.golden import FusedMadam, GoldenMadam, decode_bf16
from lnsim.golden.datapath import _PARALLEL_MIN
from lnsim.golden.fused import LUT_MAX_BITS
from lnsim.golden.loops import _FUSED_CHUNK
from lnsim.validation import SpecError

SPECIAL = np.array([np.nan, -np.nan, np.inf, -np.inf, 0.0, -0.0, 1e-42, -3e-39, 3.3e38, -1e6, 6e-8], np.float32)


def _spec(bits, base, grad_format):
    if base == "pow2":
        fmt = lnsim.LNSFormat(bits, base="pow2", frac_bits=max(bits - 6, 3))
    else:
        fmt = lnsim.LNSFormat(bits, min(1.0, 4.0 / 2**bits))
    return lnsim.Spec(fmt, lnsim.MadamConfig.from_rungs(fmt, 3, 12, grad_format=grad_format))


def _tensors(spec, shapes, sigma_stars, seed):
    rng = np.random.default_rng(seed)
    return [GoldenMadam(rng.integers(0, 2, s), rng.integers(0, spec.fmt.code_max + 1, s), spec, sigma)
            for s, sigma in zip(shapes, sigma_stars)]


@pytest.mark.parametrize("grad_format", ["bfloat16", "float16", "float32"])
@pytest.mark.parametrize("base", ["natural", "pow2"])
@pytest.mark.parametrize("bits", [4, 12, LUT_MAX_BITS, LUT_MAX_BITS + 2])
def test_fused_step_equals_golden_madam_step_and_decoder(bits, base, grad_format):
    spec = _spec(bits, base, grad_format)
    # Neighbours with one sigma_star share a decode table; the last tensor has its own.
    shapes, sigmas = [(7, 5), (5,), (300,), (2, 3)], [0.5, 0.5, 2.0**-100, 1e3]
    fused = FusedMadam(_tensors(spec, shapes, sigmas, seed=bits))
    plain = _tensors(spec, shapes, sigmas, seed=bits)
    rng = np.random.default_rng(1)
    for step in range(25):
        grads = [(rng.standard_normal(s) * 10.0 ** rng.integers(-40, 5)).astype(np.float32) for s in shapes]
        if step in (3, 17):
            grads[2][: SPECIAL.size] = SPECIAL
        eta_rungs = 1 + step % 3
        got = fused.step(grads, eta_rungs)
        stats = [t.step(g, eta_rungs=eta_rungs) for t, g in zip(plain, grads)]
        assert got == lnsim.StepStats(nan=sum(s.nan for s in stats), inf=sum(s.inf for s in stats))
        for a, b, w in zip(fused.tensors, plain, fused.weights):
            np.testing.assert_array_equal(a.k, b.k)
            np.testing.assert_array_equal(a.state, b.state)
            assert a.t == b.t == fused.t == step + 1
            assert w.shape == b.shape and w.dtype == np.float32
            np.testing.assert_array_equal(w.view(np.uint32) >> 16, decode_bf16(spec.fmt, b.sign, b.k, b.sigma_star))
    assert fused.step([np.full(s, np.nan, np.float32) for s in shapes]).nan == sum(np.prod(s) for s in shapes)


def _grads_with_specials_at_chunk_edges(rng, shapes):
    """Gradients for ``shapes`` with NaN, +-Inf and the other special values around every chunk boundary of
    the flat buffer."""
    sizes = [int(np.prod(s)) for s in shapes]
    flat = rng.standard_normal(sum(sizes)).astype(np.float32)
    for edge in range(_FUSED_CHUNK, flat.size, _FUSED_CHUNK):
        flat[edge - SPECIAL.size // 2: edge - SPECIAL.size // 2 + SPECIAL.size] = SPECIAL
    return [g.reshape(s) for g, s in zip(np.split(flat, np.cumsum(sizes)[:-1]), shapes)]


# Each pair compiles its own threaded kernel (some 30 s): the diagonal covers every width and format in the default
# run, the rest of the grid runs under -m slow.
_PARALLEL_DIAGONAL = {(8, "bfloat16"), (LUT_MAX_BITS, "float16"), (LUT_MAX_BITS + 2, "float32")}


@pytest.mark.parametrize("bits, grad_format", [
    pytest.param(b, g, marks=() if (b, g) in _PARALLEL_DIAGONAL else pytest.mark.slow)
    for b in (8, LUT_MAX_BITS, LUT_MAX_BITS + 2) for g in ("bfloat16", "float16", "float32")])
def test_parallel_step_equals_serial_step_and_golden_madam(bits, grad_format):
    """The threaded step, at any thread count, gives the serial step's and GoldenMadam's bits and counts.

    At 8 bits a rung moves most bfloat16 weights (at 16, one rung is far below a bfloat16 step)."""
    spec = _spec(bits, "natural", grad_format)
    # Tensors ending just before, on and after chunk boundaries; sigma_star segments crossing them.
    shapes = [(_FUSED_CHUNK - 1,), (3, 7), (_FUSED_CHUNK + 5,), (2 * _FUSED_CHUNK + 300,), (17,)]
    sigmas = [0.5, 0.5, 2.0, 2.0, 1e-3]
    assert sum(np.prod(s) for s in shapes) >= _PARALLEL_MIN  # large enough for the threads to run
    parallel = FusedMadam(_tensors(spec, shapes, sigmas, seed=bits), parallel=True)
    serial = FusedMadam(_tensors(spec, shapes, sigmas, seed=bits))
    plain = _tensors(spec, shapes, sigmas, seed=bits)
    if bits <= LUT_MAX_BITS:
        assert parallel._fused[0].targetoptions["parallel"] and not serial._fused[0].targetoptions["parallel"]
    rng = np.random.default_rng(2)
    threads = numba.get_num_threads()
    try:
        for step in range(4):
            numba.set_num_threads(1 + step % min(2, numba.config.NUMBA_NUM_THREADS))
            grads = _grads_with_specials_at_chunk_edges(rng, shapes)
            eta_rungs = 1 + step % 3
            before = parallel._wbits.copy()
            got = parallel.step(grads, eta_rungs)
            if bits == 8:
                assert np.count_nonzero(parallel._wbits != before) > before.size // 4
            assert serial.step(grads, eta_rungs) == got
            stats = [t.step(g, eta_rungs=eta_rungs) for t, g in zip(plain, grads)]
            assert got == lnsim.StepStats(nan=sum(s.nan for s in stats), inf=sum(s.inf for s in stats))
            assert got.nan >= 2 * 4 and got.inf >= 2 * 4  # SPECIAL at four chunk edges
            np.testing.assert_array_equal(parallel.k, serial.k)
            np.testing.assert_array_equal(parallel.state, serial.state)
            for a, b, w, ws in zip(parallel.tensors, plain, parallel.weights, serial.weights):
                np.testing.assert_array_equal(a.k, b.k)
                np.testing.assert_array_equal(a.state, b.state)
                np.testing.assert_array_equal(w.view(np.uint32), ws.view(np.uint32))
                np.testing.assert_array_equal(w.view(np.uint32) >> 16, decode_bf16(spec.fmt, b.sign, b.k, b.sigma_star))
    finally:
        numba.set_num_threads(threads)


@pytest.mark.parametrize("parallel", [False, True])
@pytest.mark.parametrize("grad_format", ["bfloat16", "float16", "float32"])
def test_step_with_gradients_written_into_grads_equals_step_with_arrays(grad_format, parallel):
    spec = _spec(LUT_MAX_BITS, "natural", grad_format)
    shapes, sigmas = [(3, _FUSED_CHUNK // 3), (5,), (_FUSED_CHUNK + 1,)], [0.5, 0.5, 3.0]
    direct = FusedMadam(_tensors(spec, shapes, sigmas, seed=3), parallel=parallel)
    copied = FusedMadam(_tensors(spec, shapes, sigmas, seed=3), parallel=parallel)
    assert [g.shape for g in direct.grads] == shapes and all(g.dtype == np.float32 for g in direct.grads)
    buffer = direct.grads[0].base
    assert buffer.size == sum(g.size for g in direct.grads) and all(g.base is buffer for g in direct.grads)
    rng = np.random.default_rng(4)
    for step in range(3):
        grads = [rng.standard_normal(s) * 1e-3 for s in shapes]  # float64: step(grads) rounds them to float32
        grads[2][-SPECIAL.size:] = SPECIAL
        for view, g in zip(direct.grads, grads):
            np.copyto(view, g, casting="same_kind")
        assert direct.step(None, 2) == copied.step(grads, 2)
        np.testing.assert_array_equal(direct.k, copied.k)
        np.testing.assert_array_equal(direct.state, copied.state)
        for a, b in zip(direct.weights, copied.weights):
            np.testing.assert_array_equal(a.view(np.uint32), b.view(np.uint32))
        for a, b in zip(copied.grads, grads):  # step(grads) leaves this step's float32 gradients in grads
            np.testing.assert_array_equal(a, b.astype(np.float32))
    assert direct.step(None) == copied.step(None)  # both step with the last gradients once more
    np.testing.assert_array_equal(direct.k, copied.k)
    np.testing.assert_array_equal(direct.state, copied.state)
    assert direct.t == copied.t == 4


@pytest.mark.parametrize("parallel", [False, True])
@pytest.mark.parametrize("grad_format", ["bfloat16", "float16", "float32"])
def test_step_from_gradients_where_they_lie_equals_step_with_arrays(grad_format, parallel):
    """step_from reads contiguous float32 arrays in place (across chunk and strip edges, tensors of odd sizes)
    and copies the rest (None, float64, non-contiguous, an alias of the weights it writes): same bits."""
    spec = _spec(LUT_MAX_BITS if grad_format == "float16" else 8, "natural", grad_format)
    shapes = [(_FUSED_CHUNK - 1,), (3, 7), (_FUSED_CHUNK + 5,), (2 * _FUSED_CHUNK + 300,), (17,), (9, 4)]
    sigmas = [0.5, 0.5, 2.0, 2.0, 1e-3, 1.0]
    direct = FusedMadam(_tensors(spec, shapes, sigmas, seed=5), parallel=parallel)
    copied = FusedMadam(_tensors(spec, shapes, sigmas, seed=5), parallel=parallel)
    rng = np.random.default_rng(6)
    threads = numba.get_num_threads()
    try:
        for step in range(4):
            numba.set_num_threads(1 + step % min(2, numba.config.NUMBA_NUM_THREADS))
            grads = _grads_with_specials_at_chunk_edges(rng, shapes)
            given = list(grads)
            given[1] = grads[1].astype(np.float64)
            given[5] = np.asfortranarray(grads[5])
            if step == 1:
                direct.grads[4][...] = grads[4]
                given[4] = None  # the gradient already in grads
            if step == 2:
                grads[3] = direct.weights[3].copy()
                given[3] = direct.weights[3]  # read before it is written: copied first
            eta_rungs = 1 + step % 3
            got = direct.step_from(given, eta_rungs)
            assert got == copied.step(grads, eta_rungs)
            assert got.nan >= 2 * 4 or step == 2
            np.testing.assert_array_equal(direct.k, copied.k)
            np.testing.assert_array_equal(direct.state, copied.state)
            np.testing.assert_array_equal(direct._wbits, copied._wbits)
            assert direct.t == copied.t == step + 1
    finally:
        numba.set_num_threads(threads)
    with pytest.raises(SpecError, match=r"grads\[2\] must have shape"):
        direct.step_from([np.zeros(s, np.float32) for s in shapes[:2]] + [np.zeros(3, np.float32)] + shapes[3:])
    with pytest.raises(SpecError, match="one per tensor"):
        direct.step_from([None])
    assert direct.t == 4


def test_weights_before_any_step_are_decoded():
    spec = _spec(12, "natural", "bfloat16")
    ts = _tensors(spec, [(3, 4), (4,)], [0.25, 0.25], seed=0)
    fused = FusedMadam(ts)
    for t, w in zip(ts, fused.weights):
        np.testing.assert_array_equal(w, t.weights_bf16())


def test_tensors_become_views_of_the_flat_buffers():
    spec = _spec(8, "natural", "bfloat16")
    ts = _tensors(spec, [(2, 2), (3,)], [1.0, 1.0], seed=0)
    fused = FusedMadam(ts)
    fused.step([np.ones((2, 2), np.float32), -np.ones(3, np.float32)])
    assert np.shares_memory(ts[0].k, fused.k) and np.shares_memory(ts[1].state, fused.state)
    np.testing.assert_array_equal(np.concatenate([t.k.reshape(-1) for t in ts]), fused.k)
    with pytest.raises(ValueError):
        ts[0].sign[0, 0] = 1  # signs stay frozen


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda s: [], r"tensors must be a non-empty list of GoldenMadam"),
        (lambda s: [np.zeros(3)], r"tensors must be a non-empty list of GoldenMadam"),
        (lambda s: _tensors(s, [(2,)], [1.0], 0) + _tensors(_spec(10, "natural", "bfloat16"), [(2,)], [1.0], 0),
         r"tensors must share one spec and one step count t"),
    ],
)
def test_construction_errors(make, message):
    with pytest.raises(lnsim.SpecError, match=message):
        FusedMadam(make(_spec(8, "natural", "bfloat16")))


def test_parallel_must_be_a_bool():
    ts = _tensors(_spec(8, "natural", "bfloat16"), [(2,)], [1.0], 0)
    with pytest.raises(lnsim.SpecError, match=r"^parallel must be True or False, not 1$"):
        FusedMadam(ts, parallel=1)
    assert ts[0]._stepper() is None  # refused before the tensors were fused


def test_step_errors_change_nothing():
    spec = _spec(8, "natural", "bfloat16")
    fused = FusedMadam(_tensors(spec, [(2, 2), (3,)], [1.0, 1.0], seed=0))
    k0, st0 = fused.k.copy(), fused.state.copy()
    with pytest.raises(lnsim.SpecError, match=r"grads must hold 2 arrays \(one per tensor\), not 1"):
        fused.step([np.ones((2, 2))])
    with pytest.raises(lnsim.SpecError, match=r"grads\[1\] must have shape \(3,\), not \(4,\)"):
        fused.step([np.ones((2, 2)), np.ones(4)])
    np.testing.assert_array_equal(fused.k, k0)
    np.testing.assert_array_equal(fused.state, st0)
    assert fused.t == 0


def test_a_fused_member_refuses_a_direct_step():
    """The FusedMadam steps its members' arrays and t; a direct step of a member would desynchronise them."""
    spec = _spec(8, "natural", "bfloat16")
    ts = _tensors(spec, [(2, 2), (3,)], [1.0, 1.0], seed=0)
    fused = FusedMadam(ts)
    grads = [np.ones((2, 2), np.float32), -np.ones(3, np.float32)]
    fused.step(grads)
    k0, st0 = fused.k.copy(), fused.state.copy()
    message = r"this GoldenMadam is stepped by a FusedMadam: call FusedMadam\.step, not GoldenMadam\.step"
    with pytest.raises(lnsim.SpecError, match=message):
        ts[0].step(grads[0])
    with pytest.raises(lnsim.SpecError, match=message):
        ts[1].step_bits(lnsim.grad_to_bits(grads[1]))
    np.testing.assert_array_equal(fused.k, k0)
    np.testing.assert_array_equal(fused.state, st0)
    assert ts[0].t == ts[1].t == fused.t == 1
    fused.step(grads)
    assert ts[0].t == ts[1].t == fused.t == 2


def test_a_fused_member_cannot_join_a_second_fused_madam():
    spec = _spec(8, "natural", "bfloat16")
    ts = _tensors(spec, [(2, 2), (3,)], [1.0, 1.0], seed=0)
    fused = FusedMadam(ts)
    with pytest.raises(lnsim.SpecError, match=r"tensors\[1\] is already stepped by another FusedMadam"):
        FusedMadam(_tensors(spec, [(2,)], [1.0], seed=1) + [ts[1]])
    other = _tensors(spec, [(2,)], [1.0], seed=1)
    with pytest.raises(lnsim.SpecError, match=r"tensors\[1\] appears twice in tensors"):
        FusedMadam(other + other)
    for copy in (pickle.loads(pickle.dumps(ts[1])), copy_module.copy(ts[1]), copy_module.deepcopy(ts[1])):
        k0 = fused.k.copy()
        copy.step(-np.ones(3, np.float32))  # arrays of its own: free to step, and the fused buffers do not move
        assert copy.t == 1 and not np.shares_memory(copy.k, fused.k) and not np.shares_memory(copy.state, fused.state)
        np.testing.assert_array_equal(fused.k, k0)
    fused.step([np.ones((2, 2), np.float32), -np.ones(3, np.float32)])
    assert ts[1].t == 1


def test_members_step_on_their_own_once_the_fused_madam_is_gone():
    spec = _spec(8, "natural", "bfloat16")
    ts = _tensors(spec, [(2, 2), (3,)], [1.0, 1.0], seed=0)
    plain = _tensors(spec, [(2, 2), (3,)], [1.0, 1.0], seed=0)
    grads = [np.ones((2, 2), np.float32), -np.ones(3, np.float32)]
    FusedMadam(ts).step(grads)  # dropped at once: nothing else steps the tensors
    for t, p, g in zip(ts, plain, grads):
        p.step(g)
        t.step(g)
        p.step(g)
        assert t.t == p.t == 2
        np.testing.assert_array_equal(t.k, p.k)
        np.testing.assert_array_equal(t.state, p.state)
