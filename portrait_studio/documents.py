"""User documents read with bounded resources: keyframes, trajectories, saved landmark tracks.

Keyframe (`--expression`) and trajectory (`--trajectory`) files are checked for their size before
they are read, their nesting depth and YAML aliases while they are parsed (a custom `SafeLoader`
that counts aliases: a 400-byte alias bomb expands to billions of values), and their number of
values with aliases expanded after. Then their content: number of keyframes and the last keyframe's
time (against `--max-duration`), number of trajectories and points. A `--landmarks` track is checked
from its .npy headers (shapes, dtypes, stored fps) before its arrays are read.

Every refusal is an `InputError` that names the limit (see `limits.py`) and the value found.
"""

from __future__ import annotations

import json
import math
import tokenize
import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from landmark_drivers import LandmarkTrack
from landmark_drivers.expressions import (
    ExpressionError,
    ExpressionTrack,
    parse_expression,
    reject_duplicate_keys,
)
from mofa_engine.trajectories import Trajectory, parse_trajectories

from .errors import InputError
from .limits import LIMITS


class _DocumentLimit(Exception):
    """Raised inside the YAML loader when a limit is hit (turned into an InputError by the caller)."""


class BoundedSafeLoader(yaml.SafeLoader):
    """`yaml.SafeLoader` that refuses more than `LIMITS.yaml_aliases` aliases and nesting deeper than
    `LIMITS.document_depth` while composing (before anything is constructed or expanded)."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.aliases = 0
        self.depth = 0

    def compose_node(self, parent, index):  # type: ignore[override]
        if self.check_event(yaml.AliasEvent):
            self.aliases += 1
            if self.aliases > LIMITS.yaml_aliases.value:
                raise _DocumentLimit(f"more than {LIMITS.yaml_aliases} (yaml aliases)")
        self.depth += 1
        try:
            if self.depth > LIMITS.document_depth.value:
                raise _DocumentLimit(f"nested deeper than {LIMITS.document_depth} (document depth)")
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


def read_document(path: str | Path, what: str, yaml_allowed: bool = True) -> Any:
    """Decode a JSON (or YAML) document within the document limits; InputError otherwise.

    what: the option that names the file in messages ("--expression", "--trajectory").
    """
    path = Path(path)
    suffix = path.suffix.lower()
    kinds = (".json", ".yaml", ".yml") if yaml_allowed else (".json",)
    if suffix not in kinds:
        raise InputError(f"{what} {path}: unsupported file type; use {', '.join(kinds)}")
    try:
        size = path.stat().st_size
        if size > LIMITS.document_bytes.value:
            raise InputError(f"{what} {path} is {size:,} bytes, over the {LIMITS.document_bytes} limit (document bytes)")
        with path.open("rb") as f:
            raw = f.read(int(LIMITS.document_bytes.value) + 1)
    except OSError as exc:
        raise InputError(f"{what} {path} cannot be read ({exc.strerror or type(exc).__name__})") from None
    if len(raw) > LIMITS.document_bytes.value:  # grew while being read
        raise InputError(f"{what} {path} is over the {LIMITS.document_bytes} limit (document bytes)")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"{what} {path} is not UTF-8 text (byte {exc.start})") from None
    try:
        if suffix == ".json":
            data = json.loads(text, object_pairs_hook=reject_duplicate_keys)
        else:
            loader = BoundedSafeLoader(text)
            try:
                data = loader.get_single_data()
            finally:
                loader.dispose()
    except _DocumentLimit as exc:
        raise InputError(f"{what} {path}: {exc}") from None
    except RecursionError:
        raise InputError(f"{what} {path}: nested deeper than {LIMITS.document_depth} (document depth)") from None
    except json.JSONDecodeError as exc:
        raise InputError(f"{what} {path}: malformed JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        if isinstance(exc, yaml.reader.ReaderError):
            at, problem = f" at character {exc.position}", "a control character YAML does not allow"
        else:
            problem = getattr(exc, "problem", None) or type(exc).__name__
        raise InputError(f"{what} {path}: malformed YAML{at}: {problem}") from None
    except (ValueError, TypeError) as exc:  # duplicate keys, integers too long to convert, unhashable keys
        raise InputError(f"{what} {path}: malformed document ({str(exc)[:120]})") from None
    _check_shape(data, f"{what} {path}")
    return data


def _check_shape(data: Any, where: str) -> None:
    """Depth and value count with aliases expanded (shared objects counted each time they appear)."""
    budget, depth_limit = int(LIMITS.document_nodes.value), int(LIMITS.document_depth.value)
    count = 0
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        node, depth = stack.pop()
        count += 1
        if count > budget:
            raise InputError(f"{where}: more than {LIMITS.document_nodes} (document nodes)")
        if depth > depth_limit:
            raise InputError(f"{where}: nested deeper than {LIMITS.document_depth} (document depth)")
        if isinstance(node, dict):
            for key, value in node.items():
                stack.append((key, depth + 1))
                stack.append((value, depth + 1))
        elif isinstance(node, (list, tuple)):
            stack.extend((item, depth + 1) for item in node)


def load_expression_file(path: str | Path, max_duration: float) -> ExpressionTrack:
    """Read `--expression` keyframes within the limits; the last keyframe must lie within `max_duration`."""
    data = read_document(path, "--expression")
    keys = data.get("keyframes") if isinstance(data, dict) else None
    if isinstance(keys, list) and len(keys) > LIMITS.keyframes.value:
        raise InputError(f"--expression {path} has {len(keys):,} keyframes, over the {LIMITS.keyframes} limit")
    try:
        track = parse_expression(data, source=str(path))
    except ExpressionError as exc:
        raise InputError(str(exc)) from None
    if not track.duration <= max_duration:
        raise InputError(f"--expression {path} lasts {track.duration:.1f} s, over the --max-duration limit "
                         f"of {max_duration:g} s")
    return track


def load_trajectory_file(path: str | Path, height: int, width: int) -> list[Trajectory]:
    """Read `--trajectory` drags (photo pixels) within the limits."""
    data = read_document(path, "--trajectory", yaml_allowed=False)
    trajs = data.get("trajectories") if isinstance(data, dict) else data
    if isinstance(trajs, list):
        if len(trajs) > LIMITS.trajectories.value:
            raise InputError(f"--trajectory {path} has {len(trajs):,} trajectories, over the "
                             f"{LIMITS.trajectories} limit")
        for i, traj in enumerate(trajs):
            if isinstance(traj, list) and len(traj) > LIMITS.trajectory_points.value:
                raise InputError(f"--trajectory {path}: trajectory {i} has {len(traj):,} points, over the "
                                 f"{LIMITS.trajectory_points} limit (trajectory points)")
    try:
        return parse_trajectories(data, height, width)
    except ValueError as exc:
        raise InputError(f"bad --trajectory file {path}: {exc}") from None


_TRACK_ARRAYS = {"points": 3, "reference": 2, "fps": 0}
# what zipfile, zlib and numpy's header parser raise on a damaged .npz (RuntimeError: an encrypted member)
_TRACK_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, tokenize.TokenError, SyntaxError, KeyError,
                 ValueError, OSError, EOFError, TypeError, IndexError, NotImplementedError, RuntimeError)


def load_track_file(path: str | Path, max_duration: float) -> LandmarkTrack:
    """Read a `--landmarks` .npz track, checking sizes, shapes, dtypes and the stored fps before the arrays."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > LIMITS.track_bytes.value:
            raise InputError(f"--landmarks {path} is {size:,} bytes, over the {LIMITS.track_bytes} limit (track bytes)")
        with zipfile.ZipFile(path) as zf:
            headers = {name: _npy_header(zf, name) for name in _TRACK_ARRAYS}
            total = sum(zf.getinfo(f"{name}.npy").file_size for name in _TRACK_ARRAYS)
        if total > LIMITS.track_bytes.value:
            raise InputError(f"--landmarks {path} unpacks to {total:,} bytes, over the {LIMITS.track_bytes} limit "
                             "(track bytes)")
        (t_shape, _), (r_shape, _) = headers["points"], headers["reference"]
        if t_shape[1:] != (68, 2) or r_shape != (68, 2) or headers["fps"][0] != () or t_shape[0] < 1:
            raise InputError(f"--landmarks {path} is not a landmark track (points must be [T, 68, 2], "
                             "reference [68, 2], fps a number)")
        with np.load(path, allow_pickle=False) as data:
            fps = float(data["fps"])
            _check_fps(fps, path)
            if t_shape[0] / fps > max_duration:
                raise InputError(f"--landmarks {path} lasts {t_shape[0] / fps:.1f} s ({t_shape[0]:,} frames at "
                                 f"{fps:g} fps), over the --max-duration limit of {max_duration:g} s")
            points, reference = data["points"].astype(np.float32), data["reference"].astype(np.float32)
    except InputError:
        raise
    except _TRACK_ERRORS as exc:
        raise InputError(f"--landmarks {path} is not a readable landmark track ({type(exc).__name__})") from None
    for name, array in (("points", points), ("reference", reference)):
        if not np.isfinite(array).all() or np.abs(array).max() > 1e5:
            raise InputError(f"--landmarks {path}: its {name} hold non-finite or out-of-range coordinates")
    return LandmarkTrack(points=points, reference=reference, fps=fps)


def _check_fps(fps: float, path: Path) -> None:
    top = LIMITS.fps_range.value
    if not (math.isfinite(fps) and 1 <= fps <= top):
        shown = f"{fps:g}" if math.isfinite(fps) else "not a finite number"
        raise InputError(f"--landmarks {path} stores fps {shown}; it must lie in 1..{top:g} (fps range)")


def _npy_header(zf: zipfile.ZipFile, name: str) -> tuple[tuple[int, ...], np.dtype]:
    """(shape, dtype) of `name`.npy in an .npz, from its header only; numeric dtypes only."""
    with zf.open(f"{name}.npy") as f:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            shape, _, dtype = np.lib.format.read_array_header_1_0(f)
        elif version == (2, 0):
            shape, _, dtype = np.lib.format.read_array_header_2_0(f)
        else:
            raise ValueError("unsupported .npy version")
    if dtype.kind not in "fiu" or len(shape) != _TRACK_ARRAYS[name]:
        raise ValueError(f"{name} has dtype {dtype.kind} and {len(shape)} dimensions")
    return tuple(int(n) for n in shape), dtype
