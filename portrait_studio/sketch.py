"""What a person draws on the photo (the studio's canvas, Fabric.js JSON) -> the CLI's files, in photo pixels.

* Drags: every free-hand stroke (`path`) is a polyline from its first to its last point, thinned to at
  most `MAX_POINTS` points; a straight `line` is a two-point drag. -> the `--trajectory` JSON.
* Masks (motion brush, landmark mask): strokes painted with their width, rectangles and circles
  filled -> a white-on-black PNG (`--motion-brush`, `--landmark-mask`).

The canvas shows the photo scaled by `scale` (canvas pixels per photo pixel); objects are read as
drawn (moving or resizing an object in the canvas's edit mode is not followed).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from .errors import InputError

MAX_POINTS = 12  # points kept per drawn drag (PCHIP runs through them)
MAX_OBJECTS = 200  # objects read from one canvas


def _objects(drawing: Mapping[str, Any] | None) -> list[Mapping[str, Any]]:
    if not drawing:
        return []
    objects = drawing.get("objects") or []
    if not isinstance(objects, list):
        raise InputError("the drawing is not a Fabric.js canvas (no object list)")
    return [o for o in objects[:MAX_OBJECTS] if isinstance(o, Mapping)]


def _path_points(obj: Mapping[str, Any]) -> np.ndarray:
    """Canvas points of a free-hand path: each command's end point. float64 [N, 2]."""
    points = []
    for cmd in obj.get("path") or []:
        if isinstance(cmd, (list, tuple)) and len(cmd) >= 3:
            try:
                points.append((float(cmd[-2]), float(cmd[-1])))
            except (TypeError, ValueError):
                continue
    return np.asarray(points, dtype=np.float64).reshape(-1, 2)


def _line_points(obj: Mapping[str, Any]) -> np.ndarray:
    """The two end points of a Fabric line in canvas pixels (x1..y2 are relative to its centre)."""
    cx = float(obj.get("left", 0)) + (float(obj.get("width", 0)) / 2 if obj.get("originX", "left") == "left" else 0)
    cy = float(obj.get("top", 0)) + (float(obj.get("height", 0)) / 2 if obj.get("originY", "top") == "top" else 0)
    return np.array([[cx + float(obj.get("x1", 0)), cy + float(obj.get("y1", 0))],
                     [cx + float(obj.get("x2", 0)), cy + float(obj.get("y2", 0))]])


def _top_left(obj: Mapping[str, Any], width: float, height: float, scale: float) -> tuple[float, float]:
    """Photo-pixel top-left corner of a box `width x height` (photo pixels) placed by its Fabric origin."""
    x, y = float(obj.get("left", 0)) / scale, float(obj.get("top", 0)) / scale
    shift = {"left": 0.0, "top": 0.0, "center": 0.5, "right": 1.0, "bottom": 1.0}
    return x - shift.get(obj.get("originX", "left"), 0.0) * width, y - shift.get(obj.get("originY", "top"), 0.0) * height


def _thin(points: np.ndarray, limit: int = MAX_POINTS) -> np.ndarray:
    keep = [0]
    for i in range(1, len(points)):  # drop repeated points
        if np.linalg.norm(points[i] - points[keep[-1]]) > 0.5:
            keep.append(i)
    points = points[keep]
    if len(points) > limit:
        points = points[np.round(np.linspace(0, len(points) - 1, limit)).astype(int)]
    return points


def drawing_trajectories(drawing: Mapping[str, Any] | None, scale: float, photo_size: tuple[int, int]
                         ) -> list[list[list[float]]]:
    """Drags in photo pixels `[[[x, y], ...], ...]` from a canvas drawing; photo_size = (height, width)."""
    height, width = photo_size
    drags = []
    for obj in _objects(drawing):
        kind = str(obj.get("type", "")).lower()
        if kind == "path":
            points = _thin(_path_points(obj))
        elif kind == "line":
            points = _line_points(obj)
        else:
            continue
        if len(points) < 2:
            continue
        photo = np.clip(np.round(points / scale, 2), 0, [width - 0.01, height - 0.01])
        drags.append([[float(x), float(y)] for x, y in photo])
    return drags


def drawing_mask(drawing: Mapping[str, Any] | None, scale: float, photo_size: tuple[int, int]) -> np.ndarray:
    """uint8 `[H, W]` (255 = painted) of a canvas drawing in photo pixels; photo_size = (height, width)."""
    height, width = photo_size
    mask = np.zeros((height, width), np.uint8)
    for obj in _objects(drawing):
        kind = str(obj.get("type", "")).lower()  # Fabric 7 writes "Path", older versions "path"
        stroke = max(1, int(round(float(obj.get("strokeWidth", 1) or 1) / scale)))
        if kind == "path":
            pts = np.round(_path_points(obj) / scale).astype(np.int32)
            if len(pts) == 1:
                cv2.circle(mask, tuple(int(v) for v in pts[0]), max(1, stroke // 2), 255, -1)
            elif len(pts) > 1:
                cv2.polylines(mask, [pts], False, 255, stroke, cv2.LINE_AA)
        elif kind == "line":
            a, b = np.round(_line_points(obj) / scale).astype(int)
            cv2.line(mask, tuple(int(v) for v in a), tuple(int(v) for v in b), 255, stroke, cv2.LINE_AA)
        elif kind == "rect":
            w = float(obj.get("width", 0)) * float(obj.get("scaleX", 1) or 1) / scale
            h = float(obj.get("height", 0)) * float(obj.get("scaleY", 1) or 1) / scale
            x0, y0 = _top_left(obj, w, h, scale)
            cv2.rectangle(mask, (int(x0), int(y0)), (int(x0 + w), int(y0 + h)), 255, -1)
        elif kind == "circle":
            r = float(obj.get("radius", 0)) * float(obj.get("scaleX", 1) or 1) / scale
            x0, y0 = _top_left(obj, 2 * r, 2 * r, scale)
            cv2.circle(mask, (int(x0 + r), int(y0 + r)), max(1, int(r)), 255, -1)
    return np.where(mask >= 128, 255, 0).astype(np.uint8)


def write_trajectories(drags: Sequence[Sequence[Sequence[float]]], path: Path) -> Path:
    """The drags as the `--trajectory` JSON file."""
    path = Path(path)
    path.write_text(json.dumps({"trajectories": [list(map(list, d)) for d in drags]}))
    return path


def write_mask(mask: np.ndarray, path: Path) -> Path:
    """A uint8 mask as the white-on-black PNG `--motion-brush` / `--landmark-mask` read."""
    path = Path(path)
    if not cv2.imwrite(str(path), mask):
        raise OSError(f"could not write {path}")
    return path
