"""Evaluation results as JSON (one object per video) and as a side-by-side text table."""

from __future__ import annotations

import json
import math
from pathlib import Path

from ..media import atomic_output

# (row label, path into the result dict, format); lists are summarised as "first -> last (max)".
ROWS = [
    ("lip sync ncc", ("lipsync", "ncc"), "{:.3f}"),
    ("lip sync lag (frames)", ("lipsync", "lag_frames"), "{:+d}"),
    ("lip sync lag (ms)", ("lipsync", "lag_ms"), "{:+.0f}"),
    ("silence: mouth open", ("silence", "open_fraction"), "{:.1%}"),
    ("silence: seconds", ("silence", "silent_seconds"), "{:.1f}"),
    ("control nme (face)", ("control", "nme"), "{:.4f}"),
    ("control nme (mouth)", ("control", "nme_mouth"), "{:.4f}"),
    ("control nme (eyes)", ("control", "nme_eyes"), "{:.4f}"),
    ("drift ΔE2000 face (max)", ("drift", "color_de2000"), "max"),
    ("drift ΔE2000 background (max)", ("drift", "color_de2000_background"), "max"),
    ("drift CPBD (first -> min)", ("drift", "cpbd"), "first-min"),
    ("drift CPBD relative (min)", ("drift", "cpbd_relative"), "min"),
    ("drift geometry (max)", ("drift", "geometry"), "max"),
    ("background change / frame", ("background", "mad_mean"), "{:.3f}"),
    ("background change vs frame 0", ("background", "mad_vs_first_mean"), "{:.3f}"),
    ("jitter accel energy", ("jitter", "accel_energy"), "{:.2e}"),
    ("jitter max jump (IOD)", ("jitter", "max_jump"), "{:.4f}"),
    ("face found", ("face_found_fraction",), "{:.1%}"),
    ("codecs", ("file",), "codecs"),
    ("size", ("file",), "size"),
    ("fps", ("file", "fps"), "{:g}"),
    ("duration (s)", ("file", "duration"), "{:.2f}"),
    ("A/V difference (s)", ("file", "av_difference"), "{:+.3f}"),
]


def _get(result: dict, path: tuple[str, ...]):
    value = result
    for key in path:
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return value


def _cell(value, fmt: str) -> str:
    if value is None:
        return "-"
    if fmt == "codecs":
        return f"{value['video_codec']}/{value['audio_codec'] or 'no audio'}"
    if fmt == "size":
        return f"{value['width']}x{value['height']}"
    if isinstance(value, list):
        finite = [v for v in value if v is not None and math.isfinite(v)]
        if not finite:
            return "-"
        if fmt == "max":
            return f"{max(finite):.3f}"
        if fmt == "min":
            return f"{min(finite):.3f}"
        return f"{finite[0]:.3f} -> {min(finite):.3f}"
    return fmt.format(value)


def format_table(results: list[dict]) -> str:
    """A text table: one row per measure, one column per video."""
    names = [Path(r["video"]).name for r in results]
    rows = [("", names)] + [(label, [_cell(_get(r, path), fmt) for r in results]) for label, path, fmt in ROWS]
    label_w = max(len(label) for label, _ in rows)
    col_w = [max(len(cells[i]) for _, cells in rows) for i in range(len(results))]
    lines = [label.ljust(label_w) + "  " + "  ".join(c.rjust(w) for c, w in zip(cells, col_w, strict=True)) for label, cells in rows]
    return "\n".join(lines)


def _finite(value):
    """`value` with every NaN or infinity (a measure that could not be taken) replaced by None."""
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def to_json(results: list[dict]) -> list[dict]:
    """The results without their plotting series (the JSON holds numbers, not per-frame arrays); NaN -> null."""
    return [_finite({k: v for k, v in r.items() if not k.startswith("_")}) for r in results]


def write_json(results: list[dict], path: str | Path) -> None:
    """Write the results as a JSON list, one object per video (atomically)."""
    with atomic_output(path) as tmp:
        tmp.write_text(json.dumps(to_json(results), indent=2, allow_nan=False) + "\n", encoding="utf-8")
