"""FusedMadam (one call per step: quantise, update, decode) against GoldenMadam.step and decode_bf16, bit for bit."""

import copy as copy_module
import pickle

import numpy as np
import pytest

import lnsim
from lnsim.golden import FusedMadam, GoldenMadam, decode_bf16
from lnsim.golden.fused import LUT_MAX_BITS

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
