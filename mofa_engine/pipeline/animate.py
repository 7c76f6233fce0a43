"""MOFA from a portrait: one call from image + landmark track + drags/brush/mask to streamed frames.

`animate_portrait(pipe, image, motion, ...)` is everything the MOFA engine does after its networks
are loaded (spec §2, §6.4, §7):

* mode: `keypoint` runs the landmark adapter alone over the whole frame (one adapter per step, the
  whole picture follows the face: the reference's long, talking-clip path); `hybrid` blends it
  inside the landmark mask with the trajectory adapter outside (the background held still, or moved
  by drags); `auto` is keypoint unless there are drags, a motion brush or a user landmark mask;
* landmark flow: paper Eq. 2 hints of the track densified by CMP, kept on the latent grid
  (`flow[..., ::8, ::8]`, exact for the adapters): a clip costs `T * 2 * H/8 * W/8` floats;
* pose images: drawn on demand for the frames of the window being denoised (never the whole clip);
* trajectory flow (hybrid): drags split by the motion brush, Eq. 4 hints (`mofa_engine.drag_hints`), CMP, the
  in-brush flow scaled by the brush, the two groups combined (spec §2.3); no drag -> the trajectory
  adapter sees zero flow and keeps everything outside the landmark mask still;
* landmark mask (hybrid): the caller's, else the head region (face, hair, neck) of the portrait's own
  landmarks thresholded at 0.5;
* checkpoints: with a `DenoiseCheckpoint`, the clip latents are saved every few steps, and
  `resume=True` continues from the saved step (same inputs and seed: the same frames).

CMP's image encoder runs once per clip, its decoder `CMP_CHUNK` frames at a time; frames are decoded
`decode_chunk_size` at a time as the caller consumes them.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F

from mofa_engine.drag_hints import DragGroups, drag_groups
from mofa_engine.models.temporal_context import TemporalContextLayout
from mofa_engine.progress import ProgressFn, no_progress
from mofa_engine.regions import face_region_mask
from mofa_engine.sparse_flow import CMP_SIZE
from mofa_engine.drag_hints import combine_brush_flows

from .denoise_state import DenoiseCheckpoint, DenoiseState, fingerprint
from .periodic import plan_windows
from .pipeline import MofaPipeline
from .pose_image import draw_pose_images

__all__ = ["CMP_CHUNK", "AnimationCancelled", "MofaMode", "PortraitMotion", "animate_portrait", "resolve_mode"]

logger = logging.getLogger(__name__)

CMP_CHUNK = 8  # hint maps per CMP call
MofaMode = Literal["auto", "keypoint", "hybrid"]


class AnimationCancelled(Exception):
    """The caller's cancel event was set; raised within one denoising step or one decode chunk."""


@dataclass(frozen=True)
class PortraitMotion:
    """What moves the portrait, in its pixels (x = column, y = row)."""

    points: np.ndarray  # float32 [T, 68, 2] landmark track; frame 0 is the portrait itself
    reference: np.ndarray  # float32 [68, 2] the portrait's own landmarks (for the default landmark mask)
    trajectories: Sequence[np.ndarray] = field(default_factory=tuple)  # drags, float [N_i, 2] each
    brush: np.ndarray | None = None  # bool or 0..255 [H, W]: the region the drags move (hybrid)
    landmark_mask: np.ndarray | None = None  # float32 [H, W] in [0, 1], landmark adapter where 1 (hybrid)

    @property
    def num_frames(self) -> int:
        return int(self.points.shape[0])

    @property
    def moves_background(self) -> bool:
        """Whether anything asks for the trajectory adapter (drags, brush or a user landmark mask)."""
        return bool(len(self.trajectories)) or self.brush is not None or self.landmark_mask is not None


def resolve_mode(mode: MofaMode, motion: PortraitMotion) -> Literal["keypoint", "hybrid"]:
    """`auto` -> hybrid when the motion moves the background (drags, brush, user mask), else keypoint.

    Raises ValueError for `keypoint` with drags, a brush or a landmark mask (those need hybrid).
    """
    if mode not in ("auto", "keypoint", "hybrid"):
        raise ValueError(f"mode must be auto, keypoint or hybrid, got {mode!r}")
    if mode == "auto":
        return "hybrid" if motion.moves_background else "keypoint"
    if mode == "keypoint" and motion.moves_background:
        raise ValueError("keypoint mode runs the landmark adapter alone: drags, a motion brush or a landmark "
                         "mask need hybrid (or auto)")
    return mode


def default_landmark_mask(reference: np.ndarray, height: int, width: int) -> np.ndarray:
    """The head region (face, hair, neck) of `reference` `[68, 2]`, thresholded at 0.5: float32 `[H, W]` 0/1."""
    return face_region_mask(reference, height, width, threshold=0.5)


def _grid_weight(brush_grid: np.ndarray, height: int, width: int, step: int) -> torch.Tensor:
    """`brush384 / 255` nearest-upsampled like the flows and picked on their grid: float32 `[h, w]`."""
    weight = torch.from_numpy(np.ascontiguousarray(brush_grid, dtype=np.float32))[None, None] / 255.0
    return F.interpolate(weight, size=(height, width), mode="nearest")[0, 0, ::step, ::step]


class _FlowProgress:
    """Reports CMP work as one "flow" stage over several densifications."""

    def __init__(self, progress: ProgressFn, parts: int, frames: int) -> None:
        self.progress, self.total, self.frames, self.offset = progress, parts * frames, frames, 0

    def part(self) -> Callable[[int, int], None]:
        offset, self.offset = self.offset, self.offset + self.frames
        return lambda done, _total: self.progress("flow", offset + done, self.total)


@torch.no_grad()
def trajectory_flow(pipe: MofaPipeline, image: torch.Tensor, groups: DragGroups, num_frames: int,
                    features, report: _FlowProgress | None = None) -> torch.Tensor | None:
    """The dense drag flow frame 0 -> t on the latent grid, float `[1, T-1, 2, H/8, W/8]` (image pixels).

    image: float `[1, 3, H, W]` in [0, 1] on the CMP's device; groups: `drag_groups(...)` for this clip;
    features: the image's CMP features. Returns None without drags (the pipeline then gives the
    trajectory adapter zero flow).
    """
    inside, outside, brush = groups
    if inside is None and outside is None:
        return None
    height, width = image.shape[-2:]
    step = pipe.vae_scale_factor
    flows = []
    for hints in (inside, outside):
        if hints is None:  # a group without drags: zero flow (spec §2.3)
            flows.append(torch.zeros(1, num_frames - 1, 2, height // step, width // step, device=image.device))
            continue
        part = report.part() if report is not None else None
        flows.append(pipe.prepare_dense_flow(image, hints.flow, hints.mask, num_frames, CMP_CHUNK,
                                             features=features, progress=part).float())
    flow_in, flow_out = flows
    if inside is not None:  # the in-brush flow fades out with the (resized, fractional) brush
        flow_in = flow_in * _grid_weight(brush, height, width, step).to(flow_in.device)
    return combine_brush_flows(flow_in, flow_out)


@torch.no_grad()
def motion_flows(pipe: MofaPipeline, image: torch.Tensor, motion: PortraitMotion,
                 progress: ProgressFn = no_progress) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(landmark flow, drag flow or None), float `[1, T-1, 2, H/8, W/8]` on the CPU, from `pipe.cmp`.

    CMP's image encoder runs once for the clip; its decoder a chunk of frames at a time. The clip-long
    flows wait on the CPU; the sampler moves a window at a time.
    image: float `[1, 3, H, W]` in [0, 1] on the CMP's device.
    """
    height, width = image.shape[-2:]
    num_frames = motion.num_frames
    features = pipe.cmp.image_features(image, (CMP_SIZE, CMP_SIZE))
    groups: DragGroups = (None, None, None)
    if len(motion.trajectories):
        groups = drag_groups(motion.trajectories, motion.brush, height, width, num_frames)
    report = _FlowProgress(progress, 1 + sum(g is not None for g in groups[:2]), num_frames - 1)
    landmark_flow = pipe.prepare_landmark_flow(image, np.asarray(motion.points, np.float32), CMP_CHUNK,
                                               grid_size=CMP_SIZE, features=features, progress=report.part())
    drag_flow = trajectory_flow(pipe, image, groups, num_frames, features, report)
    return landmark_flow.cpu(), (drag_flow.cpu() if drag_flow is not None else None)


def animate_portrait(
    pipe: MofaPipeline,
    image: np.ndarray,
    motion: PortraitMotion,
    *,
    mode: MofaMode = "auto",
    num_inference_steps: int = 25,
    min_guidance_scale: float = 1.0,
    max_guidance_scale: float = 3.0,
    landmark_scale: float = 1.0,
    trajectory_scale: float = 0.6,
    window_size: int = 25,
    decode_chunk_size: int = 8,
    temporal_context: TemporalContextLayout = "reference",
    seed: int = 0,
    device: torch.device | str = "cpu",
    cpu_offload: bool = False,
    progress: ProgressFn = no_progress,
    cancel: threading.Event | None = None,
    checkpoint_path: str | os.PathLike | None = None,
    checkpoint_every: int = 5,
    resume: bool = False,
) -> Iterator[np.ndarray]:
    """uint8 `[H, W, 3]` RGB frames of the portrait animated by `motion`, one per landmark frame.

    The mask and every motion input are computed when this is called (so bad inputs fail before the
    caller opens any output); denoising runs when the first frame is asked for, and frames are
    decoded `decode_chunk_size` at a time. Progress stages: "flow", "denoise".

    Args:
        pipe: a loaded `MofaPipeline` with its `cmp` (and, for hybrid, its `trajectory_adapter`), on the
            CPU or on `device`; it is moved to `device` (or handed to diffusers' model offload).
        image: uint8 `[H, W, 3]` RGB portrait, H and W multiples of 64.
        motion: the landmark track and background controls, in `image` pixels.
        mode: "auto", "keypoint" or "hybrid" (`resolve_mode`).
        num_inference_steps ... temporal_context: `MofaPipeline.__call__`'s settings.
        seed: seeds the image noise augmentation and the initial latents.
        device: where the networks run; cpu_offload: diffusers' model offload (accelerators only).
        cancel: when set, `AnimationCancelled` is raised within one denoising step or decode chunk.
        checkpoint_path: save the clip latents here every `checkpoint_every` steps and after the last
            (safetensors, written atomically); None: no checkpoints. The caller removes the file once
            the frames are safely stored (`DenoiseCheckpoint(...).remove()`).
        resume: continue from the checkpoint at `checkpoint_path` when there is one.

    Raises:
        ValueError: bad sizes, a mode that contradicts the motion, or a checkpoint written for other
            inputs or settings (`StaleCheckpointError`).
    """
    height, width = image.shape[:2]
    if height % 64 or width % 64:
        raise ValueError(f"the mofa engine needs sides that are multiples of 64, got {width}x{height}")
    chosen = resolve_mode(mode, motion)
    num_frames = motion.num_frames
    if num_frames < 2:  # a single frame is the portrait itself
        return iter([np.ascontiguousarray(image)])
    if chosen == "hybrid" and pipe.trajectory_adapter is None:
        raise ValueError("hybrid mode needs the pipeline's trajectory adapter")
    device = torch.device(device)
    mask = None
    if chosen == "hybrid":
        mask_np = motion.landmark_mask if motion.landmark_mask is not None else default_landmark_mask(
            motion.reference, height, width)
        mask = torch.from_numpy(np.ascontiguousarray(mask_np, dtype=np.float32))[None, None]  # [H,W] -> [1,1,H,W]

    checkpoint = None
    if checkpoint_path is not None:
        key = fingerprint(image, motion.points, mask, [np.asarray(t) for t in motion.trajectories], motion.brush,
                          chosen, num_inference_steps, min_guidance_scale, max_guidance_scale, landmark_scale,
                          trajectory_scale, window_size, temporal_context, seed, pipe.unet.dtype)
        checkpoint = DenoiseCheckpoint(checkpoint_path, key, checkpoint_every)
    state = checkpoint.load() if checkpoint is not None and resume else None  # stale: raises before any work

    offload = cpu_offload and device.type != "cpu"  # model offload moves idle networks to the CPU
    if offload:
        pipe.cmp.to(device)  # the rest moves under diffusers' model offload, after the flows
    else:
        pipe.to(device)
    image_t = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None].float().div(255).to(device)
    landmark_flow, drag_flow = motion_flows(pipe, image_t, _only_landmarks(motion, chosen), progress)
    if offload:  # CMP is done: hand every network to diffusers' model offload
        pipe.cmp.to("cpu")
        pipe.enable_model_cpu_offload(device=device)
    points = np.asarray(motion.points, np.float32)

    def pose_images(frames: torch.Tensor) -> torch.Tensor:  # clip frames -> [n,3,H,W] in [0,1]
        return draw_pose_images(points[frames.cpu().numpy()], height, width)

    def on_step_end(_pipe, step, _t, tensors):
        done = step + 1
        if checkpoint is not None and checkpoint.due(done, num_inference_steps):
            checkpoint.save(DenoiseState(done, num_inference_steps, tensors["latents"]))
        progress("denoise", done, num_inference_steps)
        _check_cancel(cancel)
        return {}

    windows = plan_windows(num_frames, window_size)
    logger.info("mofa %s: %d frames at %dx%d on %s (%s), %d window(s) of %d, %d steps%s%s", chosen, num_frames,
                width, height, device, str(pipe.unet.dtype).removeprefix("torch."), len(windows),
                windows[0].num_frames, num_inference_steps, ", drags" if drag_flow is not None else "",
                f", resuming after step {state.step}" if state is not None else "")
    call = dict(
        image=image_t, landmark_flow=landmark_flow, pose_images=pose_images, landmark_mask=mask,
        trajectory_flow=drag_flow, landmark_scale=landmark_scale, trajectory_scale=trajectory_scale,
        height=height, width=width, num_frames=num_frames, window_size=window_size,
        num_inference_steps=num_inference_steps, min_guidance_scale=min_guidance_scale,
        max_guidance_scale=max_guidance_scale, decode_chunk_size=decode_chunk_size,
        temporal_context=temporal_context, generator=torch.Generator("cpu").manual_seed(seed),
        resume_from=state, output_type="latent", callback_on_step_end=on_step_end,
    )
    return _stream(pipe, call, decode_chunk_size, state, cancel)


def _only_landmarks(motion: PortraitMotion, mode: str) -> PortraitMotion:
    """Keypoint mode computes no drag flow."""
    if mode == "hybrid":
        return motion
    return PortraitMotion(points=motion.points, reference=motion.reference)


def _check_cancel(cancel: threading.Event | None) -> None:
    if cancel is not None and cancel.is_set():
        raise AnimationCancelled("the animation was cancelled")


def _stream(pipe: MofaPipeline, call: dict, decode_chunk: int, state: DenoiseState | None,
            cancel: threading.Event | None) -> Iterator[np.ndarray]:
    """Denoise (on the first `next`; nothing left to do when resuming a finished state), then decode and
    yield frames one chunk at a time."""
    _check_cancel(cancel)
    if state is not None and state.step == state.total_steps:
        latents = state.latents.to(pipe._execution_device)  # denoising had finished before the interruption
    else:
        latents = pipe(**call).frames  # [1,T,4,h,w]
    for chunk in pipe.decode_latents_iter(latents, decode_chunk):  # uint8 [n,H,W,3]
        _check_cancel(cancel)
        yield from chunk
