"""diffkit's samplers against diffusers' schedulers: same denoiser, same noise levels, 1e-5 relative.

Common recipe: build the scheduler, call ``set_timesteps(N)``, read its noise levels (its
``alphas_cumprod`` at its timesteps, or its ``sigmas = sqrt((1 - abar) / abar)``), and turn them into
a diffkit grid through ``path.t_from_logsnr`` (``logsnr = log(abar / (1 - abar)) = -2 log sigma``);
the scheduler's final level (``abar = 1``, ``sigma = 0``) is ``t = 0``. The model handed to the
scheduler wraps diffkit's exact mixture denoiser ``D(x, t)`` as the prediction the scheduler
expects (``eps``, ``v`` or the flow velocity, through :mod:`diffkit.views`), at the ``t`` of the noise
level the scheduler is at. Everything runs in float64 (the schedulers keep float32 noise levels;
both sides use the same rounded levels). k-diffusion is not compared: ``pip install k-diffusion``
would replace torch 2.13 by another build (through torchvision), so it is not installed.
"""

import pytest
import torch

from diffkit import analytic, paths, views
from diffkit.samplers import sample

diffusers = pytest.importorskip("diffusers")

F64 = torch.float64
RTOL = 1e-5


def mixture():
    return analytic.GaussianMixture(
        torch.tensor([0.3, 0.7], dtype=F64),
        torch.tensor([[1.0, 1.0], [-1.0, 0.0]], dtype=F64),
        torch.stack([0.1 * torch.eye(2, dtype=F64), torch.tensor([[0.2, 0.05], [0.05, 0.1]], dtype=F64)]))


def t_of_sigma(path, sigma):
    """diffkit time of a scheduler noise level ``sigma = sqrt((1 - abar) / abar)`` (0 -> t = 0)."""
    sigma = torch.as_tensor(sigma).to(F64)
    t = path.t_from_logsnr(-2.0 * torch.log(sigma.clamp_min(1e-300)))
    return torch.where(sigma > 0, t, torch.zeros_like(t))


def start(path, t0, n=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    return mixture().marginal(float(t0), path).sample(n, g)


def assert_rel(a, b):
    rel = float((a - b).norm() / b.norm())
    assert rel < RTOL, f"relative difference {rel:.2e}"


@pytest.mark.parametrize("eta", [0.0, 0.7])
def test_ddim_matches_diffusers_ddim(eta):
    """DDIMScheduler (``set_alpha_to_one=True``, ``timestep_spacing="leading"``): its ``abar`` at the
    chosen timesteps and the final ``abar = 1`` are the grid; the model predicts ``eps``; for
    ``eta > 0`` the same standard normal draws are handed to both (diffusers' ``variance_noise``,
    diffkit's ``noise`` hook). Its variance ``(1 - abar_prev)/(1 - abar) (1 - abar/abar_prev)`` is
    eq. 16 of Song et al., as in diffkit's DDIM."""
    path = paths.get("vp-linear")
    D = mixture().denoiser(path)
    sched = diffusers.DDIMScheduler(num_train_timesteps=1000, beta_schedule="scaled_linear",
                                    set_alpha_to_one=True, clip_sample=False)
    sched.set_timesteps(12)
    abar = sched.alphas_cumprod[sched.timesteps].to(F64)
    grid = torch.cat([t_of_sigma(path, torch.sqrt((1 - abar) / abar)), torch.zeros(1, dtype=F64)])
    x_start = start(path, grid[0])
    draws = [torch.randn(x_start.shape, generator=torch.Generator().manual_seed(k), dtype=F64)
             for k in range(len(grid))]
    ours = sample(D, path, x_start, "ddim", grid=grid, eta=eta, noise=lambda k, x: draws[k]).x

    x, k = x_start, 0
    for i, step in enumerate(sched.timesteps):
        t = grid[i]
        eps = views.from_x0("eps", D(x, t), x, t, path)
        noise = None
        if eta > 0 and i < len(grid) - 2:
            noise, k = draws[k], k + 1
        x = sched.step(eps, step, x, eta=eta, variance_noise=noise).prev_sample
    assert_rel(ours, x)


def test_euler_matches_diffusers_euler_on_the_edm_path():
    """EulerDiscreteScheduler integrates ``dy/dsigma = (y - D) / sigma`` in ``y = x / alpha``
    (Karras et al. 2022): on diffkit's ``edm`` path (``alpha = 1``, ``sigma = 80 t``) that ODE is the
    probability-flow ODE in ``t``, so diffkit's Euler in ``t`` on the grid ``t = sigma / 80`` is the
    same method. The scheduler's state is ``y``; the model gets ``y / sqrt(1 + sigma^2)`` and returns
    ``eps = (y - D) / sigma``, ``D`` the exact denoiser on the edm path at ``t = sigma / 80``."""
    path = paths.get("edm")
    D = mixture().denoiser(path)
    sched = diffusers.EulerDiscreteScheduler(num_train_timesteps=1000, beta_schedule="scaled_linear")
    sched.set_timesteps(15)
    sigmas = sched.sigmas.to(F64)
    grid = sigmas / path.sigma_max
    x_start = start(path, grid[0])
    ours = sample(D, path, x_start, "euler", grid=grid).x

    y = x_start.clone()
    for step in sched.timesteps:
        sched.scale_model_input(y, step)
        sigma = sched.sigmas[sched.step_index].to(F64)
        eps = (y - D(y, sigma / path.sigma_max)) / sigma
        y = sched.step(eps, step, y).prev_sample
    assert_rel(ours, y)


def test_euler_matches_diffusers_flow_match_euler():
    """FlowMatchEulerDiscreteScheduler on the ``linear`` path: its ``sigmas`` are diffkit's ``t``
    (``x_t = (1 - t) x0 + t eps``), its model predicts the velocity ``eps - x0 = dx/dt``, and its step
    is ``x + (t_next - t) u``: diffkit's Euler in ``t`` with the velocity from ``views``."""
    path = paths.get("linear")
    D = mixture().denoiser(path)
    sched = diffusers.FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, shift=1.0)
    sched.set_timesteps(10)
    grid = sched.sigmas.to(F64)
    x_start = start(path, grid[0])
    ours = sample(D, path, x_start, "euler", grid=grid).x

    x = x_start.clone()
    for i, step in enumerate(sched.timesteps):
        t = grid[i]
        u = views.from_x0("velocity", D(x, t), x, t, path)
        x = sched.step(u, step, x).prev_sample
    assert_rel(ours, x)


def test_heun_matches_diffusers_heun():
    """HeunDiscreteScheduler is EDM's Alg. 2 without churn in ``y = x / alpha`` against ``sigma``:
    an Euler stage at ``sigma_i`` and a trapezoidal correction at ``sigma_{i+1}``, the last step to
    ``sigma = 0`` Euler only (2N - 1 model calls). Its ``sigmas`` (each inner one repeated for the two
    stages) give the grid on the ``vp-linear`` path; the scheduler starts from ``y = x / alpha(t0)``,
    the model gets ``x = y / sqrt(1 + sigma^2)`` at the level ``sigmas[step_index]`` and returns
    ``eps = (x - alpha D(x, t)) / sigma_t``."""
    path = paths.get("vp-linear")
    D = mixture().denoiser(path)
    sched = diffusers.HeunDiscreteScheduler(num_train_timesteps=1000, beta_schedule="scaled_linear")
    sched.set_timesteps(8)
    sig = sched.sigmas.to(F64)
    levels = torch.cat([sig[:1], sig[1:-1:2], sig[-1:]])
    grid = t_of_sigma(path, levels)
    x_start = start(path, grid[0])
    res = sample(D, path, x_start, "heun", grid=grid)

    y = x_start / path.alpha(grid[0])
    calls = 0
    for step in sched.timesteps:
        x_in = sched.scale_model_input(y, step)
        t = t_of_sigma(path, sched.sigmas[sched.step_index])
        eps = views.from_x0("eps", D(x_in, t), x_in, t, path)
        calls += 1
        y = sched.step(eps, step, y).prev_sample
    assert res.nfe == calls == 2 * (len(grid) - 1) - 1
    assert_rel(res.x, y)


@pytest.mark.parametrize("order", [2, 3])
def test_dpmpp_matches_diffusers_dpm_solver_multistep(order):
    """DPMSolverMultistepScheduler (``algorithm_type="dpmsolver++"``, ``solver_type="midpoint"``,
    ``final_sigmas_type="zero"``, ``prediction_type="v_prediction"``) on the ``vp-linear`` path:
    its state is ``x`` itself; the grid is its ``sigmas`` through ``t_from_logsnr`` (last one 0); the
    model returns ``v = alpha eps - sigma x0``. Both take a first-order first step and a first-order
    final step onto ``sigma = 0`` (``lower_order_final=False`` keeps the scheduler's other
    lower-order steps out). Order 3 is compared with diffkit's ``reference=True`` weighting, which is
    the scheduler's; diffkit's default 3M weighs the second difference by the exact moment."""
    path = paths.get("vp-linear")
    D = mixture().denoiser(path)
    sched = diffusers.DPMSolverMultistepScheduler(
        num_train_timesteps=1000, beta_schedule="scaled_linear", algorithm_type="dpmsolver++",
        solver_order=order, solver_type="midpoint", final_sigmas_type="zero",
        lower_order_final=False, prediction_type="v_prediction")
    sched.set_timesteps(12)
    grid = t_of_sigma(path, sched.sigmas)
    x_start = start(path, grid[0])
    options = {"reference": True} if order == 3 else {}
    ours = sample(D, path, x_start, f"dpm++{order}m", grid=grid, **options).x

    x = x_start.clone()
    for i, step in enumerate(sched.timesteps):
        t = grid[i]
        v = views.from_x0("v", D(x, t), x, t, path)
        x = sched.step(v, step, x).prev_sample
    assert_rel(ours, x)
    if order == 3:  # the exact-moment weighting is a different method: it must differ
        exact = sample(D, path, x_start, "dpm++3m", grid=grid).x
        assert float((exact - x).norm() / x.norm()) > 10 * RTOL
