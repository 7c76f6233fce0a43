"""Forward soft-splatting ('avg'): hand-computed cases and a naive per-pixel reference."""

from __future__ import annotations

import math

import pytest
import torch

from mofa_engine.models.softsplat import softsplat

EPS = 1e-7


def naive_softsplat(features: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """Per-pixel Python loop written straight from the description (float64 accumulation)."""
    n, c, h, w = features.shape
    acc = torch.zeros(n, c, h, w, dtype=torch.float64)
    norm = torch.zeros(n, 1, h, w, dtype=torch.float64)
    for b in range(n):
        for y in range(h):
            for x in range(w):
                tx = x + float(flow[b, 0, y, x])
                ty = y + float(flow[b, 1, y, x])
                if not (math.isfinite(tx) and math.isfinite(ty)):
                    continue
                x0, y0 = math.floor(tx), math.floor(ty)
                fx, fy = tx - x0, ty - y0
                for cx, cy, wgt in (
                    (x0, y0, (1 - fx) * (1 - fy)),
                    (x0 + 1, y0, fx * (1 - fy)),
                    (x0, y0 + 1, (1 - fx) * fy),
                    (x0 + 1, y0 + 1, fx * fy),
                ):
                    if 0 <= cx < w and 0 <= cy < h:
                        acc[b, :, cy, cx] += wgt * features[b, :, y, x].double()
                        norm[b, 0, cy, cx] += wgt
    return (acc / (norm + EPS)).float()


def test_zero_flow_is_identity_up_to_normaliser():
    features = torch.randn(2, 3, 4, 5)
    out = softsplat(features, torch.zeros(2, 2, 4, 5))
    torch.testing.assert_close(out, features / (1 + EPS), rtol=1e-7, atol=1e-7)


def test_integer_shift_moves_pixels_and_leaves_zero_holes():
    features = torch.randn(1, 3, 5, 6)
    flow = torch.zeros(1, 2, 5, 6)
    flow[:, 0] = 1.0  # dx: one column right
    flow[:, 1] = 2.0  # dy: two rows down
    out = softsplat(features, flow)
    torch.testing.assert_close(out[:, :, 2:, 1:], features[:, :, :3, :5] / (1 + EPS), rtol=1e-6, atol=1e-7)
    assert torch.equal(out[:, :, :2, :], torch.zeros(1, 3, 2, 6))  # holes: rows 0-1
    assert torch.equal(out[:, :, :, :1], torch.zeros(1, 3, 5, 1))  # holes: column 0


def test_fractional_shift_splits_bilinearly():
    a, b = 3.0, -2.0
    features = torch.full((1, 1, 4, 4), b)
    features[0, 0, 1, 1] = a
    flow = torch.zeros(1, 2, 4, 4)
    flow[0, :, 1, 1] = torch.tensor([0.25, 0.5])  # weights 0.375, 0.125, 0.375, 0.125
    out = softsplat(features, flow)[0, 0]
    assert out[1, 1].item() == pytest.approx(a * 0.375 / (0.375 + EPS), abs=1e-6)  # own value moved away
    assert out[1, 2].item() == pytest.approx((b + 0.125 * a) / (1.125 + EPS), abs=1e-6)
    assert out[2, 1].item() == pytest.approx((b + 0.375 * a) / (1.375 + EPS), abs=1e-6)
    assert out[2, 2].item() == pytest.approx((b + 0.125 * a) / (1.125 + EPS), abs=1e-6)
    assert out[0, 0].item() == pytest.approx(b / (1 + EPS), abs=1e-6)  # untouched


def test_half_pixel_shift_shares_between_two_targets():
    features = torch.tensor([[[[4.0, 10.0, 0.0]]]])
    flow = torch.zeros(1, 2, 1, 3)
    flow[0, 0, 0, 0] = 0.5  # 4.0 lands half on column 0, half on column 1
    flow[0, 0, 0, 2] = 100.0  # column 2 leaves the grid
    out = softsplat(features, flow)[0, 0, 0]
    assert out[0].item() == pytest.approx(4.0 * 0.5 / (0.5 + EPS), abs=1e-6)
    assert out[1].item() == pytest.approx((0.5 * 4.0 + 10.0) / (1.5 + EPS), abs=1e-6)
    assert out[2].item() == 0.0


def test_two_sources_on_one_target_average():
    features = torch.tensor([[[[2.0, 7.0, 6.0]]]])
    flow = torch.zeros(1, 2, 1, 3)
    flow[0, 0, 0] = torch.tensor([1.0, -50.0, -1.0])  # 0 -> 1, 1 -> out, 2 -> 1
    out = softsplat(features, flow)[0, 0, 0]
    assert out[1].item() == pytest.approx(8.0 / (2.0 + EPS), abs=1e-6)
    assert out[0].item() == 0.0 and out[2].item() == 0.0


def test_out_of_range_and_non_finite_targets_are_dropped():
    features = torch.ones(1, 2, 3, 3)
    flow = torch.zeros(1, 2, 3, 3)
    flow[0, 0, :, 0] = -0.5  # column 0: half the weight falls off the left border
    flow[0, 0, :, 1] = float("nan")
    flow[0, 1, :, 2] = float("inf")
    out = softsplat(features, flow)
    torch.testing.assert_close(out[0, :, :, 0], torch.full((2, 3), 0.5 / (0.5 + EPS)))
    assert torch.equal(out[0, :, :, 1:], torch.zeros(2, 3, 2))
    assert torch.isfinite(out).all()


def test_matches_naive_loop_on_random_case():
    generator = torch.Generator().manual_seed(0)
    features = torch.randn(2, 3, 6, 7, generator=generator)
    flow = torch.randn(2, 2, 6, 7, generator=generator) * 2.5
    flow[1, 0, 2, 3] = float("nan")
    out = softsplat(features, flow)
    torch.testing.assert_close(out, naive_softsplat(features, flow), rtol=1e-5, atol=1e-6)


def test_batched_equals_per_sample_and_keeps_dtype():
    generator = torch.Generator().manual_seed(1)
    features = torch.randn(3, 4, 5, 6, generator=generator)
    flow = torch.randn(3, 2, 5, 6, generator=generator)
    batched = softsplat(features, flow)
    single = torch.cat([softsplat(features[i : i + 1], flow[i : i + 1]) for i in range(3)])
    torch.testing.assert_close(batched, single, rtol=0, atol=0)
    half = softsplat(features.to(torch.bfloat16), flow.to(torch.bfloat16))
    assert half.dtype == torch.bfloat16


def test_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="flow must be"):
        softsplat(torch.zeros(1, 3, 4, 4), torch.zeros(1, 2, 4, 5))
    with pytest.raises(ValueError, match="4-D"):
        softsplat(torch.zeros(3, 4, 4), torch.zeros(2, 4, 4))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu():
    generator = torch.Generator().manual_seed(2)
    features = torch.randn(4, 8, 16, 16, generator=generator)
    flow = torch.randn(4, 2, 16, 16, generator=generator) * 4
    expected = softsplat(features, flow)
    got = softsplat(features.cuda().half(), flow.cuda().half()).float().cpu()
    torch.testing.assert_close(got, softsplat(features.half(), flow.half()).float(), rtol=2e-3, atol=2e-3)
    torch.testing.assert_close(softsplat(features.cuda(), flow.cuda()).cpu(), expected, rtol=1e-5, atol=1e-5)
