"""The warp engine: analytic flow + warp renderer, one frame at a time, on the CPU, without weights."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
from landmark_drivers import LandmarkTrack
from mofa_engine import AnalyticFlow, MapWindow, WarpRenderer, flow_to_rgb

from ..controls import MotionControls
from ..portrait import Portrait
from ..progress import ProgressFn
from .base import check_cancel


class WarpEngine:
    """Dense analytic flow warps the photo directly (see `mofa_engine.warp`). Nothing to load."""

    name = "warp"
    multiple = 2  # H.264 needs even sides
    threads = 1  # its small per-frame ops only lose to thread start-up and contention (see benchmarks/README.md)

    def load(self, progress: ProgressFn) -> None:
        """Nothing to load: the warp engine needs no weights."""

    def frames(self, portrait: Portrait, track: LandmarkTrack, controls: MotionControls, progress: ProgressFn,
               cancel: threading.Event | None = None, state_path: Path | None = None) -> Iterator[np.ndarray]:
        """uint8 [H, W, 3] RGB frames, made as they are consumed; `cancel` is checked before each.
        Nothing to resume (`state_path` is unused): a warp render is cheap to redo."""
        return warp_frames(portrait, track, controls, cancel)


def build_flow(portrait: Portrait, track: LandmarkTrack, controls: MotionControls) -> AnalyticFlow:
    height, width = portrait.image.shape[:2]
    return AnalyticFlow(track.reference, height, width, trajectories=controls.trajectories,
                        brush=controls.brush, num_frames=track.num_frames)


def warp_frames(portrait: Portrait, track: LandmarkTrack, controls: MotionControls,
                cancel: threading.Event | None = None) -> Iterator[np.ndarray]:
    """uint8 [H, W, 3] RGB frames of the warp engine, made as they are consumed."""
    flow = build_flow(portrait, track, controls)
    renderer = WarpRenderer(portrait.image, track.reference, flow)
    indexed = controls.trajectories is not None
    camera, (height, width) = controls.camera, portrait.image.shape[:2]
    for t, points in enumerate(track.points):
        check_cancel(cancel)
        if camera is None:
            yield renderer.render(points, t if indexed else None)  # remaps only where the face moves
            continue
        map_x, map_y = flow.backward_map(points, t if indexed else None)
        # the whole frame moves after the face: sample B(C^-1(y)), paint at C(points)
        frac = camera.progress(t, track.num_frames)
        map_x, map_y = camera.compose_maps(map_x, map_y, frac)
        points = camera.apply(points, frac, height, width).astype(np.float32)
        yield renderer.finish(renderer.remap(map_x, map_y), points, MapWindow(map_x, map_y))


def flow_preview(portrait: Portrait, track: LandmarkTrack, controls: MotionControls) -> Callable[[int], np.ndarray]:
    """t -> colour-wheel picture of the forward flow (frame 0 -> t), for --debug-dir and the studio."""
    flow = build_flow(portrait, track, controls)
    indexed = controls.trajectories is not None
    scale = 0.15 * float(np.linalg.norm(track.reference[45] - track.reference[36]))  # px of full saturation

    def picture(t: int) -> np.ndarray:
        field = flow.forward_flow(track.points[t][None], [t] if indexed else None)[0].numpy()
        if controls.camera is not None:
            field = controls.camera.compose_flow(field, controls.camera.progress(t, track.num_frames))
        return flow_to_rgb(field, max_magnitude=scale)

    return picture
