"""Expression keyframes and sliders: time -> blendshape weights and head pose, layered over a driver.

File format (`.json`, `.yaml` or `.yml`; YAML is read with `yaml.safe_load`)::

    {"interpolation": "smooth",            # optional: "linear" (default) | "smooth"
     "mode": "add",                        # optional: "add" (default) | "override", for every channel
     "modes": {"yaw": "override"},         # optional: per-channel exceptions to "mode"
     "description": "free text",           # optional, ignored
     "keyframes": [
        {"t": 0.0, "jawOpen": 0.0},
        {"t": 2.0, "jawOpen": 1.0, "yaw": 15, "preset": "smile", "amount": 0.8},
        {"t": 3.0, "nod": 1.0, "interpolation": "linear"}]}

Keyframe fields:

- `t`: seconds from the start of the clip, >= 0 (required). Keyframes are sorted by `t` (so the file
  may list them in any order); two keyframes with the same `t` are an error.
- channels: any ARKit blendshape name (weight), `yaw`/`pitch`/`roll` (degrees, |angle| <= 60; yaw > 0
  turns the face toward image-left, pitch > 0 lifts the chin, roll > 0 is clockwise on screen), `x`/`y`
  (head shift in interocular distances, image axes, |shift| <= 2) and `z` (relative scale, [-0.5, 0.5]).
  Blendshape weights are in [0, 1] for "override" channels and [-1, 1] for "add" channels (a negative
  weight damps the driver's own weight; the sum is clamped to [0, 1]). `null` releases the channel to
  the driver (see "override"; for an "add" channel it is the same as 0).
- presets (`presets.py`), scaled by `"amount"` (alias `"weight"`, in [0, 1], default 1):
  `"preset": "smile"` or `"preset": ["smile", "nod"]` *switches* the face to these presets: the named pose
  presets are keyed to the amount and every other pose preset the file uses anywhere is keyed to 0 here
  (so look_left -> look_right turns from one to the other). A preset name as a key, `"smile": 0.6`, keys
  that preset's amount alone and leaves the others as they are (mixing).
  Pose presets (smile, surprise, look_left, ...) behave as channels of their own whose value is the
  amount; their channel values x amount are added to the written-out channels (a keyframe with
  `"preset": "smile", "mouthSmileLeft": 0.2` gives mouthSmileLeft 0.8 + 0.2). Gesture presets (nod,
  shake, blink, wink_left/right) are short motions that start at `t`, scaled by their amount.
- `interpolation`: the easing of the segments that *end* at this keyframe (default: the file's).

Semantics, per channel (a channel, or a pose preset's amount, is keyed by the keyframes that set it):

- Between two keys the value is eased: "linear", or "smooth" = smoothstep (cubic Hermite with zero
  slope at both keys: monotone between keys, never overshoots, the face settles at every key).
- Before a channel's first key and after its last key, the value holds.
- A channel or pose preset that the *first* keyframe does not set starts from the driver unchanged at the
  first keyframe's time, so `[{"t": 0}, {"t": 2, "yaw": 15, "preset": "smile"}]` turns the head and
  eases the smile in over 0-2 s, while `[{"t": 2, "yaw": 15}]` holds yaw 15 from the start.
- "add": the keyed value is added to the driver's (blendshapes then clamped to [0, 1]).
- "override": the result is (1 - a) * driver + a * keyed value, where the blend weight a is itself keyed
  and eased like a value: a = 1 at every keyframe that sets the channel (directly, or through a pose
  preset that moves it), a = 0 at a keyframe that sets it to `null` and at the first keyframe if that
  does not set it; a holds outside its keys. So one key overrides the whole clip, and
  `[{"t": 0}, {"t": 1, "yaw": 20}, {"t": 3, "yaw": 20}, {"t": 4, "yaw": null}]` eases from the
  driver's yaw to 20 over 0-1 s, holds it, and eases back to the driver's yaw over 3-4 s (no jumps).
  Across a release the keyed value holds its last set value.
- Gesture presets are added on top after layering, whatever the channel's mode (a nod nods the head
  wherever the driver or the keys put it). Finally blendshapes are clamped to [0, 1] and rotations
  clipped to +/-75 degrees.

`ExpressionTrack.to_motion` is the keyframes alone (layered over a still portrait, so every channel holds
after its last key); `apply_expression` layers a track over a driver's `FaceMotion`;
`motion_from_sliders` turns the studio's slider values into a constant motion.
"""

from __future__ import annotations

import difflib
import json
import logging
from dataclasses import dataclass, field
from numbers import Real
from pathlib import Path
from types import MappingProxyType
from typing import Any, Callable, Iterable, Literal, Mapping

import numpy as np
import yaml

from .blendshapes import BLENDSHAPE_INDEX, BLENDSHAPE_NAMES, NUM_BLENDSHAPES
from .motion import FaceMotion
from .presets import POSE_PRESETS, PRESETS

logger = logging.getLogger(__name__)

Interpolation = Literal["linear", "smooth"]
LayerMode = Literal["add", "override"]
INTERPOLATIONS: tuple[str, ...] = ("linear", "smooth")
LAYER_MODES: tuple[str, ...] = ("add", "override")
ROTATION_CHANNELS = ("yaw", "pitch", "roll")
TRANSLATION_CHANNELS = ("x", "y", "z")
CHANNELS: tuple[str, ...] = BLENDSHAPE_NAMES[1:] + ROTATION_CHANNELS + TRANSLATION_CHANNELS  # 57 animatable
MAX_ANGLE_DEG = 60.0  # keyed |yaw|, |pitch|, |roll|
RESULT_ANGLE_DEG = 75.0  # layered rotations are clipped to this (the rig accepts up to 90)
MAX_SHIFT = 2.0  # keyed |x|, |y| in interocular distances
Z_RANGE = (-0.5, 0.5)  # keyed relative scale change
AMOUNT_RANGE = (0.0, 1.0)  # preset amounts
KEYFRAME_FIELDS = ("t", "preset", "amount", "weight", "interpolation")
TOP_LEVEL_FIELDS = ("keyframes", "interpolation", "mode", "modes", "description")

# Column of every channel in the internal [T, 58] layout: 52 blendshapes (BLENDSHAPE_NAMES order), 3 + 3.
_COLUMN = {**BLENDSHAPE_INDEX,
           **{c: NUM_BLENDSHAPES + i for i, c in enumerate(ROTATION_CHANNELS + TRANSLATION_CHANNELS)}}
_WIDTH = NUM_BLENDSHAPES + 6


class ExpressionError(ValueError):
    """Bad expression input. `source` is the file (or "<dict>", "<sliders>"), `keyframe` the keyframe's
    index in the file (None for file-level problems) and `key` the offending field (None if not one)."""

    def __init__(self, message: str, *, source: str, keyframe: int | None = None, key: str | None = None) -> None:
        self.source, self.keyframe, self.key = source, keyframe, key
        where = source if keyframe is None else f"{source}: keyframe {keyframe}"
        super().__init__(f"{where}: {message}")


@dataclass(frozen=True)
class Keyframe:
    """One parsed keyframe."""

    t: float  # seconds from the start of the clip, >= 0
    values: Mapping[str, float | None]  # channel or pose preset -> weight, degrees or amount; None = release
    gestures: tuple[tuple[str, float], ...] = ()  # (gesture preset name, amount) started at t
    interpolation: Interpolation | None = None  # easing of the segments ending here; None = the file's default
    index: int = 0  # position in the file, for messages


@dataclass(frozen=True)
class ExpressionTrack:
    """Parsed keyframes plus how to interpolate and layer them (see the module docstring)."""

    keyframes: tuple[Keyframe, ...]  # sorted by t, distinct times, at least one
    mode: LayerMode = "add"  # how every channel layers over the driver, unless `modes` says otherwise
    modes: Mapping[str, LayerMode] = field(default_factory=dict)  # per-channel exceptions to `mode`
    interpolation: Interpolation = "linear"  # easing for keyframes that do not name their own
    source: str = "<dict>"  # where the track came from, for messages

    def channel_mode(self, name: str) -> LayerMode:
        """"add" or "override" for one channel name."""
        return self.modes.get(name, self.mode)

    @property
    def presets(self) -> tuple[str, ...]:
        """Pose presets keyed by at least one keyframe (in `POSE_PRESETS` order)."""
        used = {k for kf in self.keyframes for k in kf.values}
        return tuple(p for p in POSE_PRESETS if p in used)

    @property
    def channels(self) -> tuple[str, ...]:
        """Channels keyed by at least one keyframe, directly or through a pose preset (`CHANNELS` order)."""
        used = {k for kf in self.keyframes for k in kf.values}
        used.update(c for p in self.presets for c in PRESETS[p].channels)
        return tuple(c for c in CHANNELS if c in used)

    @property
    def duration(self) -> float:
        """Seconds until the last keyframe or the end of the last gesture, whichever is later."""
        ends = [kf.t + PRESETS[n].duration_s for kf in self.keyframes for n, _ in kf.gestures]
        return max([self.keyframes[-1].t, *ends])

    def to_motion(self, num_frames: int, fps: float) -> FaceMotion:
        """The keyframes alone, i.e. layered over a still portrait: `num_frames` frames at `fps` (frame k at
        time k / fps). Blendshapes are clamped to [0, 1], rotations to +/-`RESULT_ANGLE_DEG`."""
        _check_frames(num_frames, fps)
        return apply_expression(FaceMotion.still(num_frames, fps), self)

    def _eased(self, times: np.ndarray, keys: list[Keyframe], values: list[float], from_driver: bool) -> np.ndarray:
        """Eased keys (held outside them) at `times` [T] -> float64 [T]; with `from_driver`, a key of 0 is
        added at the first keyframe when `keys` does not start there."""
        key_t = np.array([kf.t for kf in keys])
        key_v = np.array(values, dtype=np.float64)
        smooth = np.array([(kf.interpolation or self.interpolation) == "smooth" for kf in keys])
        if from_driver and keys[0] is not self.keyframes[0]:
            key_t, key_v, smooth = np.r_[self.keyframes[0].t, key_t], np.r_[0.0, key_v], np.r_[False, smooth]
        return _interpolate(times, key_t, key_v, smooth)

    def _evaluate(self, num_frames: int, fps: float, start: float = 0.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Keyed values [T, 58], override blend weights [T, 58] (0 = driver, 1 = keyed value; 0 for add
        channels) and gesture offsets [T, 58], all float64; frame k at time start + k / fps."""
        _check_frames(num_frames, fps)
        times = float(start) + np.arange(num_frames) / float(fps)  # [T] seconds
        values, blend, gestures = (np.zeros((num_frames, _WIDTH)) for _ in range(3))
        for name in self.presets:
            keys = [kf for kf in self.keyframes if name in kf.values]
            amount = self._eased(times, keys, [kf.values[name] for kf in keys], from_driver=True)
            for channel, value in PRESETS[name].channels.items():
                values[:, _COLUMN[channel]] += amount * value
        for name in self.channels:
            col, override = _COLUMN[name], self.channel_mode(name) == "override"
            keys = [kf for kf in self.keyframes if name in kf.values]
            set_keys = [kf for kf in keys if kf.values[name] is not None]
            if set_keys and override:  # the value held across releases; `blend` says when it shows
                values[:, col] += self._eased(times, set_keys, [kf.values[name] for kf in set_keys], False)
            elif keys and not override:  # a release (null) is an offset of 0
                values[:, col] += self._eased(times, keys, [kf.values[name] or 0.0 for kf in keys], True)
            if override:
                touching = [p for p in self.presets if name in PRESETS[p].channels]
                keys = [kf for kf in self.keyframes if name in kf.values or any(p in kf.values for p in touching)]
                weights = [0.0 if name in kf.values and kf.values[name] is None else 1.0 for kf in keys]
                blend[:, col] = self._eased(times, keys, weights, from_driver=True)
        for kf in self.keyframes:
            for name, amount in kf.gestures:
                preset = PRESETS[name]
                weight = amount * preset.gesture_weight(times - kf.t, fps)  # [T]
                for channel, peak in preset.channels.items():
                    gestures[:, _COLUMN[channel]] += peak * weight
        return values, blend, gestures


def _check_frames(num_frames: int, fps: float) -> None:
    if isinstance(num_frames, bool) or not isinstance(num_frames, (int, np.integer)) or num_frames < 0:
        raise ValueError(f"num_frames must be a non-negative integer, got {num_frames!r}")
    if isinstance(fps, bool) or not (isinstance(fps, Real) and np.isfinite(fps) and fps > 0):
        raise ValueError(f"fps must be a positive number, got {fps!r}")


def _interpolate(times: np.ndarray, key_t: np.ndarray, key_v: np.ndarray, smooth: np.ndarray) -> np.ndarray:
    """Eased piecewise interpolation, held outside the keys.

    times: float [T] seconds; key_t: float [K] strictly increasing; key_v: float [K];
    smooth: bool [K], smoothstep easing for the segment that ends at key k (entry 0 unused).
    Returns float64 [T].
    """
    if len(key_t) == 1:
        return np.full(times.shape, float(key_v[0]))
    seg = np.clip(np.searchsorted(key_t, times, side="right") - 1, 0, len(key_t) - 2)  # [T] segment index
    u = np.clip((times - key_t[seg]) / (key_t[seg + 1] - key_t[seg]), 0.0, 1.0)
    u = np.where(smooth[seg + 1], u * u * (3.0 - 2.0 * u), u)
    return key_v[seg] + (key_v[seg + 1] - key_v[seg]) * u


def _to_face_motion(channels: np.ndarray, fps: float) -> FaceMotion:
    """[T, 58] channel values -> FaceMotion, blendshapes clamped to [0, 1] and rotations to the limit."""
    return FaceMotion(
        blendshapes=np.clip(channels[:, :NUM_BLENDSHAPES], 0.0, 1.0).astype(np.float32),
        rotation=np.clip(channels[:, NUM_BLENDSHAPES:NUM_BLENDSHAPES + 3], -RESULT_ANGLE_DEG,
                         RESULT_ANGLE_DEG).astype(np.float32),
        translation=channels[:, NUM_BLENDSHAPES + 3:].astype(np.float32),
        fps=float(fps))


def apply_expression(base: FaceMotion, track: ExpressionTrack, start: float = 0.0) -> FaceMotion:
    """Layer `track` over a driver's motion, per channel "add" or "override" (see the module docstring).

    The result has `base`'s frame count and fps; keys beyond the end of `base` are cut off.
    Blendshapes are clamped to [0, 1] and rotations to +/-`RESULT_ANGLE_DEG` after layering.
    start: the track's time (s) at base's frame 0 (live mode layers keyframes that began `start` s ago).
    """
    values, blend, gestures = track._evaluate(base.num_frames, base.fps, start)
    driver = np.concatenate([base.blendshapes, base.rotation, base.translation], axis=1).astype(np.float64)
    override = np.zeros(_WIDTH, bool)  # [58] channels in override mode
    for name in CHANNELS:
        override[_COLUMN[name]] = track.channel_mode(name) == "override"
    layered = np.where(override, (1.0 - blend) * driver + blend * values, driver + values)  # [T, 58]
    return _to_face_motion(layered + gestures, base.fps)


class _Where:
    """Error context: the source and (optionally) the keyframe being parsed."""

    def __init__(self, source: str, keyframe: int | None = None, label: str | None = None) -> None:
        self.source, self.keyframe, self.label = source, keyframe, label

    def error(self, message: str, key: str | None = None) -> ExpressionError:
        if self.label:
            message = f"{self.label}: {message}"
        return ExpressionError(message, source=self.source, keyframe=self.keyframe, key=key)


def _suggest(name: Any, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(str(name), list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _number(value: Any, key: str, where: _Where, lo: float, hi: float) -> float:
    if isinstance(value, bool) or not isinstance(value, Real):
        raise where.error(f"{key!r} must be a number, got {value!r}", key)
    value = float(value)
    if not np.isfinite(value):
        raise where.error(f"{key!r} must be finite, got {value!r}", key)
    if not lo <= value <= hi:
        raise where.error(f"{key!r} = {value:g} is outside [{lo:g}, {hi:g}]", key)
    return value


def _choice(value: Any, key: str, choices: tuple[str, ...], where: _Where) -> str:
    if value not in choices:
        raise where.error(f"{key!r} must be one of {list(choices)}, got {value!r}{_suggest(value, choices)}", key)
    return value


def _channel_range(name: str, mode: str) -> tuple[float, float]:
    if name in ROTATION_CHANNELS:
        return -MAX_ANGLE_DEG, MAX_ANGLE_DEG
    if name in ("x", "y"):
        return -MAX_SHIFT, MAX_SHIFT
    if name == "z":
        return Z_RANGE
    return (0.0, 1.0) if mode == "override" else (-1.0, 1.0)


def _parse_entries(entries: Mapping[Any, Any], where: _Where, mode_of: Callable[[str], str],
                   skip: tuple[str, ...], values: dict[str, float | None], gestures: dict[str, float],
                   allow_release: bool = True) -> None:
    """Channel values and preset-name keys of a keyframe or slider set -> `values` / `gestures` (filled)."""
    for key, value in entries.items():
        if key in skip:
            continue
        if not isinstance(key, str):
            raise where.error(f"key {key!r} is not a name", str(key))
        if key in PRESETS:
            if key in values or key in gestures:
                raise where.error(f"preset {key!r} is given twice", key)
            amount = _number(value, key, where, *AMOUNT_RANGE)
            (values if PRESETS[key].kind == "pose" else gestures)[key] = amount
        elif key in _COLUMN and key != BLENDSHAPE_NAMES[0]:
            if value is None and not allow_release:
                raise where.error(f"{key!r} must be a number, got None", key)
            values[key] = None if value is None else _number(value, key, where, *_channel_range(key, mode_of(key)))
        else:
            known = CHANNELS + tuple(PRESETS) + skip
            fields = ", keyframe field" if skip else ""
            raise where.error(f"unknown key {key!r}: not an ARKit blendshape, yaw/pitch/roll, x/y/z{fields} or "
                              f"preset{_suggest(key, known)}", key)


def _parse_keyframe(raw: Any, index: int, source: str, mode_of: Callable[[str], str]) -> tuple[Keyframe, bool]:
    """One raw keyframe -> (Keyframe, whether its "preset" field switches the pose presets)."""
    where = _Where(source, index)
    if not isinstance(raw, Mapping):
        raise where.error(f"a keyframe must be a mapping like {{'t': 0.0, 'jawOpen': 0.5}}, got {raw!r}")
    if "t" not in raw:
        raise where.error("missing 't' (seconds)", "t")
    t = _number(raw["t"], "t", where, 0.0, np.inf)
    where.label = f"t={t:g}"
    interpolation = raw.get("interpolation")
    if interpolation is not None:
        interpolation = _choice(interpolation, "interpolation", INTERPOLATIONS, where)
    if "amount" in raw and "weight" in raw:
        raise where.error("give 'amount' or 'weight' (the same thing), not both", "weight")
    amount_key = "weight" if "weight" in raw else "amount"
    named = raw.get("preset", [])
    names = [named] if isinstance(named, str) else named
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise where.error(f"'preset' must be a preset name or a list of names, got {named!r}", "preset")
    if amount_key in raw and not names:
        raise where.error(f"{amount_key!r} scales the keyframe's 'preset', but it names none", amount_key)
    amount = _number(raw[amount_key], amount_key, where, *AMOUNT_RANGE) if amount_key in raw else 1.0
    values: dict[str, float | None] = {}
    gestures: dict[str, float] = {}
    for name in names:
        if name not in PRESETS:
            raise where.error(f"unknown preset {name!r}{_suggest(name, PRESETS)}; presets: {sorted(PRESETS)}",
                              "preset")
        if name in values or name in gestures:
            raise where.error(f"preset {name!r} is given twice", "preset")
        (values if PRESETS[name].kind == "pose" else gestures)[name] = amount
    switches = bool(values)
    _parse_entries(raw, where, mode_of, KEYFRAME_FIELDS, values, gestures)
    return Keyframe(t=t, values=values, gestures=tuple(gestures.items()), interpolation=interpolation,
                    index=index), switches


def parse_expression(data: Any, source: str = "<dict>") -> ExpressionTrack:
    """Validate an already-decoded expression document (see the module docstring for the format).

    Raises ExpressionError naming `source`, the keyframe index and the offending key/value.
    """
    where = _Where(source)
    if not isinstance(data, Mapping):
        raise where.error(f"the top level must be a mapping with a 'keyframes' list, got {type(data).__name__}")
    for key in data:
        if key not in TOP_LEVEL_FIELDS:
            raise where.error(f"unknown top-level key {key!r}{_suggest(key, TOP_LEVEL_FIELDS)}; "
                              f"expected {list(TOP_LEVEL_FIELDS)}", str(key))
    interpolation = _choice(data.get("interpolation", "linear"), "interpolation", INTERPOLATIONS, where)
    mode = _choice(data.get("mode", "add"), "mode", LAYER_MODES, where)
    raw_modes = data.get("modes", {})
    if not isinstance(raw_modes, Mapping):
        raise where.error(f"'modes' must map channel names to 'add'/'override', got {raw_modes!r}", "modes")
    modes: dict[str, str] = {}
    for name, value in raw_modes.items():
        if name not in CHANNELS:
            raise where.error(f"'modes' names unknown channel {name!r}{_suggest(name, CHANNELS)}", str(name))
        modes[name] = _choice(value, str(name), LAYER_MODES, where)
    raw_keys = data.get("keyframes")
    if not isinstance(raw_keys, list):
        raise where.error(f"'keyframes' must be a list of keyframes, got {raw_keys!r}", "keyframes")
    if not raw_keys:
        raise where.error("'keyframes' is empty", "keyframes")
    parsed = [_parse_keyframe(raw, i, source, lambda c: modes.get(c, mode)) for i, raw in enumerate(raw_keys)]
    used = {p for kf, _ in parsed for p in kf.values if p in PRESETS}
    keyframes = [Keyframe(t=kf.t, gestures=kf.gestures, interpolation=kf.interpolation, index=kf.index,
                          values=MappingProxyType({**dict.fromkeys(used if switches else (), 0.0), **kf.values}))
                 for kf, switches in parsed]
    ordered = sorted(keyframes, key=lambda kf: kf.t)
    for a, b in zip(ordered, ordered[1:], strict=False):
        if a.t == b.t:
            raise ExpressionError(f"t={b.t:g} repeats the time of keyframe {a.index}", source=source,
                                  keyframe=b.index, key="t")
    if [kf.index for kf in ordered] != list(range(len(keyframes))):
        logger.debug("%s: keyframes sorted by t", source)
    return ExpressionTrack(keyframes=tuple(ordered), mode=mode, modes=MappingProxyType(modes),
                           interpolation=interpolation, source=source)


def reject_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """`json.loads(..., object_pairs_hook=reject_duplicate_keys)`: a key given twice is an error, not a
    silent overwrite (the message shows at most 40 characters of the key)."""
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise ValueError(f"duplicate key {key[:40]!r} in a JSON object")
        seen[key] = value
    return seen


def load_expression(path: str | Path) -> ExpressionTrack:
    """Read and validate a `.json`, `.yaml` or `.yml` expression file (YAML via `yaml.safe_load`)."""
    path = Path(path)
    where = _Where(str(path))
    suffix = path.suffix.lower()
    if suffix not in (".json", ".yaml", ".yml"):
        raise where.error(f"unsupported file type {suffix or path.name!r}; use .json, .yaml or .yml")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise where.error(f"cannot read the file: {exc}") from exc
    if suffix == ".json":
        try:
            data = json.loads(text, object_pairs_hook=reject_duplicate_keys)
        except json.JSONDecodeError as exc:
            raise where.error(f"malformed JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}") from exc
        except ValueError as exc:
            raise where.error(f"malformed JSON: {exc}") from exc
    else:
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
            problem = getattr(exc, "problem", None) or str(exc)
            raise where.error(f"malformed YAML{at}: {problem}") from exc
    return parse_expression(data, source=str(path))


def expression_from_sliders(values: Mapping[str, float], mode: LayerMode = "add",
                            source: str = "<sliders>") -> ExpressionTrack:
    """Slider values as a one-keyframe track (constant over the clip) to layer with `apply_expression`.

    values: {name: value}; names are ARKit blendshapes (weights), yaw/pitch/roll (degrees), x/y/z, or pose
    presets (amounts in [0, 1], e.g. {"smile": 0.6, "yaw": 10, "browInnerUp": 0.3}). Gesture presets
    (nod, blink, ...) are motions, not poses, and are rejected. Ranges as for keyframes in `mode`.
    """
    where = _Where(source)
    mode = _choice(mode, "mode", LAYER_MODES, where)
    if not isinstance(values, Mapping):
        raise where.error(f"slider values must be a mapping of name -> number, got {type(values).__name__}")
    keyed: dict[str, float | None] = {}
    gestures: dict[str, float] = {}
    _parse_entries(values, where, lambda c: mode, (), keyed, gestures, allow_release=False)
    for name in gestures:
        poses = [p for p in POSE_PRESETS if PRESETS[p].channels]
        raise where.error(f"{name!r} is a gesture, not a pose; slider presets are {poses}", name)
    keyframe = Keyframe(t=0.0, values=MappingProxyType(keyed))
    return ExpressionTrack(keyframes=(keyframe,), mode=mode, source=source)


def motion_from_sliders(values: Mapping[str, float], num_frames: int, fps: float) -> FaceMotion:
    """The studio's slider values as a constant `FaceMotion` of `num_frames` frames at `fps`.

    Same names as `expression_from_sliders`; blendshape weights must be in [0, 1] (it is a motion).
    """
    return expression_from_sliders(values, mode="override").to_motion(num_frames, fps)
