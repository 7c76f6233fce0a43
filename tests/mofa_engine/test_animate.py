"""`animate_portrait`: the one call from portrait + landmark track + drags/brush/mask to frames (tiny networks, CPU).

Modes (keypoint / hybrid / auto), the default landmark mask, denoising checkpoints and resume, cancel.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mofa_engine import MofaPipeline
from mofa_engine.pipeline.animate import AnimationCancelled, PortraitMotion, animate_portrait, resolve_mode
from mofa_engine.pipeline.denoise_state import DenoiseCheckpoint, StaleCheckpointError
from mofa_engine.regions import face_region_mask
from tests.mofa_engine.test_pipeline import tiny_components
from tests.mofa_engine.tiny_configs import FRONTAL_FACE_68, tiny_cmp

SIZE, FRAMES = 64, 6


@pytest.fixture(scope="module")
def pipe() -> MofaPipeline:
    pipe = MofaPipeline(**tiny_components(trajectory=True), cmp=tiny_cmp())
    pipe.set_progress_bar_config(disable=True)
    return pipe


def talking(frames: int = FRAMES) -> PortraitMotion:
    reference = np.array(FRONTAL_FACE_68, np.float32) * SIZE
    points = np.repeat(reference[None], frames, axis=0)
    points[1:, 48:68, 1] += np.linspace(0.5, 3, frames - 1, dtype=np.float32)[:, None]  # the mouth opens
    return PortraitMotion(points=points, reference=reference)


def portrait() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)


def record(module) -> list[dict]:
    calls: list[dict] = []
    module.register_forward_hook(lambda m, a, kw, out: calls.append(kw), with_kwargs=True)
    return calls


def spy_pipeline(pipe, monkeypatch) -> list[dict]:
    calls: list[dict] = []
    original = MofaPipeline.__call__

    def spy(self, **kwargs):
        calls.append(kwargs)
        return original(self, **kwargs)

    monkeypatch.setattr(MofaPipeline, "__call__", spy)
    return calls


SETTINGS = dict(num_inference_steps=4, window_size=4, decode_chunk_size=4, seed=3)


# ---------------------------------------------------------------- modes
def test_auto_is_keypoint_without_background_controls_and_hybrid_with_them():
    still = talking()
    assert resolve_mode("auto", still) == "keypoint"
    drags = PortraitMotion(still.points, still.reference, trajectories=[np.array([[10.0, 10.0], [20.0, 12.0]])])
    brush = PortraitMotion(still.points, still.reference, brush=np.ones((SIZE, SIZE), bool))
    mask = PortraitMotion(still.points, still.reference, landmark_mask=np.ones((SIZE, SIZE), np.float32))
    for motion in (drags, brush, mask):
        assert resolve_mode("auto", motion) == "hybrid"
        with pytest.raises(ValueError, match="keypoint mode"):
            resolve_mode("keypoint", motion)
    assert resolve_mode("hybrid", still) == "hybrid" and resolve_mode("keypoint", still) == "keypoint"
    with pytest.raises(ValueError, match="mode"):
        resolve_mode("traj", still)


def test_keypoint_runs_the_landmark_adapter_alone_over_the_whole_frame(pipe, monkeypatch):
    calls = spy_pipeline(pipe, monkeypatch)
    landmark, trajectory = record(pipe.landmark_adapter), record(pipe.trajectory_adapter)
    frames = list(animate_portrait(pipe, portrait(), talking(), mode="auto", **SETTINGS))
    assert len(frames) == FRAMES and all(f.shape == (SIZE, SIZE, 3) and f.dtype == np.uint8 for f in frames)
    (kw,) = calls
    assert kw["landmark_mask"] is None and kw["trajectory_flow"] is None
    windows = 2  # 6 frames in windows of 4: (1,4), (3,6)
    assert len(landmark) == windows * 4 and not trajectory  # one adapter per window and step


def test_hybrid_holds_the_rest_still_inside_the_default_head_mask(pipe, monkeypatch):
    calls = spy_pipeline(pipe, monkeypatch)
    landmark, trajectory = record(pipe.landmark_adapter), record(pipe.trajectory_adapter)
    motion = talking()
    list(animate_portrait(pipe, portrait(), motion, mode="hybrid", **SETTINGS))
    (kw,) = calls
    head = face_region_mask(motion.reference, SIZE, SIZE, threshold=0.5)
    assert 0 < head.mean() < 1
    torch.testing.assert_close(kw["landmark_mask"][0, 0], torch.from_numpy(head))
    assert kw["trajectory_flow"] is None  # no drags: the trajectory adapter sees zero flow
    assert len(landmark) == len(trajectory) == 8 and not trajectory[0]["controlnet_flow"].any()


def test_drags_reach_the_trajectory_adapter_and_the_modes_differ(pipe, monkeypatch):
    calls = spy_pipeline(pipe, monkeypatch)
    base = talking()
    drags = PortraitMotion(base.points, base.reference, trajectories=[np.array([[5.0, 50.0], [20.0, 60.0]])])
    hybrid = np.stack(list(animate_portrait(pipe, portrait(), drags, **SETTINGS)))
    keypoint = np.stack(list(animate_portrait(pipe, portrait(), base, **SETTINGS)))
    assert calls[0]["trajectory_flow"].shape == (1, FRAMES - 1, 2, SIZE // 8, SIZE // 8)
    assert calls[0]["trajectory_flow"].abs().sum() > 0
    assert np.abs(hybrid.astype(int) - keypoint).mean() > 0.1


def test_bad_sizes_and_single_frames():
    with pytest.raises(ValueError, match="multiples of 64"):
        animate_portrait(None, np.zeros((60, 64, 3), np.uint8), talking())
    still = talking(1)
    (frame,) = list(animate_portrait(None, portrait(), still))
    assert np.array_equal(frame, portrait())


# ---------------------------------------------------------------- checkpoints, resume, cancel
def test_interrupted_then_resumed_gives_the_same_frames(pipe, tmp_path):
    motion, image = talking(), portrait()
    uninterrupted = np.stack(list(animate_portrait(pipe, image, motion, **SETTINGS)))
    ckpt = tmp_path / "out.mp4.mofa-state.safetensors"

    class Killed(Exception):
        pass

    def die_at_step_3(stage, done, total):
        if stage == "denoise" and done == 3:
            raise Killed

    with pytest.raises(Killed):
        list(animate_portrait(pipe, image, motion, checkpoint_path=ckpt, checkpoint_every=2, progress=die_at_step_3,
                              **SETTINGS))
    assert sorted(p.name for p in tmp_path.iterdir()) == [ckpt.name]  # no temporary file left beside it
    steps: list[int] = []
    resumed = np.stack(list(animate_portrait(
        pipe, image, motion, checkpoint_path=ckpt, checkpoint_every=2, resume=True,
        progress=lambda stage, done, total: steps.append(done) if stage == "denoise" else None, **SETTINGS)))
    assert steps == [3, 4]  # continued after step 2, the last one saved
    np.testing.assert_array_equal(resumed, uninterrupted)

    # the finished state is saved too: resuming it only decodes
    steps.clear()
    again = np.stack(list(animate_portrait(pipe, image, motion, checkpoint_path=ckpt, resume=True,
                                           progress=lambda s, d, t: steps.append(d) if s == "denoise" else None,
                                           **SETTINGS)))
    assert steps == [] and np.array_equal(again, uninterrupted)


def test_a_checkpoint_of_another_render_is_refused(pipe, tmp_path):
    ckpt = tmp_path / "state.safetensors"
    list(animate_portrait(pipe, portrait(), talking(), checkpoint_path=ckpt, **SETTINGS))
    with pytest.raises(StaleCheckpointError, match="other inputs"):
        animate_portrait(pipe, portrait(), talking(), checkpoint_path=ckpt, resume=True, **{**SETTINGS, "seed": 4})
    ckpt.write_bytes(b"not a checkpoint")
    with pytest.raises(StaleCheckpointError, match="unreadable"):
        animate_portrait(pipe, portrait(), talking(), checkpoint_path=ckpt, resume=True, **SETTINGS)
    # without resume an old file is simply replaced
    list(animate_portrait(pipe, portrait(), talking(), checkpoint_path=ckpt, **SETTINGS))
    assert DenoiseCheckpoint(ckpt, "x").path.stat().st_size > 100


def test_cancel_stops_within_one_step(pipe):
    import threading

    cancel = threading.Event()
    steps: list[int] = []

    def progress(stage, done, total):
        if stage == "denoise":
            steps.append(done)
            cancel.set()

    frames = animate_portrait(pipe, portrait(), talking(), progress=progress, cancel=cancel, **SETTINGS)
    with pytest.raises(AnimationCancelled):
        next(frames)
    assert steps == [1]
