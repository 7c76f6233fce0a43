"""Named expression presets for keyframe files and the studio's sliders.

Two kinds:

- **pose** presets are a set of channel values (ARKit blendshape weights, head angles in degrees). At a
  keyframe they are *keyed* like hand-written channels, scaled by the keyframe's amount, so they ease in
  from the previous keyframe and hold until the next one changes them.
- **gesture** presets are short motions that start at the keyframe's time and end where they began
  (a nod, a blink). They are added on top of whatever the face is doing, scaled by the amount.

"Left"/"right" are always the *subject's* own sides, as in the ARKit names (eyeBlinkLeft closes the
subject's left eye, which is on the image's right). So `look_left` turns the face toward image-right
(yaw < 0) and `wink_left` closes the eye on the image's right.

| preset | kind | what it does at amount 1 |
|---|---|---|
| neutral | pose | nothing (`"preset": "neutral"` switches the other pose presets off) |
| smile | pose | mouthSmile L/R 0.8, cheekSquint L/R 0.3, eyeSquint L/R 0.15 |
| surprise | pose | browInnerUp 0.8, browOuterUp L/R 0.8, eyeWide L/R 0.7, jawOpen 0.35 |
| frown | pose | browDown L/R 0.7, mouthFrown L/R 0.6 |
| sad | pose | browInnerUp 0.7, mouthFrown L/R 0.5, mouthShrugLower 0.3, eyeLookDown L/R 0.15 |
| angry | pose | browDown L/R 0.9, eyeSquint L/R 0.4, noseSneer L/R 0.4, mouthPress L/R 0.4 |
| raise_brows | pose | browInnerUp 0.7, browOuterUp L/R 0.7 |
| look_left | pose | yaw -20 deg (toward image-right), eyes to the subject's left (eyeLookOutLeft, eyeLookInRight 0.5) |
| look_right | pose | yaw +20 deg (toward image-left), eyes to the subject's right (eyeLookInLeft, eyeLookOutRight 0.5) |
| look_up | pose | pitch +10 deg (chin up), eyeLookUp L/R 0.5 |
| look_down | pose | pitch -10 deg (chin down), eyeLookDown L/R 0.5 |
| nod | gesture | 0.8 s: chin dips 8 deg, rebounds 6 deg up, settles back to 0 (pitch) |
| shake | gesture | 1.0 s: yaw swings of 11 (toward image-left), 12, 6, 1.5 deg, back to 0 |
| blink | gesture | 0.2 s: both eyes close (eyeBlink L/R 1), hold, reopen |
| wink_left | gesture | 0.5 s: subject's left eye closes, with cheekSquintLeft 0.3 and mouthSmileLeft 0.3 |
| wink_right | gesture | 0.5 s: the same on the subject's right |
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Callable, Literal, Mapping

import numpy as np

PresetKind = Literal["pose", "gesture"]
PEAK_SUBSAMPLES = 8  # samples per frame interval for peak-sampled gestures (blinks)


@dataclass(frozen=True)
class Preset:
    """One named preset; see the module docstring for the table."""

    name: str  # the name used in files ("preset": "smile") and as a slider key
    kind: PresetKind  # "pose": channel values keyed at a keyframe; "gesture": a short motion starting there
    channels: Mapping[str, float]  # pose: channel value at amount 1; gesture: peak channel offset at amount 1
    description: str  # one line for documentation and UI tooltips
    duration_s: float = 0.0  # gesture length in seconds (0 for poses)
    profile: Callable[[np.ndarray], np.ndarray] | None = None  # gesture shape over normalised time u in [0, 1]
    peak_sampled: bool = False  # each frame shows the profile's peak within its interval (blinks never missed)

    def gesture_weight(self, seconds_since_start: np.ndarray, fps: float) -> np.ndarray:
        """Profile weight of this gesture per frame.

        seconds_since_start: float [T], frame time minus the gesture's start time (negative before it).
        Returns float64 [T], 0 outside the gesture; in [0, 1] for blinks/winks, [-1, 1] for nod/shake.
        """
        if self.kind != "gesture" or self.profile is None:
            raise ValueError(f"preset {self.name!r} is a {self.kind}, not a gesture")
        s = np.asarray(seconds_since_start, dtype=np.float64)
        if not self.peak_sampled:
            return self.profile(s / self.duration_s)
        offsets = np.arange(PEAK_SUBSAMPLES) / (PEAK_SUBSAMPLES - 1) / fps  # [S] within one frame interval
        return self.profile((s[:, None] + offsets[None, :]) / self.duration_s).max(axis=1)  # [T, S] -> [T]


def _inside(u: np.ndarray) -> np.ndarray:
    return (u >= 0.0) & (u <= 1.0)


def _lid_closure(close_end: float, open_start: float) -> Callable[[np.ndarray], np.ndarray]:
    """Closure over u in [0, 1]: sin^2 close over [0, close_end], hold, cos^2 reopen over [open_start, 1]."""

    def profile(u: np.ndarray) -> np.ndarray:
        close = np.sin(np.clip(u / close_end, 0.0, 1.0) * np.pi / 2) ** 2
        reopen = np.cos(np.clip((u - open_start) / (1.0 - open_start), 0.0, 1.0) * np.pi / 2) ** 2
        return np.where(_inside(u), close * reopen, 0.0)

    return profile


def _oscillation(half_cycles: int, decay: float) -> Callable[[np.ndarray], np.ndarray]:
    """sin(pi k u) * sin(pi u) * exp(-decay u) over u in [0, 1], scaled to peak |1|: k alternating lobes,
    decaying, starting and ending at 0 with zero slope."""
    grid = np.linspace(0.0, 1.0, 4001)

    def raw(u: np.ndarray) -> np.ndarray:
        return np.sin(np.pi * half_cycles * u) * np.sin(np.pi * u) * np.exp(-decay * u)

    peak = float(np.abs(raw(grid)).max())

    def profile(u: np.ndarray) -> np.ndarray:
        return np.where(_inside(u), raw(u) / peak, 0.0)

    return profile


def _lr(stem: str, value: float) -> dict[str, float]:
    return {stem + "Left": value, stem + "Right": value}


def _pose(name: str, description: str, **channels: float) -> Preset:
    return Preset(name, "pose", MappingProxyType(dict(channels)), description)


def _gesture(name: str, description: str, duration_s: float, profile: Callable[[np.ndarray], np.ndarray],
             channels: dict[str, float], peak_sampled: bool = False) -> Preset:
    return Preset(name, "gesture", MappingProxyType(channels), description, duration_s, profile, peak_sampled)


_PRESETS = (
    _pose("neutral", "no preset: with \"preset\": \"neutral\" a keyframe switches every pose preset off"),
    _pose("smile", "a warm smile: mouth corners out and up, cheeks raised",
          **_lr("mouthSmile", 0.8), **_lr("cheekSquint", 0.3), **_lr("eyeSquint", 0.15)),
    _pose("surprise", "brows up, eyes wide, jaw dropped a little",
          browInnerUp=0.8, **_lr("browOuterUp", 0.8), **_lr("eyeWide", 0.7), jawOpen=0.35),
    _pose("frown", "brows drawn down, mouth corners down", **_lr("browDown", 0.7), **_lr("mouthFrown", 0.6)),
    _pose("sad", "inner brows up, mouth corners down, eyes lowered",
          browInnerUp=0.7, **_lr("mouthFrown", 0.5), mouthShrugLower=0.3, **_lr("eyeLookDown", 0.15)),
    _pose("angry", "brows down hard, eyes narrowed, nose sneer, lips pressed",
          **_lr("browDown", 0.9), **_lr("eyeSquint", 0.4), **_lr("noseSneer", 0.4), **_lr("mouthPress", 0.4)),
    _pose("raise_brows", "both brows raised", browInnerUp=0.7, **_lr("browOuterUp", 0.7)),
    _pose("look_left", "head and eyes turn to the subject's left (image right)",
          yaw=-20.0, eyeLookOutLeft=0.5, eyeLookInRight=0.5),
    _pose("look_right", "head and eyes turn to the subject's right (image left)",
          yaw=20.0, eyeLookInLeft=0.5, eyeLookOutRight=0.5),
    _pose("look_up", "chin and eyes up", pitch=10.0, **_lr("eyeLookUp", 0.5)),
    _pose("look_down", "chin and eyes down", pitch=-10.0, **_lr("eyeLookDown", 0.5)),
    _gesture("nod", "a 0.8 s 'yes' nod: chin dips 8 deg, rebounds 6 deg up, settles", 0.8,
             _oscillation(3, 3.0), {"pitch": -8.0}),
    _gesture("shake", "a 1 s 'no' head shake: yaw swings of 11, 12, 6, 1.5 deg, alternating", 1.0,
             _oscillation(4, 3.0), {"yaw": 12.0}),
    _gesture("blink", "a 0.2 s blink of both eyes", 0.2, _lid_closure(0.3, 0.45), _lr("eyeBlink", 1.0),
             peak_sampled=True),
    _gesture("wink_left", "a 0.5 s wink of the subject's left eye (image right)", 0.5, _lid_closure(0.2, 0.6),
             {"eyeBlinkLeft": 1.0, "cheekSquintLeft": 0.3, "mouthSmileLeft": 0.3}, peak_sampled=True),
    _gesture("wink_right", "a 0.5 s wink of the subject's right eye (image left)", 0.5, _lid_closure(0.2, 0.6),
             {"eyeBlinkRight": 1.0, "cheekSquintRight": 0.3, "mouthSmileRight": 0.3}, peak_sampled=True),
)
PRESETS: Mapping[str, Preset] = MappingProxyType({p.name: p for p in _PRESETS})
POSE_PRESETS: tuple[str, ...] = tuple(p.name for p in _PRESETS if p.kind == "pose")
GESTURE_PRESETS: tuple[str, ...] = tuple(p.name for p in _PRESETS if p.kind == "gesture")
