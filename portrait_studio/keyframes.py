"""The studio's keyframe table: rows of (time, preset, amount, channels) <-> the CLI's keyframe JSON.

The JSON is `landmark_drivers.expressions`' format (what `--expression` reads); a table row is one
keyframe with its cells flattened: `t`, `preset` (one pose or gesture preset, or empty), `amount`,
`interpolation` (or empty) and one column per channel (blendshape, yaw/pitch/roll, x/y/z; empty =
not keyed). Every document the table writes is checked by the same parser the CLI uses.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from landmark_drivers.expressions import CHANNELS, ExpressionError, ExpressionTrack, parse_expression
from landmark_drivers.presets import GESTURE_PRESETS, POSE_PRESETS, PRESETS

from .errors import InputError

FIXED_COLUMNS = ("t", "preset", "amount", "interpolation")
DEFAULT_CHANNELS = ("jawOpen", "mouthSmileLeft", "mouthSmileRight", "browInnerUp", "yaw", "pitch", "roll")
PRESET_NAMES: tuple[str, ...] = tuple(POSE_PRESETS) + tuple(GESTURE_PRESETS)
MAX_KEYFRAMES = 500  # rows a table may hold
_BLENDSHAPE_SET = frozenset(CHANNELS[:-6])


def _empty(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or (isinstance(value, str) and not value.strip())


def document_to_rows(document: Mapping[str, Any]) -> tuple[list[dict[str, Any]], list[str]]:
    """(rows, channel columns) of a keyframe document; raises InputError when it does not parse.

    A keyframe listing several presets, or presets as keys (`"smile": 0.6`), keeps its first preset in
    the `preset` column and the others as columns of their own.
    """
    _parse(document)
    channels = list(DEFAULT_CHANNELS)
    rows = []
    for kf in document["keyframes"]:
        row: dict[str, Any] = {"t": float(kf["t"]), "preset": None, "amount": None, "interpolation": None}
        preset = kf.get("preset")
        presets = [preset] if isinstance(preset, str) else list(preset or [])
        if presets:
            row["preset"] = presets[0]
            row["amount"] = float(kf.get("amount", kf.get("weight", 1.0)))
            for extra in presets[1:]:
                row[extra] = row["amount"]
        row["interpolation"] = kf.get("interpolation")
        for key, value in kf.items():
            if key in ("t", "preset", "amount", "weight", "interpolation"):
                continue
            row[key] = value
        for key in row:
            if key not in FIXED_COLUMNS and key not in channels:
                channels.append(key)
        rows.append(row)
    return rows, channels


def rows_to_document(rows: Sequence[Mapping[str, Any]], interpolation: str = "smooth",
                     mode: str = "add") -> dict[str, Any]:
    """The keyframe document of table rows (empty cells dropped); raises InputError (one line) when the
    parser rejects it, naming the row and the field."""
    if len(rows) > MAX_KEYFRAMES:
        raise InputError(f"the keyframe table holds {len(rows)} rows; at most {MAX_KEYFRAMES} are allowed")
    keyframes = []
    for row in rows:
        if all(_empty(v) for v in row.values()):
            continue  # a blank row the editor added
        kf: dict[str, Any] = {}
        for key, value in row.items():
            if _empty(value) or key == "amount":
                continue
            if key in ("preset", "interpolation"):
                kf[key] = str(value).strip()
            else:
                kf[key] = float(value) if isinstance(value, (int, float, np.number)) else value
        if "preset" in kf and not _empty(row.get("amount")):
            kf["amount"] = float(row["amount"])
        keyframes.append(kf)
    document = {"interpolation": interpolation, "mode": mode, "keyframes": keyframes}
    _parse(document)
    return document


def _parse(document: Mapping[str, Any]) -> ExpressionTrack:
    try:
        return parse_expression(document, source="keyframes")
    except ExpressionError as exc:
        raise InputError(" ".join(str(exc).split())[:300]) from None


def document_json(document: Mapping[str, Any]) -> str:
    """The document as the JSON text `--expression` reads."""
    return json.dumps(document, indent=2)


def load_document(data: bytes | str) -> dict[str, Any]:
    """A keyframe JSON file's text -> its (validated) document; InputError when it is not one."""
    try:
        document = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"the keyframe file is not valid JSON ({exc})"[:300]) from None
    if not isinstance(document, dict):
        raise InputError("the keyframe file must hold a JSON object with a 'keyframes' list")
    _parse(document)
    return document


def curves(document: Mapping[str, Any], duration: float, fps: float = 25.0) -> dict[str, np.ndarray]:
    """{"time": [T] seconds, channel: [T] values} of the keyframes alone over `duration` seconds, for
    every channel the document moves (blendshape weights, degrees, interocular units)."""
    track = _parse(document)
    num_frames = max(2, int(round(max(duration, track.duration, 0.1) * fps)) + 1)
    motion = track.to_motion(num_frames, fps)
    from landmark_drivers import blendshape_index

    out: dict[str, np.ndarray] = {"time": np.arange(num_frames) / fps}
    moved = set(track.channels)
    moved.update(c for kf in track.keyframes for name, _ in kf.gestures for c in PRESETS[name].channels)
    for channel in (c for c in CHANNELS if c in moved):
        if channel in _BLENDSHAPE_SET:
            out[channel] = motion.blendshapes[:, blendshape_index(channel)]
        elif channel in ("yaw", "pitch", "roll"):
            out[channel] = motion.rotation[:, ("yaw", "pitch", "roll").index(channel)]
        else:
            out[channel] = motion.translation[:, ("x", "y", "z").index(channel)]
    return out


def insert_preset(rows: Sequence[Mapping[str, Any]], t: float, preset: str, amount: float = 1.0) -> list[dict[str, Any]]:
    """The rows with `preset` keyed at `t` seconds (into the row at that time, or a new row), sorted by time."""
    if preset not in PRESET_NAMES:
        raise InputError(f"unknown preset {preset[:40]!r}; choose one of {', '.join(PRESET_NAMES)}")
    if not (math.isfinite(t) and t >= 0):
        raise InputError(f"a keyframe time must be >= 0 seconds, got {t}")
    out = [dict(r) for r in rows if not all(_empty(v) for v in r.values())]
    for row in out:
        if not _empty(row.get("t")) and abs(float(row["t"]) - t) < 1e-6:
            if _empty(row.get("preset")) or row["preset"] == preset:
                row["preset"], row["amount"] = preset, amount
            else:  # the row already switches to another preset: key this one's amount beside it
                row[preset] = amount
            break
    else:
        out.append({"t": float(t), "preset": preset, "amount": amount})
    return sorted(out, key=lambda r: float(r["t"]) if not _empty(r.get("t")) else 0.0)
