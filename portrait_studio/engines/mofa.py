"""The MOFA engine as the app runs it: checkpoints -> pipeline, options and files -> `animate_portrait`.

`load_pipeline` loads the published networks from the checkpoint directory (SVD-xt-1-1, both
adapters, CMP) once per (directory, dtype); `mofa_frames` maps the render options, the landmark
track, the user's drags, motion brush and `--landmark-mask` (framed like the portrait) onto one call
of `mofa_engine.pipeline.animate.animate_portrait`, which owns the MOFA algorithm (modes, motion hints, CMP,
default landmark mask, periodic sampling, denoising checkpoints, streamed decode).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from landmark_drivers import LandmarkTrack
from mofa_engine.models.cmp import CMP, CMPCheckpointError
from mofa_engine.models.flow_adapter import LandmarkAdapter, TrajectoryAdapter
from mofa_engine.pipeline.animate import AnimationCancelled, PortraitMotion, animate_portrait
from mofa_engine.pipeline.denoise_state import StaleCheckpointError
from mofa_engine.pipeline.loading import ComponentLoadError, load_pretrained
from mofa_engine.trajectories import MODEL_LENGTH
from mofa_engine.pipeline.pipeline import MofaPipeline

from ..ckpts import MOFA_FILES, check_ckpts, default_ckpt_dir
from ..controls import MotionControls, framed_mask
from ..errors import InputError, MissingCheckpointsError, RenderCancelled
from ..options import MofaOptions, RenderOptions
from ..portrait import Portrait
from ..progress import ProgressFn, no_progress
from .base import ModelCache

logger = logging.getLogger(__name__)

DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}


# ---------------------------------------------------------------------------------------------- device
def resolve_device(mofa: MofaOptions) -> tuple[torch.device, torch.dtype]:
    """(device, dtype) of the run: `--device`, else CUDA when torch sees a GPU, else the CPU.

    `--dtype` applies on accelerators; the CPU always runs fp32 (fp16 convolutions are slow or missing
    there). Raises InputError for a device torch does not know or a CUDA device without a GPU.
    """
    name = mofa.device or ("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError) as exc:
        raise InputError(f"--device {name!r} is not a torch device ({exc})") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"--device {name} was asked for, but torch sees no CUDA GPU on this machine")
    if device.type == "cpu":
        if mofa.dtype != "fp32":
            logger.info("mofa: --dtype %s applies on GPUs; running in fp32 on the CPU", mofa.dtype)
        return device, torch.float32
    return device, DTYPES[mofa.dtype]


# ---------------------------------------------------------------------------------------------- loading
def _checkpoint_paths(root: Path) -> dict[str, Path]:
    """{file key: path} of every MOFA file under `root`; one-line errors for missing or non-JSON ones."""
    report = check_ckpts(root, MOFA_FILES, deep=False)
    missing = [f for f in report.problems if f.status == "missing"]
    if missing:
        more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
        names = ", ".join(str(f.path) for f in missing[:3]) + more
        raise MissingCheckpointsError(f"the mofa engine needs the MOFA-Video checkpoints in {root}; missing: {names} "
                                      "(run `python -m portrait_studio check-ckpts` for the full list, or `download`)")
    if report.problems:
        bad = report.problems[0]
        raise InputError(f"checkpoint file {bad.path} is unreadable: {bad.detail}")
    return {f.spec.key: f.path for f in report.files}


@contextmanager
def _quiet_loading() -> Iterator[None]:
    """No per-file progress bars from transformers/diffusers while loading (the app reports "load")."""
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    states = [(m, m.is_progress_bar_enabled()) for m in (diffusers_logging, transformers_logging)]
    for module, _ in states:
        module.disable_progress_bar()
    try:
        yield
    finally:
        for module, enabled in states:
            if enabled:
                module.enable_progress_bar()


def load_pipeline(root: Path, dtype: torch.dtype, progress: ProgressFn = no_progress) -> MofaPipeline:
    """Load every MOFA network from the checkpoint directory `root` onto the CPU, in `dtype` (CMP fp32).

    SVD-xt-1-1 loads its `fp16` variant files when `unet/` has them (the published layout), else the
    plain files. Raises MissingCheckpointsError / InputError (one line naming the file) when a file is
    missing, unreadable, has the wrong shapes or lacks weights.
    """
    paths = _checkpoint_paths(root)
    svd = paths["svd/model_index"].parent
    variant = "fp16" if (svd / "unet" / "diffusion_pytorch_model.fp16.safetensors").is_file() else None
    progress("load", 0, 4)
    try:
        with _quiet_loading():
            landmark = load_pretrained(LandmarkAdapter, paths["ldmk_controlnet/config"].parent, torch_dtype=dtype)
            progress("load", 1, 4)
            trajectory = load_pretrained(TrajectoryAdapter, paths["traj_controlnet/config"].parent, torch_dtype=dtype)
            progress("load", 2, 4)
            cmp = CMP.from_checkpoint(paths["cmp"], map_location="cpu")
            progress("load", 3, 4)
            pipe = MofaPipeline.from_svd(svd, landmark, trajectory, cmp, torch_dtype=dtype, variant=variant)
            progress("load", 4, 4)
    except ComponentLoadError as exc:
        raise InputError(f"cannot load the MOFA checkpoint {exc.path}: {exc.reason}") from None
    except CMPCheckpointError as exc:
        raise InputError(f"cannot load the CMP checkpoint: {_one_line(exc)}") from None
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _one_line(exc: BaseException, limit: int = 400) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


# ---------------------------------------------------------------------------------------------- inputs
def portrait_motion(options: RenderOptions, portrait: Portrait, track: LandmarkTrack,
                    controls: MotionControls) -> PortraitMotion:
    """The landmark track, drags, brush and `--landmark-mask` (framed like the portrait) in output pixels.

    The user's mask is in the photo's pixels (white = landmark adapter; grey values blend the two
    adapters); without one the engine uses the head region of `track.reference`.
    """
    path = options.mofa.landmark_mask
    return PortraitMotion(
        points=np.asarray(track.points, np.float32),
        reference=np.asarray(track.reference, np.float32),
        trajectories=tuple(controls.trajectories or ()),
        brush=controls.brush,
        landmark_mask=None if path is None else framed_mask(Path(path), portrait.framing),
    )


# ---------------------------------------------------------------------------------------------- frames
def load_mofa(options: RenderOptions, progress: ProgressFn = no_progress) -> MofaPipeline:
    """Load the MOFA pipeline from the checkpoint directory (on the CPU, in the dtype it will run in).

    Raises MissingCheckpointsError / InputError (one line, naming the file) for unusable checkpoints.
    """
    _, dtype = resolve_device(options.mofa)
    root = Path(options.ckpt_dir) if options.ckpt_dir is not None else default_ckpt_dir()
    return load_pipeline(root, dtype, progress)


def camera_inputs(track: LandmarkTrack, controls: MotionControls, height: int, width: int
                  ) -> tuple[LandmarkTrack, MotionControls]:
    """A camera move as MOFA reads it: the landmarks moved with the frame (keypoint flow, inside the
    landmark mask) and a grid of drags following the move added to the user's (trajectory flow, outside).
    Without a camera move, the inputs unchanged."""
    camera = controls.camera
    if camera is None or track.num_frames < 2:
        return track, controls
    num_frames = track.num_frames
    points = np.stack([camera.apply(track.points[t], camera.progress(t, num_frames), height, width)
                       for t in range(num_frames)]).astype(np.float32)  # [T, 68, 2]
    drags = camera.drags(num_frames, height, width, length=max(MODEL_LENGTH, num_frames))
    moved = LandmarkTrack(points, track.reference, track.fps)
    return moved, replace(controls, trajectories=list(controls.trajectories or []) + drags)


def mofa_frames(options: RenderOptions, portrait: Portrait, track: LandmarkTrack, controls: MotionControls,
                progress: ProgressFn = no_progress, pipe: MofaPipeline | None = None,
                cancel: threading.Event | None = None, state_path: Path | None = None) -> Iterator[np.ndarray]:
    """uint8 `[H, W, 3]` RGB frames of the MOFA engine, one per landmark frame (`animate_portrait`).

    Checkpoints load and every motion input is computed when this is called (so a bad checkpoint fails
    before any output is opened); denoising runs when the first frame is asked for, and frames are
    decoded `options.mofa.decode_chunk` at a time. Progress stages: "load", "flow", "denoise".

    Args:
        options: validated render options (`mofa`, `seed`, `ckpt_dir`).
        portrait: `image` uint8 `[H, W, 3]` with H and W multiples of 64, and its framing.
        track: landmarks `[T, 68, 2]` in `portrait.image` pixels; frame 0 is the portrait.
        controls: drags (output pixels) and motion brush.
        pipe: a pipeline from `load_mofa` (loaded here when None).
        cancel: checked after every denoising step and before every decoded chunk (RenderCancelled).
        state_path: where the denoising state is saved every `--checkpoint-every` steps (and read with
            `--resume`); the caller removes it once the video is written. None: no checkpoints.

    Raises:
        InputError: `--resume` found a checkpoint of another render (or an unreadable one).
    """
    mofa = options.mofa
    device, _ = resolve_device(mofa)
    height, width = portrait.image.shape[:2]
    track, controls = camera_inputs(track, controls, height, width)
    motion = portrait_motion(options, portrait, track, controls)
    pipe = pipe if pipe is not None else load_mofa(options, progress)
    if mofa.cpu_offload and device.type != "cuda":
        logger.info("mofa: --cpu-offload applies to CUDA devices only; ignored on %s", device)
    if mofa.resume and state_path is not None and not state_path.is_file():
        logger.warning("mofa: --resume found no checkpoint beside the output; rendering from the start")
    checkpoint = state_path if state_path is not None and (mofa.checkpoint_every > 0 or mofa.resume) else None
    try:
        frames = animate_portrait(
            pipe, portrait.image, motion, mode=mofa.mode, num_inference_steps=mofa.steps,
            min_guidance_scale=mofa.guidance_min, max_guidance_scale=mofa.guidance_max,
            landmark_scale=mofa.landmark_scale, trajectory_scale=mofa.trajectory_scale, window_size=mofa.window,
            decode_chunk_size=mofa.decode_chunk, temporal_context=mofa.temporal_context, seed=options.seed,
            device=device, cpu_offload=mofa.cpu_offload, progress=progress, cancel=cancel,
            checkpoint_path=checkpoint, checkpoint_every=mofa.checkpoint_every or mofa.steps, resume=mofa.resume,
        )
    except StaleCheckpointError as exc:
        raise InputError(f"--resume: {exc}; delete it or render without --resume") from None
    return _cancellable(frames)


def _cancellable(frames: Iterator[np.ndarray]) -> Iterator[np.ndarray]:
    """The engine's frames, its cancellation reported as the app's RenderCancelled."""
    try:
        yield from frames
    except AnimationCancelled:
        raise RenderCancelled("the render was cancelled") from None


class MofaEngine:
    """MOFA-Video on SVD-xt: the published networks, loaded once per (checkpoint dir, dtype) and kept
    in the Studio's model cache; each render runs with its own `RenderOptions` (steps, guidance, seed...).
    """

    name = "mofa"
    multiple = 64  # SVD's latent grid (8) times its UNet's down-sampling (8)

    def __init__(self, options: RenderOptions, cache: ModelCache | None = None) -> None:
        self.options = options
        self.cache = cache if cache is not None else ModelCache()
        self.device, self.dtype = resolve_device(options.mofa)
        # on a CPU the big convolutions gain from every core; on a GPU the CPU threads hardly matter
        self.threads = (os.cpu_count() or 1) if self.device.type == "cpu" else None
        self.root = Path(options.ckpt_dir) if options.ckpt_dir is not None else default_ckpt_dir()
        self.pipe: MofaPipeline | None = None

    def load(self, progress: ProgressFn) -> None:
        """Load the pipeline, or reuse the cached one when the checkpoint dir and dtype are the same."""
        key = (str(self.root.resolve()), str(self.dtype))
        self.pipe = self.cache.get("mofa", key, lambda: load_pipeline(self.root, self.dtype, progress))

    def frames(self, portrait: Portrait, track: LandmarkTrack, controls: MotionControls, progress: ProgressFn,
               cancel: threading.Event | None = None, state_path: Path | None = None) -> Iterator[np.ndarray]:
        if self.pipe is None:
            self.load(progress)
        return mofa_frames(self.options, portrait, track, controls, progress, pipe=self.pipe, cancel=cancel,
                           state_path=state_path)
