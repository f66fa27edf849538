"""Few-step models: the affine flow map recovers the exact Gaussian map; the network's structure."""

import pytest
import torch

from diffkit import analytic, fewstep, paths

F64 = torch.float64


def gaussian(d=2, seed=0):
    gen = torch.Generator().manual_seed(seed)
    a = torch.randn(d, d, generator=gen, dtype=F64)
    return analytic.Gaussian(torch.randn(d, generator=gen, dtype=F64), 0.5 * a @ a.T + 0.2 * torch.eye(d, dtype=F64))


def exact_affine(g, path, s, t):
    """The exact flow map s -> t as (M, c), read off the oracle at 0 and the unit vectors."""
    basis = torch.cat([torch.zeros(1, g.dim, dtype=F64), torch.eye(g.dim, dtype=F64)])
    out = g.flow_map(basis, s, t, path)
    return (out[1:] - out[0]).T, out[0]


@pytest.mark.parametrize("name", ["linear", "vp-cosine"])
def test_affine_flow_map_distilled_from_the_exact_flow_recovers_it(name):
    """Least-squares distillation on trajectories of the exact Gaussian flow recovers the exact map
    for every pair of times to 1e-9; on rk4 teacher trajectories, to the teacher's own error."""
    g, path = gaussian(3 if name == "linear" else 2, 1), paths.get(name)
    times = fewstep.jump_grid(path, 4)
    x1 = g.marginal(float(times[0]), path).sample(64, torch.Generator().manual_seed(2))
    xs = torch.stack([g.flow_map(x1, float(times[0]), float(t), path) for t in times])
    fitted = fewstep.AffineFlowMap.fit(times, xs)
    for (i, j), M in fitted.M.items():
        M_ref, c_ref = exact_affine(g, path, float(times[i]), float(times[j]))
        torch.testing.assert_close(M, M_ref, rtol=0, atol=1e-9)
        torch.testing.assert_close(fitted.c[i, j], c_ref, rtol=0, atol=1e-9)
    xs_rk4 = fewstep.teacher_trajectories(g.denoiser(path), path, 64, times, substeps=64,
                                          generator=torch.Generator().manual_seed(3), dim=g.dim)
    from_rk4 = fewstep.AffineFlowMap.fit(times, xs_rk4)
    M_ref, _ = exact_affine(g, path, float(times[0]), float(times[-1]))
    assert float((from_rk4.M[0, len(times) - 1] - M_ref).abs().max()) < 1e-4


def test_flow_map_net_is_the_identity_on_the_diagonal_and_counts_its_calls():
    """X(x, s, s) = x exactly; k-step sampling makes k network calls, for both samplers."""
    net = fewstep.FlowMapNet(2, 16, 2).double()
    x = torch.randn(5, 2, dtype=F64)
    torch.testing.assert_close(net(x, 0.3, 0.3), x, rtol=0, atol=0)
    calls = []
    net.register_forward_hook(lambda *a: calls.append(1))
    for k in (1, 2, 4):
        calls.clear()
        fewstep.flow_map_sample(net, "linear", x, k)
        assert len(calls) == k
        calls.clear()
        fewstep.consistency_sample(net, "linear", x, k, generator=torch.Generator().manual_seed(0))
        assert len(calls) == k
    with pytest.raises(ValueError, match="steps"):
        fewstep.jump_grid("linear", 0)


def test_flow_map_loss_is_zero_for_the_exact_map():
    """The distillation loss of a model equal to the exact affine map is zero (to float64)."""
    g, path = gaussian(2, 4), paths.get("vp-linear")
    times = fewstep.jump_grid(path, 6)
    x1 = g.marginal(float(times[0]), path).sample(32, torch.Generator().manual_seed(5))
    xs = torch.stack([g.flow_map(x1, float(times[0]), float(t), path) for t in times])

    def exact(x, s, t):
        return torch.stack([g.flow_map(x[r:r + 1], float(s[r]), float(t[r]), path)[0] for r in range(x.shape[0])])

    loss = fewstep.flow_map_loss(exact, times, xs, 64, torch.Generator().manual_seed(6))
    assert float(loss) < 1e-20


def test_shipped_gmm8_model_is_small_and_beats_its_teacher_at_one_call():
    """The shipped checkpoint is under 2 MB, loads without unpickling, and in one call its flow
    map is over 3 times closer to the data (exact OT W2, 300 points) than one Euler call of the
    teacher (which lands near the mixture's mean); the consistency model over 2 times."""
    from diffkit import data, metrics, sample

    st = fewstep.CHECKPOINT.with_suffix(".safetensors")
    assert st.stat().st_size + fewstep.CHECKPOINT.with_suffix(".json").stat().st_size < 2_000_000
    fm, cm = fewstep.load_pretrained()
    mix, path = data.toy_mixture("gmm8"), fewstep.PRETRAINED_PATH
    gen = torch.Generator().manual_seed(0)
    z = paths.get(path).prior((300, 2), generator=gen, dtype=torch.float32)
    ref = mix.sample(300, gen).float()
    teacher = metrics.w2_empirical(sample(mix.denoiser(path), path, z.double(), solver="euler", steps=1).x.float(), ref)
    assert 3 * metrics.w2_empirical(fewstep.flow_map_sample(fm, path, z, 1), ref) < teacher
    assert 2 * metrics.w2_empirical(fewstep.consistency_sample(cm, path, z, 1), ref) < teacher
