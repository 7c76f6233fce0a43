"""Periodic sampling: the window plan, the per-step aggregation, long clips and bounded memory (spec §7)."""

from __future__ import annotations

import weakref

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from mofa_engine.pipeline.periodic import Window, WindowMean, coverage, plan_windows
from tests.mofa_engine.test_pipeline import RecordingUNet, capture_model_output, face_mask, svd_scheduler
from tests.mofa_engine.test_pipeline import tiny_inputs, tiny_pipeline


def spans(num_frames: int, window_size: int = 25) -> list[tuple[int, int]]:
    return [(w.start, w.end) for w in plan_windows(num_frames, window_size)]


# ---------------------------------------------------------------- the plan
def test_plan_matches_the_reference_views():
    assert spans(60) == [(1, 25), (13, 37), (25, 49), (36, 60)]  # spec §7 example
    assert spans(125) == [(1 + 12 * i, 12 * i + 25) for i in range(9)] + [(101, 125)]
    assert spans(30, 14) == [(1, 14), (8, 21), (15, 28), (17, 30)]


def test_plan_edge_cases_fixed():
    assert spans(10) == [(1, 10)]  # N < W: one shorter window (the reference breaks)
    assert spans(2) == [(1, 2)]
    assert spans(25) == [(1, 25)]  # N = W: the reference's duplicate tail window is dropped
    assert spans(26) == [(1, 25), (2, 26)]  # N = W + 1: the tail is covered
    assert spans(49) == [(1, 25), (13, 37), (25, 49)]  # (N - W) % stride == 0: no duplicate
    with pytest.raises(ValueError, match="got 1"):
        plan_windows(1)
    with pytest.raises(ValueError, match="got 1"):
        plan_windows(10, 1)


@pytest.mark.parametrize("window_size", [4, 14, 25])
def test_every_frame_is_covered_by_windows_anchored_on_frame_0(window_size):
    for n in range(2, 130):
        windows = plan_windows(n, window_size)
        counts = coverage(windows, n)
        assert bool((counts >= 1).all()), (n, window_size)
        assert counts[0] == 1  # frame 0 comes from the first window only
        assert {w.num_frames for w in windows} == {min(n, window_size)}
        assert windows[0].start == 1 and windows[-1].end == n
        assert len({(w.start, w.end) for w in windows}) == len(windows)
        for before, after in zip(windows, windows[1:], strict=False):
            assert after.start < before.end  # consecutive windows overlap
        assert all(w.frame_indices()[0] == 0 for w in windows)


# ---------------------------------------------------------------- the aggregation
def _reference_mean(windows: list[Window], values: list[torch.Tensor], num_frames: int) -> torch.Tensor:
    """Spec §7 literally: window 0 gives all its frames, later windows their frames 1.., value / count."""
    total = torch.zeros(values[0].shape[0], num_frames, *values[0].shape[2:])
    count = torch.zeros(num_frames)
    for i, (window, value) in enumerate(zip(windows, values, strict=True)):
        for position, frame in enumerate(window.frame_indices()):
            if position == 0 and i > 0:
                continue
            total[:, frame] += value[:, position]
            count[frame] += 1
    return total / count.reshape(1, -1, *[1] * (total.ndim - 2))


def test_window_mean_equals_the_reference_aggregation():
    g = torch.Generator().manual_seed(0)
    windows = plan_windows(37, 14)
    values = [torch.randn(1, w.num_frames, 4, 3, 3, generator=g) for w in windows]
    mean = WindowMean(windows, torch.zeros(1, 37, 4, 3, 3))
    for window, value in zip(windows, values, strict=True):
        mean.add(window, value)
    torch.testing.assert_close(mean.mean(), _reference_mean(windows, values, 37))


def test_one_step_on_averaged_predictions_equals_averaging_per_window_steps():
    """The reference steps every window (rewinding the scheduler's index) and averages the latents."""
    g = torch.Generator().manual_seed(0)
    n, windows = 20, plan_windows(20, 8)
    latents = torch.randn(1, n, 4, 2, 2, generator=g) * 10
    scheduler = svd_scheduler()
    scheduler.set_timesteps(25)
    t = scheduler.timesteps[3]
    scheduler.scale_model_input(latents, t)  # initialises the step index at step 0 ...
    scheduler._step_index = 3  # ... jump to step 3 (shared sigma)
    predictions = [torch.randn(1, w.num_frames, 4, 2, 2, generator=g) for w in windows]
    stepped = []
    for i, (window, v) in enumerate(zip(windows, predictions, strict=True)):
        x = latents[:, window.frame_indices()]
        stepped.append(scheduler.step(v, t, x).prev_sample)
        if i < len(windows) - 1:
            scheduler._step_index -= 1
    reference = _reference_mean(windows, stepped, n)

    scheduler._step_index = 3
    mean = WindowMean(windows, latents)
    for window, v in zip(windows, predictions, strict=True):
        mean.add(window, v)
    ours = scheduler.step(mean.mean(), t, latents).prev_sample
    torch.testing.assert_close(ours, reference, rtol=1e-5, atol=1e-5)


def test_pipeline_averages_the_cfg_ramp_over_windows():
    pipe = tiny_pipeline(trajectory=False, unet=RecordingUNet())
    seen = capture_model_output(pipe)
    pipe(**tiny_inputs(9), output_type="latent")  # W = 4: windows (1,4) (3,6) (5,8) (6,9)
    windows = plan_windows(9, 4)
    ramp = torch.linspace(1, 3, 4).reshape(1, 4, 1, 1, 1).expand(1, 4, 4, 8, 8)
    expected = _reference_mean(windows, [ramp] * len(windows), 9)
    torch.testing.assert_close(seen[0], expected)
    assert len(pipe.unet.calls) == len(windows)
    assert all(call["sample"].shape[:2] == (2, 4) for call in pipe.unet.calls)


# ---------------------------------------------------------------- long clips with the real tiny models
def test_long_clip_is_finite_and_every_window_gets_its_frames():
    pipe = tiny_pipeline(trajectory=True)
    seen = []
    pipe.landmark_adapter.register_forward_pre_hook(
        lambda m, args, kwargs: seen.append((kwargs["landmarks"], kwargs["controlnet_flow"])), with_kwargs=True
    )
    n = 13
    inputs = dict(tiny_inputs(n, latent_grid=True), num_inference_steps=2)
    out = pipe(**inputs, landmark_mask=face_mask(), output_type="np", decode_chunk_size=4)
    assert out.frames.shape == (1, n, 64, 64, 3)
    assert bool((out.frames >= 0).all() and (out.frames <= 1).all())
    windows = plan_windows(n, 4)
    assert out.windows == [(w.start, w.end) for w in windows] == [(1, 4), (3, 6), (5, 8), (7, 10), (9, 12), (10, 13)]
    assert len(seen) == 2 * len(windows)
    for (pose, flow), window in zip(seen, windows * 2, strict=True):
        frames = torch.tensor(window.frame_indices(), dtype=torch.float32)
        torch.testing.assert_close(pose[1, :, 0, 0, 0] * 100, frames)  # pose tag = frame / 100
        torch.testing.assert_close(flow[1, :, 0, 0, 0], frames[1:])  # flow row j tagged j + 1
        assert pose.shape[:2] == (2, 4) and flow.shape[:2] == (2, 3)


class LiveTensorBytes(TorchDispatchMode):
    """Peak bytes of tensor storages created under the mode and still referenced by a tensor."""

    def __init__(self):
        super().__init__()
        self.refs: dict[tuple[int, int], list[int]] = {}  # storage -> [tensors alive, bytes]
        self.live = self.peak = 0

    def _release(self, key):
        entry = self.refs[key]
        entry[0] -= 1
        if entry[0] == 0:
            self.live -= entry[1]
            del self.refs[key]

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for tensor in tree_flatten(out)[0]:
            if not isinstance(tensor, torch.Tensor):
                continue
            storage = tensor.untyped_storage()
            key = (storage.data_ptr(), storage.nbytes())
            if key[0] == 0:
                continue
            if key not in self.refs:
                self.refs[key] = [0, key[1]]
                self.live += key[1]
                self.peak = max(self.peak, self.live)
            self.refs[key][0] += 1
            weakref.finalize(tensor, self._release, key)
        return out


def test_live_tensor_bytes_sees_allocations_and_frees():
    with LiveTensorBytes() as tracker:
        a = torch.ones(1000, 250)  # 1 MB
        b = a * 2
        del a
        c = b.view(-1)
        del b
        assert tracker.live == 1_000_000
    assert tracker.peak == 2_000_000
    del c


def test_memory_is_bounded_by_one_window():
    window = 4
    pipe = tiny_pipeline(trajectory=False)
    frames_seen = []
    pipe.unet.register_forward_pre_hook(lambda m, args: frames_seen.append(args[0].shape[:2]))

    def peak(n: int) -> tuple[int, int]:
        inputs = tiny_inputs(n, latent_grid=True)
        pose = inputs.pop("pose_images")
        inputs["pose_images"] = lambda frames: pose[0, frames]  # produced window by window
        with LiveTensorBytes() as sampling:
            latents = pipe(**inputs, num_frames=n, output_type="latent").frames
        with LiveTensorBytes() as decoding:
            for chunk in pipe.decode_latents_iter(latents, decode_chunk_size=window):
                assert chunk.shape[0] <= window
        return sampling.peak, decoding.peak

    short, long = peak(window), peak(4 * window)
    assert long[0] <= 1.5 * short[0], (short, long)
    assert long[1] <= 1.5 * short[1], (short, long)
    assert max(s[1] for s in frames_seen) == window and max(s[0] for s in frames_seen) == 2
