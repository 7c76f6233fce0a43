"""The MOFA engine as the app runs it: checkpoints -> pipeline -> motion inputs -> streamed frames.

`mofa_frames` loads the published networks from the checkpoint directory (SVD-xt-1-1, both
adapters, CMP), turns the landmark track and the user's drags into what the sampler reads, runs
`MofaPipeline` (periodic sampling over windows) and decodes the latents a chunk at a time.

Inputs, per spec §2 and §6.4:
* landmark flow: paper Eq. 2 hints of `track.points` (frame 0 = the portrait) densified by CMP,
  kept on the latent grid (`flow[..., ::8, ::8]`, exact for the adapters): a clip costs
  `T * 2 * H/8 * W/8` floats, never `T * 2 * H * W`;
* pose images: drawn on demand for the frames of the window being denoised (never the whole clip);
* trajectory flow: drags split by the motion brush, Eq. 4 hints, CMP, in-brush flow scaled by the
  brush, the two groups combined (spec §2.3); no drag -> the trajectory adapter sees zero flow and
  keeps everything outside the landmark mask still;
* landmark mask: the user's `--landmark-mask` (photo coordinates, framed like the portrait), else the
  head region (face, hair, neck) of the portrait thresholded at 0.5.

Deviation from the reference (documented): the Hybrid demo samples every drag to 25 points and
renders at most 25 frames. For a clip of T > 25 frames each drag is sampled to T points instead, so
the drag spans the whole clip (frame t follows point t); for T <= 25 it is the reference's 25 points
(truncated to the clip).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from landmark_drivers import LandmarkTrack
from mofa_engine.models.cmp import CMP, CMPCheckpointError, CMPImageFeatures
from mofa_engine.models.flow_adapter import LandmarkAdapter, TrajectoryAdapter
from mofa_engine.pipeline.loading import ComponentLoadError, load_pretrained
from mofa_engine.pipeline.periodic import plan_windows
from mofa_engine.pipeline.pipeline import MofaPipeline
from mofa_engine.pipeline.pose_image import draw_pose_images
from mofa_engine.regions import face_region_mask
from mofa_engine.sparse_flow import CMP_SIZE
from mofa_engine.trajectories import MODEL_LENGTH, brush_to_grid, combine_brush_flows, grid_trajectories

from ..ckpts import MOFA_FILES, check_ckpts, default_ckpt_dir
from ..controls import MotionControls, framed_mask
from ..errors import InputError, MissingCheckpointsError
from ..options import MofaOptions, RenderOptions
from ..portrait import Portrait
from ..progress import ProgressFn, no_progress
from .base import ModelCache, check_cancel

logger = logging.getLogger(__name__)

CMP_CHUNK = 8  # hint maps per CMP call
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
def landmark_mask(options: RenderOptions, portrait: Portrait, reference: np.ndarray) -> torch.Tensor:
    """Where the landmark adapter drives (1) and the trajectory adapter holds (0): float `[1, 1, H, W]` in [0, 1].

    `--landmark-mask` is in the photo's pixels (white = landmark adapter) and is framed like the
    portrait; grey values blend the two adapters. Default: the head region of `reference` (68 landmarks
    in output pixels), thresholded at 0.5.
    """
    height, width = portrait.image.shape[:2]
    path = options.mofa.landmark_mask
    if path is None:
        mask = face_region_mask(reference, height, width, threshold=0.5)
    else:
        mask = framed_mask(Path(path), portrait.framing)
    return torch.from_numpy(np.ascontiguousarray(mask, dtype=np.float32))[None, None]  # [H,W] -> [1,1,H,W]


class DragHints:
    """Eq. 4 sparse hints of one group of drags on the CMP grid, made for any frames on demand.

    paths: float64 `[K, L, 2]` drags on the grid (`grid_trajectories`: truncated, then PCHIP to L
    points, point t belongs to frame t). For frame t the flow holds, at each start pixel
    `(int(y0), int(x0))`, the sum of `int64(point_t - start)` of the drags starting there, and the mask
    their count (both channels); equal to `trajectory_sparse_flow`'s rows, one chunk at a time.
    """

    def __init__(self, paths: np.ndarray, size: int = CMP_SIZE) -> None:
        paths = np.asarray(paths, dtype=np.float64)
        if paths.ndim != 3 or paths.shape[0] < 1 or paths.shape[2] != 2:
            raise ValueError(f"paths must be [K>=1, L, 2], got {paths.shape}")
        self.size, self.length = size, paths.shape[1]
        cols, rows = paths[:, 0, 0].astype(np.int64), paths[:, 0, 1].astype(np.int64)
        self._pixel = torch.from_numpy(rows * size + cols)  # [K] flat start pixels
        disp = (paths[:, 1:] - paths[:, :1]).astype(np.int64).astype(np.float32)  # [K,L-1,2], truncated
        self._disp = torch.from_numpy(disp)
        self._mask = torch.zeros(2, size * size).index_add_(1, self._pixel, torch.ones(2, len(paths)))

    def flow(self, frames: torch.Tensor) -> torch.Tensor:
        """float32 `[n, 2, S, S]` hints for clip frames `frames` (LongTensor, 1..L-1)."""
        rows = self._disp[:, frames.cpu() - 1].permute(1, 2, 0)  # [K,n,2] -> [n,2,K]
        out = torch.zeros(len(frames), 2, self.size * self.size).index_add_(2, self._pixel, rows)
        return out.view(len(frames), 2, self.size, self.size)  # [n,2,S*S] -> [n,2,S,S]

    def mask(self, frames: torch.Tensor) -> torch.Tensor:
        """float32 `[n, 2, S, S]`: the number of drags starting at each pixel (the same for every frame)."""
        return self._mask.view(1, 2, self.size, self.size).expand(len(frames), -1, -1, -1)


def drag_groups(controls: MotionControls, height: int, width: int, num_frames: int,
                size: int = CMP_SIZE) -> "DragGroups":
    """(in-brush hints, out-of-brush hints, brush on the grid 0..255) of the user's drags (spec §2.3).

    Drags are sampled to `max(25, num_frames)` points (the reference's 25; more for longer clips, see
    the module docstring). A drag is in the brush iff the grid brush is exactly 255 at its start.
    """
    length = max(MODEL_LENGTH, num_frames)
    paths = grid_trajectories(controls.trajectories or [], height, width, length, size)
    brush = brush_to_grid(controls.brush, height, width, size) if controls.brush is not None else None
    inside = [brush is not None and brush[int(p[0, 1]), int(p[0, 0])] == 255 for p in paths]
    groups = [[p for p, flag in zip(paths, inside, strict=True) if flag == want] for want in (True, False)]
    hints = [DragHints(np.stack(g), size) if g else None for g in groups]
    return hints[0], hints[1], brush


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


DragGroups = tuple[DragHints | None, DragHints | None, np.ndarray | None]  # what `drag_groups` returns


@torch.no_grad()
def trajectory_flow(pipe: MofaPipeline, image: torch.Tensor, groups: DragGroups, num_frames: int,
                    features: CMPImageFeatures, report: _FlowProgress | None = None) -> torch.Tensor | None:
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


def motion_flows(pipe: MofaPipeline, image: torch.Tensor, track: LandmarkTrack, controls: MotionControls,
                 progress: ProgressFn = no_progress) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(landmark flow, drag flow or None), float `[1, T-1, 2, H/8, W/8]` on the CPU, from `pipe.cmp`.

    CMP's image encoder runs once for the clip; its decoder a chunk of frames at a time. The clip-long
    flows wait on the CPU (T * 2 * H/8 * W/8 floats each); the sampler moves a window at a time.
    image: float `[1, 3, H, W]` in [0, 1] on the CMP's device.
    """
    height, width = image.shape[-2:]
    num_frames = track.num_frames
    features = pipe.cmp.image_features(image, (CMP_SIZE, CMP_SIZE))
    groups = drag_groups(controls, height, width, num_frames) if controls.trajectories else (None, None, None)
    report = _FlowProgress(progress, 1 + sum(g is not None for g in groups[:2]), num_frames - 1)
    landmark_flow = pipe.prepare_landmark_flow(image, np.asarray(track.points, np.float32), CMP_CHUNK,
                                               grid_size=CMP_SIZE, features=features, progress=report.part())
    drag_flow = trajectory_flow(pipe, image, groups, num_frames, features, report)
    return landmark_flow.cpu(), (drag_flow.cpu() if drag_flow is not None else None)


# ---------------------------------------------------------------------------------------------- frames
def load_mofa(options: RenderOptions, progress: ProgressFn = no_progress) -> MofaPipeline:
    """Load the MOFA pipeline from the checkpoint directory (on the CPU, in the dtype it will run in).

    Raises MissingCheckpointsError / InputError (one line, naming the file) for unusable checkpoints.
    """
    _, dtype = resolve_device(options.mofa)
    root = Path(options.ckpt_dir) if options.ckpt_dir is not None else default_ckpt_dir()
    return load_pipeline(root, dtype, progress)


def mofa_frames(options: RenderOptions, portrait: Portrait, track: LandmarkTrack, controls: MotionControls,
                progress: ProgressFn = no_progress, pipe: MofaPipeline | None = None,
                cancel: threading.Event | None = None) -> Iterator[np.ndarray]:
    """uint8 `[H, W, 3]` RGB frames of the MOFA engine, one per landmark frame.

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
    """
    height, width = portrait.image.shape[:2]
    if height % 64 or width % 64:
        raise ValueError(f"the mofa engine needs sides that are multiples of 64, got {width}x{height}")
    num_frames = track.num_frames
    if num_frames < 2:  # a single frame is the portrait itself
        return iter([np.ascontiguousarray(portrait.image)])
    mofa = options.mofa
    device, dtype = resolve_device(mofa)
    mask = landmark_mask(options, portrait, track.reference)
    pipe = pipe if pipe is not None else load_mofa(options, progress)
    offload = mofa.cpu_offload and device.type == "cuda"
    if mofa.cpu_offload and not offload:
        logger.info("mofa: --cpu-offload applies to CUDA devices only; ignored on %s", device)
    if offload:
        pipe.cmp.to(device)  # the rest moves under diffusers' model offload, after the flows
    else:
        pipe.to(device)

    image = torch.tensor(portrait.image).permute(2, 0, 1)[None].float().div(255).to(device)  # [H,W,3] -> [1,3,H,W]
    landmark_flow, drag_flow = motion_flows(pipe, image, track, controls, progress)
    if offload:  # CMP is done: hand every network to diffusers' model offload
        pipe.cmp.to("cpu")
        pipe.enable_model_cpu_offload(device=device)
    points = np.asarray(track.points, np.float32)

    def pose_images(frames: torch.Tensor) -> torch.Tensor:  # clip frames -> [n,3,H,W] in [0,1]
        return draw_pose_images(points[frames.cpu().numpy()], height, width)

    def on_step_end(_pipe, step, _t, tensors):
        progress("denoise", step + 1, mofa.steps)
        check_cancel(cancel)
        return {}

    windows = plan_windows(num_frames, mofa.window)
    logger.info("mofa: %d frames at %dx%d on %s (%s), %d window(s) of %d, %d steps%s", num_frames, width, height,
                device, str(dtype).removeprefix("torch."), len(windows), windows[0].num_frames, mofa.steps,
                ", drags" if drag_flow is not None else "")
    call = dict(
        image=image, landmark_flow=landmark_flow, pose_images=pose_images, landmark_mask=mask,
        trajectory_flow=drag_flow, landmark_scale=mofa.landmark_scale, trajectory_scale=mofa.trajectory_scale,
        height=height, width=width, num_frames=num_frames, window_size=mofa.window,
        num_inference_steps=mofa.steps, min_guidance_scale=mofa.guidance_min, max_guidance_scale=mofa.guidance_max,
        decode_chunk_size=mofa.decode_chunk, generator=torch.Generator("cpu").manual_seed(options.seed),
        output_type="latent", callback_on_step_end=on_step_end,
    )
    return _stream(pipe, call, mofa.decode_chunk, cancel)


def _stream(pipe: MofaPipeline, call: dict, decode_chunk: int,
            cancel: threading.Event | None = None) -> Iterator[np.ndarray]:
    """Denoise (on the first `next`), then decode and yield frames one chunk at a time."""
    check_cancel(cancel)
    latents = pipe(**call).frames  # [1,T,4,h,w]
    for chunk in pipe.decode_latents_iter(latents, decode_chunk):  # uint8 [n,H,W,3]
        check_cancel(cancel)
        yield from chunk


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
               cancel: threading.Event | None = None) -> Iterator[np.ndarray]:
        if self.pipe is None:
            self.load(progress)
        return mofa_frames(self.options, portrait, track, controls, progress, pipe=self.pipe, cancel=cancel)
