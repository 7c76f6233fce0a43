"""Render options: one frozen dataclass per concern, validated in one place (`validate`).

Every option is defined once, here: its type, default and help live on the field (`_opt` metadata),
and the CLI flags (`cli.py`), batch job keys and job-API fields are all derived from these fields
(`option_specs`, `options_from_values`). A new option is a new field.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from .errors import InputError
from .limits import LIMITS

Engine = Literal["auto", "warp", "mofa"]
AudioDriver = Literal["embedded", "sadtalker"]
RelativeTo = Literal["first", "neutral"]
Language = Literal["auto", "english", "acoustic"]
DType = Literal["fp16", "bf16", "fp32"]
MofaMode = Literal["auto", "keypoint", "hybrid"]  # = mofa_engine.pipeline.animate.MofaMode
TemporalContext = Literal["reference", "trained"]  # = mofa_engine.models.temporal_context.TemporalContextLayout

DRIVER = ("render", "landmarks")  # options of every command that runs a driver
RENDER = ("render",)  # options that only matter when frames are rendered


def _opt(default: Any = None, help: str = "", *, scope: tuple[str, ...] = DRIVER, flag: str | None = None,
         metavar: str | None = None, factory: Any = None) -> Any:
    """A dataclass field with its CLI/job metadata: `help` (one line), the commands it belongs to
    (`scope`), an explicit `flag` when it is not `--field-name`, and a `metavar`."""
    meta = {"help": help, "scope": scope, "flag": flag, "metavar": metavar}
    if factory is not None:
        return field(default_factory=factory, metadata=meta)
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class MofaOptions:
    """Settings of the MOFA (SVD-xt) engine; ignored by the warp engine."""

    steps: int = _opt(25, "denoising steps (EDM Euler)", scope=RENDER)
    guidance_min: float = _opt(1.0, "classifier-free guidance at a window's first frame", scope=RENDER)
    guidance_max: float = _opt(3.0, "classifier-free guidance at a window's last frame (linear ramp)", scope=RENDER)
    landmark_scale: float = _opt(1.0, "conditioning scale of the landmark adapter (inside the face mask)",
                                 scope=RENDER)
    trajectory_scale: float = _opt(0.6, "conditioning scale of the trajectory adapter (outside the face mask)",
                                   scope=RENDER)
    window: int = _opt(25, "frames per periodic-sampling window: 25 (SVD-xt's native length) or 14", scope=RENDER)
    landmark_mask: Path | None = _opt(None, "mask image (photo pixels): white = where the landmark adapter drives; "
                                      "default: face, hair and neck", scope=RENDER, metavar="MASK")
    dtype: DType = _opt("fp16", "weights/activations dtype on the GPU (the CPU always runs fp32)", scope=RENDER)
    device: str | None = _opt(None, "torch device (default: cuda when available, else cpu)", scope=RENDER)
    cpu_offload: bool = _opt(False, "keep idle models on the CPU (diffusers model offload) to save GPU memory",
                             scope=RENDER)
    decode_chunk: int = _opt(8, "frames per VAE decode call", scope=RENDER)
    mode: MofaMode = _opt("auto", "keypoint: the landmark adapter alone over the whole frame (one adapter per "
                          "step); hybrid: it drives the face mask, the trajectory adapter the rest (held still or "
                          "dragged); auto: keypoint unless --trajectory, --motion-brush or --landmark-mask",
                          scope=RENDER, flag="--mofa-mode")
    temporal_context: TemporalContext = _opt("reference", "which CLIP context SVD's temporal attention reads under "
                                             "guidance: reference (the published MOFA-Video demo's numerics) or "
                                             "trained (the layout the networks were trained with)", scope=RENDER)
    checkpoint_every: int = _opt(5, "save the denoising state beside the output every this many steps (0 = never); "
                                 "removed once the video is written", scope=RENDER, metavar="STEPS")
    resume: bool = _opt(False, "continue a killed mofa render from the checkpoint beside its output (same inputs "
                        "and options)", scope=RENDER)


@dataclass(frozen=True)
class RenderOptions:
    """Everything `Studio.render` needs besides the inputs and the output path."""

    engine: Engine = _opt("auto", "auto: mofa when its checkpoints verify and a GPU is present, else warp",
                          scope=RENDER)
    fps: float = _opt(25.0, f"output frame rate, 1..{LIMITS.fps_range.value:g}")
    size: int = _opt(512, "short side of the output in pixels, 64..2048 (mofa crops both sides to multiples of "
                     f"64); the long side may be at most {LIMITS.frame_long_side}")
    seed: int = _opt(0, "seeds every random choice (blinks, head motion, diffusion noise)")
    transcript: str | None = _opt(None, "what is said (a .txt file or the text itself; English): forced "
                                  "alignment of phones instead of recognition", metavar="FILE|TEXT")
    head_motion: float = _opt(1.0, "scale of the idle head motion; 0 = still head")
    expressiveness: float = _opt(1.0, "scale of brow raises and eye widening; 0 = none (blinks stay natural)")
    language: Language = _opt("auto", "speech: auto (phones + acoustics, any language), english (phone "
                              "visemes), acoustic (loudness and spectrum only)")
    trajectory: Path | None = _opt(None, "JSON of trajectories that move the background (photo pixels); at most "
                                   f"{LIMITS.trajectories}, {LIMITS.trajectory_points} each, "
                                   f"{LIMITS.document_bytes}", scope=RENDER, metavar="T.json")
    motion_brush: Path | None = _opt(None, "mask image: white = the region the trajectories move; transparent "
                                     "= unpainted", scope=RENDER, metavar="MASK")
    max_duration: float = _opt(600.0, "refuse inputs longer than this many seconds, for every driver: audio, "
                               "driving video, keyframes (last t), --landmarks tracks; at most "
                               f"{LIMITS.max_duration}", metavar="S")
    ckpt_dir: Path | None = _opt(None, "checkpoint directory (default $PORTRAIT_STUDIO_CKPTS or ckpts/)",
                                 metavar="DIR")
    save_landmarks: Path | None = _opt(None, "also write the landmark track (.npz); never over an input",
                                       scope=RENDER, metavar="LM.npz")
    debug_dir: Path | None = _opt(None, "also write landmarks.mp4 and flow.mp4 (overlay and flow videos) here; "
                                  "never over an input", scope=RENDER, metavar="DIR")
    audio_driver: AudioDriver = _opt("embedded", "speech -> motion: embedded (no weights) or sadtalker "
                                     "(learned; needs its weights)")
    pose_style: int = _opt(0, "sadtalker head-pose style, 0..45")
    driving_video: Path | None = _opt(None, "puppet the portrait with the face in this video", metavar="VIDEO")
    relative_to: RelativeTo = _opt("first", "driving video: motion measured from its first or its most "
                                   "neutral frame")
    expression: Path | None = _opt(None, "expression keyframes (JSON or YAML) layered over the driver, or "
                                   f"driving alone; at most {LIMITS.keyframes}, {LIMITS.document_bytes}, "
                                   f"{LIMITS.yaml_aliases}", metavar="KEYS")
    landmarks: Path | None = _opt(None, "render this saved (possibly hand-edited) landmark track (.npz) "
                                  f"instead of running a driver; its stored fps 1..{LIMITS.fps_range.value:g}",
                                  scope=RENDER, metavar="LM.npz")
    camera: str | None = _opt(None, "camera move over the clip: zoom-in, zoom-out (AMOUNT = scale change, default "
                              "0.15), pan-left, pan-right, pan-up, pan-down (part of the frame, default 0.1), "
                              "rotate-cw, rotate-ccw (degrees, default 5); combines with --trajectory",
                              scope=RENDER, metavar="NAME[:AMOUNT]")
    face: int | None = _opt(None, "which face moves when the photo has several: 1 = the leftmost (default: the "
                            "largest)", metavar="N")
    duration: float | None = _opt(None, "only the first this many seconds (the studio's preview; default: all)",
                                  metavar="S")
    mofa: MofaOptions = _opt(help="MOFA engine settings", scope=(), factory=MofaOptions)

    def validate(self) -> "RenderOptions":
        """Raise InputError naming the first invalid value; return self for chaining."""
        _check(self.engine in ("auto", "warp", "mofa"), f"--engine must be auto, warp or mofa, got {self.engine!r}")
        top_fps = LIMITS.fps_range.value
        _check(_finite(self.fps) and 1 <= self.fps <= top_fps, f"--fps must be between 1 and {top_fps:g}, got {self.fps}")
        _check(64 <= self.size <= 2048, f"--size must be between 64 and 2048 pixels, got {self.size}")
        _check(_finite(self.head_motion) and 0 <= self.head_motion <= 5,
               f"--head-motion must be between 0 and 5, got {self.head_motion}")
        _check(_finite(self.expressiveness) and 0 <= self.expressiveness <= 5,
               f"--expressiveness must be between 0 and 5, got {self.expressiveness}")
        top = LIMITS.max_duration.value
        _check(_finite(self.max_duration) and 0 < self.max_duration <= top,
               f"--max-duration must be between 0 and {top:g} s (max duration limit), got {self.max_duration}")
        top_chars = LIMITS.transcript_chars
        _check(self.transcript is None or len(self.transcript) <= top_chars.value,
               f"--transcript has {len(self.transcript or ''):,} characters, over the {top_chars} limit")
        _check(self.language in ("auto", "english", "acoustic"),
               f"--language must be auto, english or acoustic, got {self.language!r}")
        _check(self.audio_driver in ("embedded", "sadtalker"),
               f"--audio-driver must be embedded or sadtalker, got {self.audio_driver!r}")
        _check(0 <= self.pose_style <= 45, f"--pose-style must be between 0 and 45, got {self.pose_style}")
        _check(self.relative_to in ("first", "neutral"), f"--relative-to must be first or neutral, got {self.relative_to!r}")
        _check(self.landmarks is None or self.driving_video is None,
               "--landmarks renders a saved track; it cannot be combined with --driving-video")
        for name, path in (("--trajectory", self.trajectory), ("--motion-brush", self.motion_brush),
                           ("--landmark-mask", self.mofa.landmark_mask), ("--driving-video", self.driving_video),
                           ("--expression", self.expression), ("--landmarks", self.landmarks)):
            _check(path is None or Path(path).is_file(), f"{name} file not found: {path}")
        _check(self.motion_brush is None or self.trajectory is not None,
               "--motion-brush needs --trajectory (the brush selects what the trajectories move)")
        if self.camera is not None:
            from mofa_engine.camera import CameraMove

            try:
                CameraMove.parse(self.camera)
            except ValueError as exc:
                raise InputError(f"--camera: {exc}") from None
        _check(self.face is None or (isinstance(self.face, int) and not isinstance(self.face, bool)
                                     and 1 <= self.face <= 64),
               f"--face must be a face number from 1 (the leftmost), got {_short(self.face)}")
        _check(self.duration is None or (_finite(self.duration) and self.duration > 0),
               f"--duration must be a positive number of seconds, got {_short(self.duration)}")
        m = self.mofa
        _check(1 <= m.steps <= 200, f"--steps must be between 1 and 200, got {m.steps}")
        _check(_finite(m.guidance_min) and _finite(m.guidance_max) and 0 < m.guidance_min <= m.guidance_max,
               f"--guidance-min/--guidance-max must satisfy 0 < min <= max, got {m.guidance_min}/{m.guidance_max}")
        _check(m.window in (14, 25), f"--window must be 14 or 25 frames, got {m.window}")
        _check(m.dtype in ("fp16", "bf16", "fp32"), f"--dtype must be fp16, bf16 or fp32, got {m.dtype!r}")
        _check(m.decode_chunk >= 1, f"--decode-chunk must be at least 1, got {m.decode_chunk}")
        for name, v in (("--landmark-scale", m.landmark_scale), ("--trajectory-scale", m.trajectory_scale)):
            _check(_finite(v) and 0 <= v <= 5, f"{name} must be between 0 and 5, got {v}")
        _check(m.mode in ("auto", "keypoint", "hybrid"), f"--mofa-mode must be auto, keypoint or hybrid, got {m.mode!r}")
        _check(m.temporal_context in ("reference", "trained"),
               f"--temporal-context must be reference or trained, got {m.temporal_context!r}")
        _check(isinstance(m.checkpoint_every, int) and 0 <= m.checkpoint_every <= 1000,
               f"--checkpoint-every must be between 0 and 1000 steps, got {m.checkpoint_every}")
        _check(m.mode != "keypoint" or self.engine == "warp" or (self.trajectory is None and m.landmark_mask is None),
               "--mofa-mode keypoint runs the landmark adapter alone; --trajectory, --motion-brush and "
               "--landmark-mask need --mofa-mode hybrid or auto")
        return self


# ---------------------------------------------------------------------------------------------- specs
@dataclass(frozen=True)
class OptionSpec:
    """One user-facing option, derived from its dataclass field."""

    name: str  # field name, e.g. "head_motion"
    owner: type  # RenderOptions or MofaOptions
    kind: type  # bool, int, float, str or Path (the value type, None aside)
    choices: tuple[str, ...] | None  # for Literal modes
    default: Any  # the field's default
    help: str  # one line
    scope: tuple[str, ...]  # commands it belongs to ("render", "landmarks")
    flag: str  # the CLI flag, e.g. "--head-motion"
    metavar: str | None  # the CLI metavar


def _value_type(annotation: Any) -> tuple[type, tuple[str, ...] | None]:
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if typing.get_origin(annotation) is Literal:
        return str, tuple(typing.get_args(annotation))
    if args:  # X | None
        return _value_type(args[0])
    return annotation, None


def _specs_of(cls: type) -> list[OptionSpec]:
    hints = typing.get_type_hints(cls)
    specs = []
    for f in dataclasses.fields(cls):
        if not f.metadata.get("scope"):
            continue
        kind, choices = _value_type(hints[f.name])
        specs.append(OptionSpec(f.name, cls, kind, choices, f.default, f.metadata["help"], f.metadata["scope"],
                                f.metadata["flag"] or "--" + f.name.replace("_", "-"), f.metadata["metavar"]))
    return specs


def option_specs() -> list[OptionSpec]:
    """Every option of RenderOptions and MofaOptions, in definition order (render options first)."""
    return _specs_of(RenderOptions) + _specs_of(MofaOptions)


def options_from_values(values: Mapping[str, Any], base: RenderOptions | None = None) -> RenderOptions:
    """RenderOptions from option values by long name (`head_motion` or `head-motion`), over `base`.

    Strings are converted to the option's type (CSV cells, form fields); None keeps the default of
    `base`. Raises InputError naming an unknown option or a value of the wrong type. Not validated:
    call `.validate()`.
    """
    base = base or RenderOptions()
    specs = {s.name: s for s in option_specs()}
    render: dict[str, Any] = {}
    mofa: dict[str, Any] = {}
    for raw_key, value in values.items():
        key = str(raw_key).strip().replace("-", "_")
        spec = specs.get(key)
        if spec is None:
            raise InputError(f"unknown option {_short(raw_key)!r}")
        if value is None:
            continue
        (render if spec.owner is RenderOptions else mofa)[key] = _convert(spec, value)
    if mofa:
        render["mofa"] = dataclasses.replace(base.mofa, **mofa)
    return dataclasses.replace(base, **render)


def _convert(spec: OptionSpec, value: Any) -> Any:
    flag = spec.flag
    try:
        if spec.kind is bool:
            if isinstance(value, str):
                lowered = value.strip().lower()
                if lowered not in ("true", "false", "1", "0", "yes", "no", ""):
                    raise ValueError
                return lowered in ("true", "1", "yes")
            if not isinstance(value, (bool, int)):
                raise ValueError
            return bool(value)
        if spec.kind is int:
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError
            return int(value)
        if spec.kind is float:
            if isinstance(value, bool):
                raise ValueError
            return float(value)
        if spec.kind is Path:
            if not isinstance(value, (str, Path)):
                raise ValueError
            return Path(value)
        if not isinstance(value, str):
            raise ValueError
        return value
    except (TypeError, ValueError, OverflowError):
        raise InputError(f"{flag} takes {spec.kind.__name__ if spec.kind is not Path else 'a path'}, "
                         f"got {_short(value)!r}") from None


def _short(value: Any, limit: int = 60) -> str:
    text = str(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _finite(x: float) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x)


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise InputError(message)
