"""Resource limits: every bound the app enforces on untrusted input, in one place.

Each limit is checked before the expensive step it protects (image pixels from the file header
before decoding; document size, nesting, aliases and node count while parsing; trajectories,
keyframes and durations before any frame is made). A refusal is an `InputError` naming the limit
and the value found (never the unbounded value itself), exit status 2 in the CLI.

`LIMITS` is the one instance the code, the CLI's `--help` and the README's "Limits" table use.
"""

from __future__ import annotations

from dataclasses import dataclass, fields


@dataclass(frozen=True)
class Limit:
    """One named bound: `value` in `unit`, and what it covers (one line, for --help and the README)."""

    value: float
    unit: str
    covers: str

    def __str__(self) -> str:
        value = f"{self.value:,.0f}" if float(self.value).is_integer() else f"{self.value:g}"
        return f"{value} {self.unit}".strip()


@dataclass(frozen=True)
class Limits:
    """The limits, one field each; the field's `covers` line says what it protects."""

    image_pixels: Limit = Limit(
        64_000_000, "pixels",
        "portrait and mask images (width x height, read from the file header before decoding)")
    image_min_side: Limit = Limit(16, "pixels", "shortest side of the portrait photo")
    frame_long_side: Limit = Limit(
        4096, "pixels", "longest side of the output frame (after --size); the H.264 encoder's working range")
    max_duration: Limit = Limit(
        3600, "seconds",
        "largest --max-duration; --max-duration (default 600 s) bounds every driver: audio, driving "
        "video, keyframes (last t) and --landmarks tracks")
    fps_range: Limit = Limit(120, "fps", "--fps and a saved track's stored fps lie in 1..120")
    driving_video_fps: Limit = Limit(
        240, "fps", "frame rate of a --driving-video (every frame is analysed; 240 covers phone slow motion)")
    document_bytes: Limit = Limit(1_000_000, "bytes", "size of a keyframe (--expression) or --trajectory file")
    document_depth: Limit = Limit(32, "levels", "nesting depth of a keyframe or trajectory document")
    document_nodes: Limit = Limit(
        200_000, "values", "values in a keyframe or trajectory document, counted with YAML aliases expanded")
    yaml_aliases: Limit = Limit(100, "aliases", "YAML aliases (*name) in a keyframe document")
    keyframes: Limit = Limit(10_000, "keyframes", "keyframes in an --expression file")
    trajectories: Limit = Limit(32, "trajectories", "trajectories in a --trajectory file")
    trajectory_points: Limit = Limit(1000, "points", "points in one trajectory")
    track_bytes: Limit = Limit(200_000_000, "bytes", "size of a --landmarks track file (.npz), also unpacked")
    transcript_chars: Limit = Limit(100_000, "characters", "length of a --transcript (file or text)")
    evaluate_frames: Limit = Limit(
        40_000, "frames", "frames `evaluate` decodes from one video (read from its header, counted again while decoding)")
    evaluate_long_side: Limit = Limit(4096, "pixels", "longest frame side of a video `evaluate` measures (from its header)")
    stale_temp_age: Limit = Limit(
        3600, "seconds",
        "a render's temporary file left by a killed process is removed by the next render to the same "
        "output once it is this old and its process is gone")

    def rows(self) -> list[tuple[str, Limit]]:
        """(name, limit) for every limit, in declaration order (for --help and the README table)."""
        return [(f.name, getattr(self, f.name)) for f in fields(self)]


LIMITS = Limits()


def limits_help() -> str:
    """The limits as an indented text block for the CLI's epilog."""
    width = max(len(name) for name, _ in LIMITS.rows())
    return "\n".join(f"  {name.replace('_', ' '):<{width}}  {limit!s:>18}  {limit.covers}"
                     for name, limit in LIMITS.rows())


def limits_markdown() -> str:
    """The limits as the README's Markdown table."""
    lines = ["| limit | value | covers |", "|---|---|---|"]
    lines += [f"| {name.replace('_', ' ')} | {limit} | {limit.covers} |" for name, limit in LIMITS.rows()]
    return "\n".join(lines)
