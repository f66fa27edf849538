"""diffkit's samplers against diffusers' schedulers: time per step, ratio, exact accuracy.

For each solver (``ddim``, ``euler``, ``heun``, ``dpm++2m``) the two run the same method on the same
denoiser, dtype, noise levels and number of steps, and must give the same outputs (checked: the
largest relative difference is printed). The noise levels are the diffusers scheduler's after
``set_timesteps(steps)``, turned into a diffkit grid through ``path.t_from_logsnr``.

* ``ddim``: ``DDIMScheduler`` against diffkit ``ddim`` on ``vp-linear``;
* ``euler``: ``FlowMatchEulerDiscreteScheduler`` against diffkit ``euler`` on ``linear``
  (the scheduler's model returns the flow velocity ``(x - D(x, t)) / t``, diffkit's is ``D``);
* ``heun``: ``HeunDiscreteScheduler`` against diffkit ``heun`` (EDM Alg. 2) on ``vp-linear``;
* ``dpm++2m``: ``DPMSolverMultistepScheduler`` (dpmsolver++, midpoint, final sigma 0) against
  diffkit ``dpm++2m`` on ``vp-linear``.

The schedulers get the denoiser's output directly (``prediction_type="sample"``) where they accept
it, so both sides pay for exactly the same model. One run of each is timed end to end: diffkit's
``sample`` (grid, coefficients and loop) against the scheduler's ``set_timesteps`` and loop (the
way a pipeline uses it); runs alternate between the two and the medians are reported, per step
(``heun`` makes two model calls per step but the last). Three denoisers: ``none`` (``D = x / 2``:
nearly free, so the loops' own costs show), the exact denoiser of an 8-component 2-D Gaussian
mixture and a small MLP (``diffkit.nn.TimeMLP(2, 128, 3)``, untrained, predicting ``x0``), at
batch 1 and 4096.

``W2`` is the exact Wasserstein-2 error of the same solver, grid and steps on Gaussian data with its
exact denoiser (``diffkit.samplers.sampler_law``): the accuracy bought at that NFE.

Run: ``python benchmarks/samplers.py [--device cpu|cuda] [--dtype float32] [--steps 20]
[--repeats 15] [--write]``; ``--write`` puts the table into benchmarks/README.md between the
``samplers`` markers. With ``--device cuda`` the table also gives samples per second, and a third
contestant: diffkit's loop captured once as a CUDA graph and replayed (possible because the loop
never synchronises with the host).
"""

from __future__ import annotations

import argparse
import math
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from diffkit import analytic, paths  # noqa: E402
from diffkit.samplers import get, sample, sampler_law  # noqa: E402

SOLVERS = ("ddim", "euler", "heun", "dpm++2m")
README = Path(__file__).resolve().parent / "README.md"
START, END = "<!-- samplers:start -->", "<!-- samplers:end -->"


# ----------------------------------------------------------------------------------------------
# the denoisers
# ----------------------------------------------------------------------------------------------

def ring_mixture(k: int = 8, radius: float = 2.0, var: float = 0.05) -> analytic.GaussianMixture:
    angles = torch.arange(k, dtype=torch.float64) * (2 * math.pi / k)
    means = radius * torch.stack([angles.cos(), angles.sin()], 1)
    covs = var * torch.eye(2, dtype=torch.float64).expand(k, 2, 2).clone()
    return analytic.GaussianMixture(torch.full((k,), 1.0 / k, dtype=torch.float64), means, covs)


class IsotropicMixtureDenoiser:
    """The exact denoiser of a mixture of isotropic Gaussians ``N(m_k, c_k I)`` on ``path``:
    ``D(x, t) = sum_k r_k(x) (m_k + alpha c_k / (alpha^2 c_k + sigma^2) (x - alpha m_k))`` with
    responsibilities ``r_k`` from ``N(x; alpha m_k, (alpha^2 c_k + sigma^2) I)``. The same numbers as
    ``analytic.GaussianMixture.denoiser`` (checked at start-up), in a handful of tensor operations."""

    def __init__(self, mixture: analytic.GaussianMixture, path, dtype, device):
        self.path = path
        self.logw = mixture.log_weights.to(dtype=dtype, device=device)
        self.means = mixture.means.to(dtype=dtype, device=device)
        self.var = mixture.evals[:, 0].to(dtype=dtype, device=device)
        self.dim = mixture.dim

    def __call__(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        a, s = self.path.alpha(t), self.path.sigma(t)
        v = a * a * self.var + s * s                                  # [K]
        diff = x[:, None, :] - a * self.means                         # [n, K, d]
        logp = self.logw - 0.5 * self.dim * torch.log(v) - 0.5 * (diff * diff).sum(-1) / v
        r = torch.softmax(logp, dim=1)                                # [n, K]
        gain = a * self.var / v                                       # [K]
        comp = self.means + gain[:, None] * diff                      # [n, K, d]
        return (r[..., None] * comp).sum(1)


def check_mixture(den: IsotropicMixtureDenoiser, mixture, path) -> None:
    x = torch.randn(64, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0)) * 2
    ref = mixture.denoiser(path)
    for t in (0.9, 0.3, 0.01):
        tt = torch.tensor(t, dtype=den.means.dtype, device=den.means.device)
        ours = den(x.to(den.means), tt).double().cpu()
        assert torch.allclose(ours, ref(x, t), rtol=1e-4, atol=1e-5), "mixture denoiser mismatch"


def make_mlp(dtype, device):
    from diffkit.nn import TimeMLP

    torch.manual_seed(0)
    return TimeMLP(2, 128, 3).to(dtype=dtype, device=device).eval()


# ----------------------------------------------------------------------------------------------
# the two sides of each comparison
# ----------------------------------------------------------------------------------------------

def t_of_sigma(path, sigma: torch.Tensor) -> torch.Tensor:
    """diffkit time of a scheduler level ``sigma = sqrt((1 - abar) / abar)`` (``sigma = 0``: t = 0)."""
    sigma = sigma.detach().to(device="cpu", dtype=torch.float64)
    t = path.t_from_logsnr(-2.0 * torch.log(sigma.clamp_min(1e-300)))
    return torch.where(sigma > 0, t, torch.zeros_like(t))


def build(solver: str, steps: int):
    """(scheduler factory, diffkit path, diffkit solver name, grid, model-call times for diffusers)."""
    import diffusers

    if solver == "euler":
        path = paths.get("linear")

        def make():
            return diffusers.FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, shift=1.0)

        probe = make()
        probe.set_timesteps(steps)
        grid = probe.sigmas.to(torch.float64)
        return make, path, grid, grid[:-1]
    path = paths.get("vp-linear")
    common = dict(num_train_timesteps=1000, beta_schedule="scaled_linear", prediction_type="sample")
    if solver == "ddim":
        def make():
            return diffusers.DDIMScheduler(set_alpha_to_one=True, clip_sample=False, **common)
    elif solver == "heun":
        def make():
            return diffusers.HeunDiscreteScheduler(**common)
    else:
        def make():
            return diffusers.DPMSolverMultistepScheduler(
                algorithm_type="dpmsolver++", solver_order=2, solver_type="midpoint",
                final_sigmas_type="zero", lower_order_final=True, **common)
    probe = make()
    probe.set_timesteps(steps)
    if solver == "ddim":
        abar = probe.alphas_cumprod[probe.timesteps].to(torch.float64)
        grid = torch.cat([t_of_sigma(path, torch.sqrt((1 - abar) / abar)), torch.zeros(1, dtype=torch.float64)])
        calls = grid[:-1]
    elif solver == "heun":
        sig = probe.sigmas.to(torch.float64)
        grid = t_of_sigma(path, torch.cat([sig[:1], sig[1:-1:2], sig[-1:]]))
        calls = t_of_sigma(path, sig[:-1])
    else:
        grid = t_of_sigma(path, probe.sigmas)
        calls = grid[:-1]
    return make, path, grid, calls


def run_diffusers(make, solver, model, x_start, path, call_times, steps):
    """One generation the way a diffusers pipeline runs it: ``set_timesteps`` then the loop."""
    sched = make()
    sched.set_timesteps(steps, device=x_start.device)
    x = x_start
    if solver == "heun":  # the scheduler's state is x / alpha (its sigma-scaled sample)
        x = x_start / float(path.alpha(float(call_times[0])))
    scale = getattr(sched, "scale_model_input", None)
    for i, step in enumerate(sched.timesteps):
        inp = x if scale is None else scale(x, step)
        out = model(inp, call_times[i])
        x = sched.step(out, step, x).prev_sample
    return x


def cuda_graph(solver, model, path, x_start, grid):
    """diffkit's whole loop captured once as a CUDA graph (it never synchronises with the host);
    returns ``run()``, which replays it on the captured start and returns the output."""
    fn = get(solver)
    static = x_start.clone()
    fn(model, path, static, grid)  # fills the coefficient cache, loads the kernels
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        fn(model, path, static, grid)
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        out = fn(model, path, static, grid)

    def run(keep=(graph, static)):  # the graph reads `static`: it must outlive the graph
        keep[0].replay()
        return out

    return run


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def bench_one(solver, denoiser_name, batch, args, device, dtype):
    make, path, grid, calls = build(solver, args.steps)
    call_times = [t.to(dtype=dtype, device=device) for t in calls]
    if denoiser_name == "mixture":
        mixture = ring_mixture()
        den = IsotropicMixtureDenoiser(mixture, path, dtype, device)
        check_mixture(den, mixture, path)
    elif denoiser_name == "mlp":
        den = make_mlp(dtype, device)  # an x0-predicting net
    else:
        def den(x, t):  # (almost) free: what is left is each loop's own cost
            return 0.5 * x
    ours_model = den
    if solver == "euler":
        def peer_model(x, t):  # the flow velocity eps - x0 = (x - D) / t on the linear path
            return (x - den(x, t)) / t
    else:
        peer_model = den
    g = torch.Generator(device=device).manual_seed(0)
    t0 = float(grid[0])
    x_start = (torch.randn(batch, 2, generator=g, device=device, dtype=dtype)
               * math.sqrt(float(path.alpha(t0)) ** 2 * 4.0 + float(path.sigma(t0)) ** 2))
    grid_dev = grid  # diffkit builds its coefficients on the CPU, its times on x's device

    def ours():
        return sample(ours_model, path, x_start, solver, grid=grid_dev).x

    def peer():
        return run_diffusers(make, solver, peer_model, x_start, path, call_times, args.steps)

    with torch.no_grad():
        contestants = {"ours": ours, "peer": peer}
        if device.type == "cuda":
            contestants["graph"] = cuda_graph(solver, ours_model, path, x_start, grid_dev)
        a, b = ours(), peer()  # warm-up, and the outputs to compare
        diff = float((a - b).double().norm() / b.double().norm().clamp_min(1e-30))
        if "graph" in contestants:
            g_out = contestants["graph"]().double()
            diff = max(diff, float((g_out - b.double()).norm() / b.double().norm().clamp_min(1e-30)))
        times = {name: [] for name in contestants}
        for _ in range(args.repeats):
            for name, fn in contestants.items():
                sync(device)
                start = time.perf_counter()
                fn()
                sync(device)
                times[name].append(time.perf_counter() - start)
    med = {k: statistics.median(v) for k, v in times.items()}
    data = analytic.Gaussian(torch.tensor([1.0, -0.5], dtype=torch.float64),
                             torch.tensor([[1.0, 0.3], [0.3, 0.5]], dtype=torch.float64))
    w2 = float(analytic.w2_gaussian(sampler_law(solver, path, data, grid=grid), data))
    nfe = {"heun": 2 * args.steps - 1}.get(solver, args.steps)
    out = dict(solver=solver, denoiser=denoiser_name, batch=batch, nfe=nfe,
               ours_ms=1e3 * med["ours"] / args.steps, peer_ms=1e3 * med["peer"] / args.steps,
               ratio=med["ours"] / med["peer"], w2=w2, diff=diff,
               ours_sps=batch / med["ours"], peer_sps=batch / med["peer"])
    if "graph" in med:
        out.update(graph_ms=1e3 * med["graph"] / args.steps, graph_sps=batch / med["graph"])
    return out


def machine(device) -> str:
    cpu = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import diffusers

    where = f"{cpu}, {torch.get_num_threads()} threads"
    if device.type == "cuda":
        where = f"{torch.cuda.get_device_name(device)} (host: {where})"
    return f"{where}; torch {torch.__version__}, diffusers {diffusers.__version__}"


def table(rows, device, args) -> str:
    gpu = device.type == "cuda"
    head = ("| solver | denoiser | batch | NFE | diffkit ms/step | diffusers ms/step | ratio | "
            + ("diffkit graph ms/step | diffkit samples/s | diffkit graph samples/s | "
               "diffusers samples/s | " if gpu else "")
            + "max rel. diff | exact W2 |")
    lines = [head, "|" + " --- |" * (head.count("|") - 1)]
    for r in rows:
        lines.append(
            f"| {r['solver']} | {r['denoiser']} | {r['batch']} | {r['nfe']} | {r['ours_ms']:.3f} | "
            f"{r['peer_ms']:.3f} | {r['ratio']:.2f} | "
            + (f"{r['graph_ms']:.3f} | {r['ours_sps']:.3g} | {r['graph_sps']:.3g} | "
               f"{r['peer_sps']:.3g} | " if gpu else "")
            + f"{r['diff']:.1e} | {r['w2']:.2e} |")
    return "\n".join(lines)


def write_readme(text: str) -> None:
    body = README.read_text() if README.exists() else "# Benchmarks\n"
    block = f"{START}\n{text}\n{END}"
    if START in body and END in body:
        before, rest = body.split(START, 1)
        after = rest.split(END, 1)[1]
        body = before + block + after
    else:
        body = body.rstrip("\n") + "\n\n" + block + "\n"
    README.write_text(body)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cpu", help="cpu or cuda (cuda adds a CUDA-graph run)")
    ap.add_argument("--dtype", default="float32", choices=["float32", "float64", "float16", "bfloat16"])
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 4096])
    ap.add_argument("--solvers", nargs="+", default=list(SOLVERS), choices=SOLVERS)
    ap.add_argument("--denoisers", nargs="+", default=["none", "mixture", "mlp"],
                    choices=["none", "mixture", "mlp"])
    ap.add_argument("--write", action="store_true", help="write the table into benchmarks/README.md")
    args = ap.parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        ap.error("--device cuda: this torch has no CUDA device available "
                 f"(torch {torch.__version__}); run with --device cpu or on a GPU machine")
    dtype = getattr(torch, args.dtype)
    rows = []
    for den in args.denoisers:
        for batch in args.batches:
            for solver in args.solvers:
                r = bench_one(solver, den, batch, args, device, dtype)
                rows.append(r)
                print(f"{solver:8s} {den:8s} batch {batch:5d}: diffkit {r['ours_ms']:.3f} ms/step, "
                      f"diffusers {r['peer_ms']:.3f} ms/step, ratio {r['ratio']:.2f}, "
                      f"rel. diff {r['diff']:.1e}, W2 {r['w2']:.2e}", flush=True)
    text = (f"Machine: {machine(device)}. Device {device.type}, {args.dtype}, {args.steps} steps, "
            f"median of {args.repeats} alternating runs, end to end (diffkit: grid, coefficients "
            f"and loop; diffusers: `set_timesteps` and loop).\n\n" + table(rows, device, args))
    print()
    print(text)
    if args.write:
        write_readme(f"## Samplers: diffkit against diffusers\n\n"
                     f"Produced by `python benchmarks/samplers.py --write` "
                     f"(see its docstring for what is compared).\n\n{text}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
