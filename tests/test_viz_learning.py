"""diffkit.viz.learning draws what it is given: arrows where the points are, pointing the way
the vectors point; one frame per image whose colour is the classifier's verdict; curves with one
point per time; clear errors on mismatched shapes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from diffkit import analytic
from diffkit.viz import learning as vl


@given(st.integers(2, 9), st.floats(-3, 3), st.floats(0.1, 4))
@settings(max_examples=20, deadline=None)
def test_field_grid_covers_the_extent_row_by_row(n, lo, width):
    pts = vl.field_grid((lo, lo + width, -1.0, 2.0), n)
    assert pts.shape == (n * n, 2) and pts.dtype == torch.float64
    assert float(pts[:, 0].min()) == pytest.approx(lo) and float(pts[:, 0].max()) == pytest.approx(lo + width)
    assert float(pts[:, 1].min()) == pytest.approx(-1.0) and float(pts[:, 1].max()) == pytest.approx(2.0)
    assert torch.equal(pts[:n, 1], torch.full((n,), -1.0, dtype=torch.float64))  # first row: y = y0


def test_plot_field_draws_unit_arrows_coloured_by_length():
    pts = vl.field_grid((-1, 1, -1, 1), 5)
    vec = torch.stack([-pts[:, 1], pts[:, 0]], -1) * 3.0          # a rotation field
    mix = analytic.GaussianMixture(torch.tensor([0.5, 0.5], dtype=torch.float64),
                                   torch.tensor([[-1.0, 0.0], [1.0, 0.0]], dtype=torch.float64),
                                   0.2 * torch.eye(2, dtype=torch.float64).expand(2, 2, 2))
    fig = vl.plot_field(pts, vec, samples=torch.zeros(7, 2), density=mix, title="rot")
    ax = fig.axes[0]
    q = [c for c in ax.collections if type(c).__name__ == "Quiver"][0]
    length = np.linalg.norm(vec.numpy(), axis=1)
    np.testing.assert_allclose(q.U, vec[:, 0].numpy() / np.maximum(length, 1e-12), atol=1e-12)
    np.testing.assert_allclose(q.get_array(), length)
    assert ax.get_title() == "rot" and ax.get_xlabel() and ax.get_ylabel()
    with pytest.raises(ValueError, match="points and vectors"):
        vl.plot_field(pts, vec[:3])


def test_digit_grid_frames_each_image_with_its_verdict():
    imgs = torch.linspace(-1, 1, 5 * 64).reshape(5, 1, 8, 8)
    labels = torch.tensor([0, 1, 2, 3, 4])
    predicted = torch.tensor([0, 7, 2, 3, 9])
    fig = vl.plot_digit_grid(imgs, labels=labels, predicted=predicted, ncols=3, title="verdicts")
    shown = [a for a in fig.axes if a.images]
    assert len(shown) == 5 and len(fig.axes) == 6                # 2 rows of 3, one left empty
    for a, ok in zip(shown, (True, False, True, True, False)):
        assert a.spines["left"].get_edgecolor()[:3] == pytest.approx(
            tuple(int(vl.VERDICT_COLORS[ok][i:i + 2], 16) / 255 for i in (1, 3, 5)))
    assert shown[1].texts[0].get_text() == "7"
    img = shown[0].images[0].get_array()                           # [-1, 1] -> [0, 1]
    assert float(img.min()) == pytest.approx(0.0) and img.shape == (8, 8)
    with pytest.raises(ValueError, match="predicted"):
        vl.plot_digit_grid(imgs, predicted=torch.tensor([1, 2]))


def test_curves_keep_one_point_per_time_and_drop_nonpositive_on_log_axes():
    ts = np.linspace(0.05, 0.95, 7)
    vals = np.exp(-ts * 3)
    vals[2] = 0.0
    fig = vl.plot_error_over_t(ts, {"elbo": vals, "dsm": vals * 2})
    lines = fig.axes[0].get_lines()
    assert [len(line.get_xdata()) for line in lines] == [6, 6]
    fig = vl.plot_vs_nfe({"ddim": ([1, 2, 4], [0.5, 0.8, 0.9])}, ylabel="accuracy", reference=1.0)
    assert fig.axes[0].get_xlabel().startswith("NFE") and len(fig.axes[0].get_lines()) == 2
    with pytest.raises(ValueError, match="curve 'x'"):
        vl.plot_error_over_t(ts, {"x": vals[:3]})


def test_neighbours_label_each_pair_with_its_distance():
    s = torch.rand(4, 1, 8, 8) * 2 - 1
    fig = vl.plot_neighbours(s, s.flip(0), torch.tensor([0.0, 1.0, 2.5, 3.25]))
    labels = [a.get_xlabel() for a in fig.axes[4:]]
    assert labels == ["0.00", "1.00", "2.50", "3.25"]


def test_clouds_draw_every_point_and_the_note():
    a, b = torch.randn(30, 2), torch.randn(12, 2) + 3
    fig = vl.plot_clouds({"data": a, "samples": b}, note="no exact field")
    ax = fig.axes[0]
    assert [len(c.get_offsets()) for c in ax.collections] == [30, 12]
    assert any(t.get_text() == "no exact field" for t in ax.texts)
    lo, hi = ax.get_xlim()
    assert lo <= float(min(a[:, 0].min(), b[:, 0].min())) and hi >= float(max(a[:, 0].max(), b[:, 0].max()))
    with pytest.raises(ValueError, match="cloud 'x'"):
        vl.plot_clouds({"x": torch.zeros(3)})
