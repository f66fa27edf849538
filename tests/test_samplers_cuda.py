"""Samplers on a CUDA device (skipped without one): dtype and device follow the input, the loop
never synchronises with the host, and a deterministic solver can be captured as a CUDA graph."""

import pytest
import torch

from diffkit import analytic, paths
from diffkit.samplers import available, get, sample

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")

F64 = torch.float64
DETERMINISTIC = ("ddim", "euler", "heun", "dpm++2m", "dpm++3m", "rk4")


def mixture():
    return analytic.GaussianMixture(
        torch.tensor([0.3, 0.7], dtype=F64), torch.tensor([[1.0, 1.0], [-1.0, 0.0]], dtype=F64),
        torch.stack([0.1 * torch.eye(2, dtype=F64), 0.2 * torch.eye(2, dtype=F64)]))


@pytest.mark.parametrize("solver", [s for s in available() if s != "adaptive"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, F64])
def test_cuda_runs_follow_dtype_and_never_sync(solver, dtype):
    """``torch.cuda.set_sync_debug_mode("error")`` turns any host synchronisation inside the run
    (``.item()``, ``.cpu()``, a branch on a tensor value) into an error. The first run fills the
    coefficient cache (its small host-to-device copies happen there); the second is checked."""
    path = paths.get("vp-cosine")
    D = mixture().denoiser(path)
    g = torch.Generator(device="cuda").manual_seed(0)
    x = torch.randn(256, 2, device="cuda", dtype=dtype, generator=g)
    opts = {"eta": 0.5} if solver == "ddim" else {}
    sample(D, path, x, solver, steps=8, generator=g, **opts)
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        res = get(solver)(D, path, x, paths.grid("logsnr", 8, path), generator=g, **opts)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert res.device == x.device and res.dtype == dtype and res.shape == x.shape
    if dtype == F64 and solver in DETERMINISTIC and not opts:
        ref = sample(D, path, x.cpu(), solver, steps=8).x
        torch.testing.assert_close(res.cpu(), ref, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("solver", DETERMINISTIC)
def test_deterministic_solver_as_a_cuda_graph(solver):
    """The whole loop captured once with ``torch.cuda.graph`` and replayed on a new start gives
    the eager result: nothing in it depends on host-side values of the state."""
    path = paths.get("vp-linear")
    D = mixture().denoiser(path)
    ts = paths.grid("logsnr", 10, path)
    fn = get(solver)
    x = torch.randn(512, 2, device="cuda", dtype=torch.float32)
    fn(D, path, x, ts)  # warm-up: coefficient cache, kernels
    static_x = x.clone()
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        fn(D, path, static_x, ts)
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        static_out = fn(D, path, static_x, ts)
    new = torch.randn_like(x)
    static_x.copy_(new)
    graph.replay()
    torch.cuda.synchronize()
    torch.testing.assert_close(static_out, fn(D, path, new, ts), rtol=1e-5, atol=1e-5)
