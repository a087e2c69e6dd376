"""lnsim.torch.LNSMadam against GoldenMadam stepping the same gradients, bit for bit; its lr rounding,
schedulers, param groups, state_dict round trips and refusals; the float32 Madam against lnsim.reference."""

import io
import subprocess
import sys
import textwrap

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from lnsim import GoldenMadam, Spec, SpecError, encode, reference  # noqa: E402
from lnsim.torch import LNSMadam, Madam, eta_rungs_for, param_groups  # noqa: E402

SPECIAL = [np.nan, -np.inf, np.inf, 0.0, -0.0, 1e-42, 3.3e38, -1e6]
SHAPES = [(7, 5), (33,), (3, 2, 4)]


def _options(bits, base, grad_format):
    if base == "pow2":
        return {"bits": bits, "base": "pow2", "frac_bits": max(bits - 6, 2), "grad_format": grad_format}
    return {"bits": bits, "eta0": min(0.5, 4.0 / 2**bits), "eta_rungs": 1, "eta_star_rungs": 4,
            "grad_format": grad_format}


def _params(shapes, seed, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    out = []
    for s in shapes:
        w = torch.randn(s, generator=g, dtype=torch.float64) * 0.1
        w[w.abs() < 1e-6] = 1e-3
        out.append(torch.nn.Parameter(w.to(dtype)))
    return out


def _golden_twin(p, spec, sigma_scale=3.0):
    """The GoldenMadam LNSMadam should hold for p: sigma_star from p's RMS in float64, nearest codes."""
    w = p.detach().double().numpy()
    sigma_star = sigma_scale * float(np.sqrt(np.mean(w * w)))
    sign, k = encode(w, spec.fmt, sigma_star)
    return GoldenMadam(sign, k, spec, sigma_star)


def _gradient(shape, rng, step):
    g = (rng.standard_normal(shape) * 10.0 ** rng.integers(-6, 2)).astype(np.float32)
    flat = g.reshape(-1)
    if step % 3 == 1:  # NaN, Inf, zero and extreme gradients in some steps
        idx = rng.choice(flat.size, size=min(len(SPECIAL), flat.size), replace=False)
        flat[idx] = np.array(SPECIAL[: idx.size], np.float32)
    if step % 5 == 4:
        flat[:] = 0.0
    return g


def _assert_same(opt, p, twin):
    sign, k = opt.codes(p)
    np.testing.assert_array_equal(sign, twin.sign)
    np.testing.assert_array_equal(k, twin.k)
    np.testing.assert_array_equal(opt.golden(p).state, twin.state)
    np.testing.assert_array_equal(p.detach().float().numpy().view(np.uint32), twin.weights_bf16().view(np.uint32))


@pytest.mark.parametrize("grad_format", ["bfloat16", "float16", "float32"])
@pytest.mark.parametrize("base", ["natural", "pow2"])
@pytest.mark.parametrize("bits", [4, 8, 12, 16, 18])
def test_codes_equal_golden_madam_bit_for_bit(bits, base, grad_format):
    spec = Spec.from_options(**_options(bits, base, grad_format))
    params = _params(SHAPES, seed=bits)
    twins = [_golden_twin(p, spec) for p in params]
    opt = LNSMadam(params, spec=spec)
    rng = np.random.default_rng(bits)
    nan = inf = 0
    for step in range(12):
        grads = [_gradient(p.shape, rng, step) for p in params]
        for p, g in zip(params, grads):
            p.grad = torch.from_numpy(g.copy())
        opt.step()
        for twin, g in zip(twins, grads):
            st = twin.step(g)
            nan, inf = nan + st.nan, inf + st.inf
    for p, twin in zip(params, twins):
        _assert_same(opt, p, twin)
    assert (opt.total_stats.nan, opt.total_stats.inf) == (nan, inf)
    assert nan > 0 and inf > 0
    assert any((t.k != _golden_twin(p, spec).k).any() for p, t in zip(params, twins))  # the codes moved


@pytest.mark.parametrize("grad_format", ["bfloat16", "float32"])
def test_a_large_group_steps_on_threads_bit_for_bit(grad_format):
    numba = pytest.importorskip("numba")
    spec = Spec.from_options(bits=12, eta0=0.001, grad_format=grad_format)
    params = _params([(190, 180), (180,)], seed=8) + _params([(40, 9)], seed=9, dtype=torch.float64)
    assert sum(p.numel() for p in params) >= 2**15
    twins = [_golden_twin(p, spec) for p in params]
    opt = LNSMadam(params, spec=spec)
    assert opt._fused[0]._threads  # the group is large enough for the threaded kernel
    rng = np.random.default_rng(11)
    threads = numba.get_num_threads()
    numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
    try:
        for step in range(6):
            grads = [_gradient(p.shape, rng, step) for p in params]
            for p, g in zip(params, grads):
                p.grad = torch.from_numpy(g.astype(np.float64) if p.dtype == torch.float64 else g.copy())
            params[1].grad = None if step == 2 else params[1].grad  # no gradient: steps with zeros
            if step == 3:  # a non-contiguous float32 gradient is copied, a contiguous one read in place
                params[0].grad = torch.from_numpy(grads[0].T.copy()).T
            opt.step()
            grads[1] = np.zeros_like(grads[1]) if step == 2 else grads[1]
            for twin, g in zip(twins, grads):
                twin.step(g)
    finally:
        numba.set_num_threads(threads)
    for p, twin in zip(params, twins):
        _assert_same(opt, p, twin)
    assert p.dtype == torch.float64 and params[0].data_ptr() == opt._fused[0].weights[0].ctypes.data


def test_param_groups_with_their_own_formats_and_lr_schedules():
    params = _params(SHAPES, seed=1)
    before = [p.detach().clone() for p in params]
    opt = LNSMadam([{"params": params[:2], "bits": 8, "eta0": 0.016, "eta": 0.016},
                    {"params": params[2:], "bits": 12, "grad_format": "float16", "lr": 0.004}],
                   eta0=0.001, bits=10)
    s0, s1 = opt.spec_for(params[0]), opt.spec_for(params[2])
    assert (s0.fmt.bits, s0.fmt.eta0, s0.eta_rungs) == (8, 0.016, 1)
    assert (s1.fmt.bits, s1.fmt.eta0, s1.cfg.grad_format.value, s1.eta_rungs) == (12, 0.001, "float16", 10)
    assert [opt.eta_rungs(g) for g in opt.param_groups] == [1, 4]
    twins = [_golden_twin(w, opt.spec_for(p)) for w, p in zip(before, params)]
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
    rng = np.random.default_rng(0)
    seen = []
    for step in range(6):
        grads = [_gradient(p.shape, rng, step) for p in params]
        for p, g in zip(params, grads):
            p.grad = torch.from_numpy(g.copy())
        rungs = [opt.eta_rungs(g) for g in opt.param_groups]
        seen.append(rungs)
        opt.step()
        for twin, g, r in zip(twins, grads, (rungs[0], rungs[0], rungs[1])):
            twin.step(g, eta_rungs=r)
        sched.step()
    assert seen == [[1, 4], [1, 4], [1, 2], [1, 2], [1, 1], [1, 1]]  # 0.004 -> 0.002 -> 0.001; never below 1
    for p, twin in zip(params, twins):
        _assert_same(opt, p, twin)


def test_reduce_lr_on_plateau_lowers_the_rungs():
    p = _params([(4, 4)], seed=2)
    opt = LNSMadam(p, bits=12)
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=0.5, patience=0)
    assert opt.eta_rungs(opt.param_groups[0]) == 10
    for loss in (1.0, 1.0, 1.0):
        sched.step(loss)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.0025)
    assert opt.eta_rungs(opt.param_groups[0]) == 2  # 2.5 rungs: halves round to even


@pytest.mark.parametrize("lr, rungs", [(1.25, 2), (1.75, 4), (1.0, 2), (0.01, 1), (9.0, 6), (2.9, 6)])
def test_lr_rounds_to_whole_rungs_between_one_and_eta_star(lr, rungs):
    spec = Spec.from_options(bits=4, eta0=0.5, eta_rungs=2, eta_star_rungs=6)
    assert eta_rungs_for(lr, spec) == rungs


@pytest.mark.parametrize("lr", [0.0, -1.0, float("nan"), float("inf"), "x"])
def test_bad_lr_is_one_line_naming_lr(lr):
    p = _params([(3,)], seed=0)
    opt = LNSMadam(p, bits=8)
    opt.param_groups[0]["lr"] = lr
    p[0].grad = torch.ones(3)
    with pytest.raises(SpecError, match=r"^lr must be a finite number > 0 \(eta in nepers\), not"):
        opt.step()


def test_weights_hold_the_decoder_values_in_each_dtype():
    for dtype in (torch.float32, torch.bfloat16, torch.float64):
        (p,) = _params([(20,)], seed=3, dtype=dtype)
        before = p.detach().clone()
        opt = LNSMadam([p], bits=10, eta0=0.004)
        twin = _golden_twin(before, opt.spec_for(p))
        np.testing.assert_array_equal(p.detach().float().numpy(), twin.weights_bf16())
        p.grad = torch.linspace(-1, 1, 20).to(dtype)
        opt.step()
        twin.step(torch.linspace(-1, 1, 20).to(dtype).float().numpy())
        np.testing.assert_array_equal(p.detach().float().numpy(), twin.weights_bf16())
        assert p.dtype == dtype


def test_float32_parameters_share_the_fused_buffer():
    (p,) = _params([(64,)], seed=4)
    opt = LNSMadam([p], bits=8, eta0=0.016)
    fused = opt._fused[0]
    assert p.data_ptr() == fused.weights[0].ctypes.data
    assert opt.state[p]["k"].data_ptr() == opt.golden(p).k.ctypes.data


def test_uniform_rungs_init_keeps_signs_and_spreads_codes_reproducibly():
    from lnsim.train.optim import init_depth_rungs

    params = _params([(50, 40)], seed=5)
    signs = (params[0].detach() < 0).numpy()
    a = LNSMadam(params, bits=12, init="uniform-rungs", seed=7)
    sign, k = a.codes(params[0])
    np.testing.assert_array_equal(sign.astype(bool), signs)
    depth = init_depth_rungs(a.spec_for(params[0]))
    assert depth == 4095 and k.max() <= depth and k.min() < 20
    assert abs(k.mean() - depth / 2) < 0.05 * depth  # uniform, not the weights' nearest rungs
    assert np.median(encode(params[0].detach().double().numpy(), a.spec_for(params[0]).fmt, 1.0)[1]) != np.median(k)
    b = LNSMadam(_params([(50, 40)], seed=5), bits=12, init="uniform-rungs", seed=7)
    np.testing.assert_array_equal(b.codes(b.param_groups[0]["params"][0])[1], k)


def test_parameters_madam_cannot_train_are_refused_by_name():
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.LayerNorm(4))
    with pytest.raises(SpecError, match=r"^parameter '1.bias' has 4 zero or non-finite elements of 4: Madam never"):
        LNSMadam(model.named_parameters(), bits=8)
    with pytest.raises(SpecError, match=r"^param group 0 parameter 0 has dtype torch.float16: LNSMadam needs"):
        LNSMadam([torch.ones(3, dtype=torch.float16)], bits=8)
    with pytest.raises(SpecError, match=r"^param group 0 parameter 0 has dtype torch.int64"):
        LNSMadam([torch.ones(3, dtype=torch.int64)], bits=8)
    with pytest.raises(SpecError, match=r"^param group 0 parameter 0 is on meta: LNSMadam steps CPU tensors only"):
        LNSMadam([torch.empty(3, device="meta")], bits=8)
    with pytest.raises(SpecError, match=r"^LNSMadam option must be one of .*, not 'bitz'"):
        LNSMadam([torch.ones(3)], bitz=8)
    with pytest.raises(SpecError, match=r"^give spec or spec options \(bits\), not both"):
        LNSMadam([torch.ones(3)], spec=Spec.from_options(), bits=8)
    with pytest.raises(SpecError, match=r"^param group 1: bits must be"):
        LNSMadam([{"params": [torch.ones(3)]}, {"params": [torch.ones(2)], "bits": 1}])
    with pytest.raises(SpecError, match=r"^param group 0: key must be one of .*, not 'weight_decay'"):
        LNSMadam([{"params": [torch.ones(3)], "weight_decay": 0.1}])


def test_param_groups_recipe_splits_or_reinitialises_small_parameters():
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.LayerNorm(4), torch.nn.Linear(4, 2))
    lns, floats = param_groups(model)
    assert [n for n, _ in lns] == ["0.weight", "2.weight"]
    assert [n for n, _ in floats] == ["0.bias", "1.weight", "1.bias", "2.bias"]
    lns, floats = param_groups(model, small="lns", fill=0.05, seed=1)
    assert floats == [] and len(lns) == 6
    assert set(model[1].bias.detach().abs().tolist()) == {np.float32(0.05)}
    assert set(model[1].bias.detach().sign().tolist()) == {-1.0, 1.0}
    opt = LNSMadam(lns, bits=8)  # every parameter now trainable by Madam
    assert len(opt.param_groups[0]["params"]) == 6


def _train(opt, params, steps, seed):
    rng = np.random.default_rng(seed)
    for step in range(steps):
        for p in params:
            p.grad = torch.from_numpy(_gradient(p.shape, rng, step))
        opt.step()


def test_state_dict_round_trip_through_torch_save_is_exact():
    params = _params(SHAPES, seed=6)
    opt = LNSMadam([{"params": params[:1], "bits": 16, "eta0": 0.001}, {"params": params[1:], "bits": 18, "eta0": 0.0002}])
    _train(opt, params, 5, seed=0)
    buf = io.BytesIO()
    torch.save(opt.state_dict(), buf)
    buf.seek(0)
    sd = torch.load(buf, weights_only=True)
    other = _params(SHAPES, seed=99)  # different weights: everything must come from the state
    opt2 = LNSMadam([{"params": other[:1]}, {"params": other[1:]}], bits=8)
    opt2.load_state_dict(sd)
    for p, q in zip(params, other):
        assert opt2.spec_for(q) == opt.spec_for(p)
        for a, b in zip(opt.codes(p), opt2.codes(q)):
            np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(opt.golden(p).state, opt2.golden(q).state)
        assert opt2.golden(q).sigma_star == opt.golden(p).sigma_star and opt2.golden(q).t == 5
        np.testing.assert_array_equal(p.detach().numpy(), q.detach().numpy())
        assert opt2.state[q]["state"].dtype == torch.uint32
    _train(opt, params, 3, seed=1)
    _train(opt2, other, 3, seed=1)
    for p, q in zip(params, other):
        np.testing.assert_array_equal(opt.codes(p)[1], opt2.codes(q)[1])


def test_state_dict_is_a_snapshot_and_bad_state_is_refused():
    params = _params([(5,)], seed=7)
    opt = LNSMadam(params, bits=8)
    sd = opt.state_dict()
    k0 = sd["state"][0]["k"].clone()
    _train(opt, params, 4, seed=2)
    assert torch.equal(sd["state"][0]["k"], k0)
    bad = opt.state_dict()
    bad["state"][0]["k"] = bad["state"][0]["k"].to(torch.float32)
    with pytest.raises(SpecError, match=r"^state_dict param group 0 parameter 0: k must be a uint8 tensor of shape"):
        opt.load_state_dict(bad)
    bad = opt.state_dict()
    bad["state"][0]["state"][:] = 1 << opt.spec_for(params[0]).cfg.state_man_bits  # exponent 1, mantissa 0
    with pytest.raises(SpecError, match=r"^state_dict param group 0 parameter 0: state must hold valid"):
        opt.load_state_dict(bad)


RESUME = textwrap.dedent("""
    import sys, numpy as np, torch
    from lnsim.torch import LNSMadam
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(10, 32), torch.nn.Tanh(), torch.nn.Linear(32, 4))
    opt = LNSMadam(model.named_parameters(), bits=10, eta0=0.004, eta=0.016)
    x = torch.randn(64, 10); y = torch.randint(0, 4, (64,))
    mode, path, steps = sys.argv[1], sys.argv[2], int(sys.argv[3])
    if mode == "resume":
        saved = torch.load(path, weights_only=True)
        model.load_state_dict(saved["model"]); opt.load_state_dict(saved["opt"])
    for _ in range(steps):
        opt.zero_grad(); torch.nn.functional.cross_entropy(model(x), y).backward(); opt.step()
    if mode == "save":
        torch.save({"model": model.state_dict(), "opt": opt.state_dict()}, path)
    else:
        np.savez(path + ".codes.npz", *[opt.codes(p)[1] for p in model.parameters()],
                 *[p.detach().numpy() for p in model.parameters()])
""")


def test_resume_in_a_fresh_process_continues_bit_identically(tmp_path):
    def run(*args):
        subprocess.run([sys.executable, "-c", RESUME, *args], check=True)

    run("save", str(tmp_path / "half.pt"), "4")
    run("resume", str(tmp_path / "half.pt"), "4")
    run("whole", str(tmp_path / "whole"), "8")
    a = np.load(tmp_path / "half.pt.codes.npz")
    b = np.load(tmp_path / "whole.codes.npz")
    assert len(a.files) == 8
    for name in a.files:
        np.testing.assert_array_equal(a[name], b[name])


def test_lnsim_works_without_torch_and_lnsim_torch_says_what_to_install():
    code = textwrap.dedent("""
        import sys
        sys.modules["torch"] = None
        import lnsim
        assert lnsim.Spec.from_options(bits=8).fmt.bits == 8
        try:
            import lnsim.torch
        except ImportError as e:
            print(e)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout == 'lnsim.torch needs PyTorch: pip install "lnsim[torch]"\n'


def test_float32_madam_matches_the_float64_reference():
    w0 = np.random.default_rng(3).standard_normal((6, 5)) * 0.2
    p = torch.nn.Parameter(torch.from_numpy(w0.copy()))
    opt = Madam([p], lr=0.01, beta=0.99)
    ref = reference.Madam(w0, eta=0.01, g_bound=8.0, beta=0.99)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=3, gamma=0.5)
    rng = np.random.default_rng(4)
    for step in range(9):
        g = rng.standard_normal(w0.shape)
        g[0, 0] = 0.0
        p.grad = torch.from_numpy(g.copy())
        ref.eta = opt.param_groups[0]["lr"]
        ref.g_bound = 0.08 / ref.eta  # eta_star stays at 8 x the first lr
        opt.step()
        ref.step(g)
        sched.step()
    np.testing.assert_allclose(p.detach().numpy(), ref.weights(), rtol=1e-12, atol=0)
    assert not np.array_equal(p.detach().numpy(), w0)
    assert np.all(np.sign(p.detach().numpy()) == np.sign(w0))
