"""The warp engine's renderer: a dense backward warp of the portrait per frame, plus the parts a
warp cannot make (the inside of an opening mouth, lids closing over the eyes).

    flow = AnalyticFlow(reference, height, width)
    renderer = WarpRenderer(image, reference, flow)
    for frame in renderer.render_frames(track.points):   # streamed, one frame at a time
        encoder.write(frame)

The flow object only needs `backward_map(points [68, 2], frame_index=None) -> (map_x, map_y)`,
float32 [H, W] each: for every output pixel, where to sample the portrait (cv2.remap's convention).
`AnalyticFlow` is one; the frame index matters to flows with trajectories. A flow that also offers
`backward_map_box(points, frame_index) -> (map [y1 - y0, x1 - x0, 2], (x0, y0, x1, y1))` (AnalyticFlow
does: the map on the box outside which it is the identity) is rendered faster: only the box is
remapped; the rest of the frame is the portrait's own pixels, which is what an identity remap gives,
bit for bit.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Protocol

import cv2
import numpy as np

from .eyelids import Eyelids
from .mouth import MouthInterior
from .raster import MapWindow

logger = logging.getLogger(__name__)


class BackwardMapper(Protocol):
    """What the renderer needs from a flow: a cv2.remap map per target landmark set."""

    def backward_map(self, points: np.ndarray, frame_index: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """points: float32 [68, 2] target landmarks (px) -> (map_x, map_y), float32 [H, W] each.

        frame_index: the frame's index in the clip (flows with trajectories need it), or None.
        """
        ...


@dataclass(frozen=True)
class WarpRenderOptions:
    """How the warp renderer finishes each frame."""

    mouth_interior: bool = True  # synthesise the cavity and teeth when the lips part wider than in the photo
    eyelids: bool = True         # cover closing eyes with lid skin instead of squashing them
    closed_mouth_px: float = 1.5  # inner-lip aperture (px) at or below which the mouth counts as closed
    min_eye_closure: float = 0.08  # eye closure (0 = as photographed, 1 = shut) below which eyes stay as warped

    def __post_init__(self) -> None:
        if not self.closed_mouth_px >= 0.0:
            raise ValueError(f"closed_mouth_px must be >= 0, got {self.closed_mouth_px}")
        if not 0.0 <= self.min_eye_closure < 1.0:
            raise ValueError(f"min_eye_closure must be in [0, 1), got {self.min_eye_closure}")


class WarpRenderer:
    """Renders frames of one portrait from target landmarks.

    image: uint8 [H, W, 3] RGB, the portrait.
    reference: float32 [68, 2], the portrait's own iBUG-68 landmarks in pixels (x = column, y = row).
    flow: the dense flow of this portrait (see `BackwardMapper`), built for the same H, W.
    options: `WarpRenderOptions`.
    """

    def __init__(
        self,
        image: np.ndarray,
        reference: np.ndarray,
        flow: BackwardMapper,
        options: WarpRenderOptions | None = None,
    ) -> None:
        self.check_inputs(image, reference, flow)
        self.options = options or WarpRenderOptions()
        self.image = np.ascontiguousarray(image)
        self.reference = np.asarray(reference, np.float32)
        self.flow = flow
        self.height, self.width = image.shape[:2]
        # Everything that depends on the portrait alone is measured once, here.
        self._mouth = (
            MouthInterior(self.image, self.reference, self.options.closed_mouth_px)
            if self.options.mouth_interior
            else None
        )
        self._eyelids = (
            Eyelids(self.image, self.reference, self.options.min_eye_closure) if self.options.eyelids else None
        )
        if self._mouth is not None:
            logger.debug(
                "portrait mouth aperture %.1f px (%s), lip RGB %s, interior split %.2f",
                self._mouth.source_aperture,
                "open" if self._mouth.source_open else "closed",
                np.round(self._mouth.lip_rgb).astype(int).tolist(),
                self._mouth.split,
            )

    @staticmethod
    def check_inputs(image: np.ndarray, reference: np.ndarray, flow: object) -> None:
        if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(
                f"image must be uint8 [H, W, 3] RGB, got {getattr(image, 'dtype', type(image))} "
                f"{getattr(image, 'shape', '')}"
            )
        if np.shape(reference) != (68, 2):
            raise ValueError(f"reference must be [68, 2] landmarks, got shape {np.shape(reference)}")
        if not np.all(np.isfinite(reference)):
            raise ValueError("reference landmarks contain NaN or inf")
        if not callable(getattr(flow, "backward_map", None)):
            raise TypeError(f"flow must have a backward_map(points) method, got {type(flow).__name__}")

    def warp(self, points: np.ndarray, frame_index: int | None = None) -> np.ndarray:
        """The plain warp of the portrait to `points` (no mouth interior, no eyelids).

        points: float32 [68, 2] target landmarks in pixels. Returns uint8 [H, W, 3] RGB.
        frame_index: passed on to the flow (needed by flows with trajectories).
        """
        map_x, map_y = self._maps(self._check_points(points), frame_index)
        return self.remap(map_x, map_y)

    def remap(self, map_x: np.ndarray, map_y: np.ndarray) -> np.ndarray:
        """Backward-warp the portrait with a precomputed map: bilinear, borders replicated."""
        return cv2.remap(self.image, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)

    def remap_box(self, local: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
        """The portrait warped by a map known on `box` (x0, y0, x1, y1) alone, float32 `[y1 - y0, x1 - x0, 2]`,
        and the identity elsewhere: equal to `remap` on the whole map, computed on the box alone."""
        x0, y0, x1, y1 = box
        frame = self.image.copy()
        if x1 > x0 and y1 > y0:
            cv2.remap(self.image, local, None, cv2.INTER_LINEAR, dst=frame[y0:y1, x0:x1],  # in place
                      borderMode=cv2.BORDER_REPLICATE)
        return frame

    def finish(self, frame: np.ndarray, points: np.ndarray, mapping: MapWindow) -> np.ndarray:
        """Paint the mouth interior and eyelids of `points` into `frame` (in place), which the backward map
        `mapping` (`MapWindow(map_x, map_y)` for whole-image maps) warped from the portrait."""
        if self._mouth is not None:
            self._mouth.apply(frame, points)
        if self._eyelids is not None:
            self._eyelids.apply(frame, points, mapping)
        return frame

    def render(self, points: np.ndarray, frame_index: int | None = None) -> np.ndarray:
        """One frame: the portrait moved to `points`.

        points: float32 [68, 2] target iBUG landmarks in pixels (x, y).
        frame_index: the frame's index in the clip, passed on to the flow (trajectories need it).
        Returns uint8 [H, W, 3] RGB.
        """
        points = self._check_points(points)
        if callable(getattr(self.flow, "backward_map_box", None)):
            local, box = self.flow.backward_map_box(points, frame_index)
            x0, y0, x1, y1 = box
            if not (0 <= x0 <= x1 <= self.width and 0 <= y0 <= y1 <= self.height) or local.shape != (
                    y1 - y0, x1 - x0, 2):
                raise ValueError(f"flow.backward_map_box gave a map of shape {local.shape} on box {box}, "
                                 f"not inside {self.width}x{self.height}")
            return self.finish(self.remap_box(local, box), points, MapWindow.fused(local, box))
        map_x, map_y = self._maps(points, frame_index)
        return self.finish(self.remap(map_x, map_y), points, MapWindow(map_x, map_y))

    def render_frames(self, points_iter: Iterable[np.ndarray], with_index: bool = False) -> Iterator[np.ndarray]:
        """Frames for a stream of landmark sets, made one at a time as they are consumed.

        points_iter: any iterable of float32 [68, 2] (a generator, or a [T, 68, 2] array).
        with_index: pass each frame's position in the stream to the flow as `frame_index`
            (for flows built with trajectories).
        Yields uint8 [H, W, 3] RGB; nothing is kept between frames.
        """
        for index, points in enumerate(points_iter):
            yield self.render(points, index if with_index else None)

    def _maps(self, points: np.ndarray, frame_index: int | None) -> tuple[np.ndarray, np.ndarray]:
        if frame_index is None:
            map_x, map_y = self.flow.backward_map(points)
        else:
            map_x, map_y = self.flow.backward_map(points, frame_index=frame_index)
        if map_x.shape != (self.height, self.width) or map_y.shape != (self.height, self.width):
            raise ValueError(
                f"flow.backward_map gave maps of shape {map_x.shape} / {map_y.shape}, "
                f"expected {(self.height, self.width)}"
            )
        return map_x, map_y

    @staticmethod
    def _check_points(points: np.ndarray) -> np.ndarray:
        points = np.asarray(points, np.float32)
        if points.shape != (68, 2):
            raise ValueError(f"points must be [68, 2] landmarks, got shape {points.shape}")
        if not np.all(np.isfinite(points)):
            raise ValueError("target landmarks contain NaN or inf")
        return points
