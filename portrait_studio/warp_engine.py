"""The warp engine as the app runs it: analytic flow + warp renderer, one frame at a time."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Iterator

import numpy as np

from landmark_drivers import LandmarkTrack
from mofa_engine.analytic_flow import AnalyticFlow
from mofa_engine.trajectories import load_trajectories
from mofa_engine.visualize import flow_to_rgb
from mofa_engine.warp_renderer import WarpRenderer

from .engines import load_mask
from .errors import InputError
from .options import RenderOptions
from .portrait import Framing

if TYPE_CHECKING:
    from .studio import Portrait


@dataclass(frozen=True)
class MotionControls:
    """The user's background-motion controls, mapped into the output frame."""

    trajectories: list[np.ndarray] | None = None  # float64 [N_i, 2] (x, y) output pixels per trajectory
    brush: np.ndarray | None = None  # bool [H, W]: the region the trajectories move


def load_controls(options: RenderOptions, framing: Framing) -> MotionControls:
    """Read and validate --trajectory / --motion-brush (photo coordinates) into the output frame."""
    if options.trajectory is None:
        return MotionControls()
    src_h, src_w = framing.source_size
    try:
        trajs = load_trajectories(options.trajectory, src_h, src_w)
    except (ValueError, OSError) as exc:
        raise InputError(f"bad --trajectory file: {exc}") from None
    trajs = [framing.apply_points(t) for t in trajs]
    brush = None
    if options.motion_brush is not None:
        mask = load_mask(options.motion_brush, src_h, src_w)
        brush = framing.apply_image((mask * 255).astype(np.uint8)) >= 128
    return MotionControls(trajs, brush)


def build_flow(portrait: "Portrait", track: LandmarkTrack, controls: MotionControls) -> AnalyticFlow:
    height, width = portrait.image.shape[:2]
    return AnalyticFlow(track.reference, height, width, trajectories=controls.trajectories,
                        brush=controls.brush, num_frames=track.num_frames)


def warp_frames(portrait: "Portrait", track: LandmarkTrack, controls: MotionControls) -> Iterator[np.ndarray]:
    """uint8 [H, W, 3] RGB frames of the warp engine, made as they are consumed."""
    flow = build_flow(portrait, track, controls)
    renderer = WarpRenderer(portrait.image, track.reference, flow)
    indexed = controls.trajectories is not None
    for t, points in enumerate(track.points):
        map_x, map_y = flow.backward_map(points, t if indexed else None)
        yield renderer.finish(renderer.remap(map_x, map_y), points, map_x, map_y)


def flow_preview(portrait: "Portrait", track: LandmarkTrack, controls: MotionControls) -> Callable[[int], np.ndarray]:
    """t -> colour-wheel picture of the forward flow (frame 0 -> t), for --debug-dir."""
    flow = build_flow(portrait, track, controls)
    indexed = controls.trajectories is not None
    scale = 0.15 * float(np.linalg.norm(track.reference[45] - track.reference[36]))  # px of full saturation

    def picture(t: int) -> np.ndarray:
        field = flow.forward_flow(track.points[t][None], [t] if indexed else None)[0].numpy()
        return flow_to_rgb(field, max_magnitude=scale)

    return picture
