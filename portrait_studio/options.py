"""Render options: one frozen dataclass per concern, validated in one place (`validate`)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from .errors import InputError

Engine = Literal["auto", "warp", "mofa"]
AudioDriver = Literal["embedded", "sadtalker"]
RelativeTo = Literal["first", "neutral"]
Language = Literal["auto", "english", "acoustic"]
DType = Literal["fp16", "bf16", "fp32"]


@dataclass(frozen=True)
class MofaOptions:
    """Settings of the MOFA (SVD-xt) engine; ignored by the warp engine."""

    steps: int = 25  # denoising steps (EDM Euler)
    guidance_min: float = 1.0  # classifier-free guidance at the first frame of a window
    guidance_max: float = 3.0  # ... ramped linearly to this at the last frame
    landmark_scale: float = 1.0  # conditioning scale of the landmark adapter (inside the face mask)
    trajectory_scale: float = 0.6  # conditioning scale of the trajectory adapter (outside it)
    window: int = 25  # frames per periodic-sampling window (25 = SVD-xt's native length; 14 allowed)
    landmark_mask: Path | None = None  # user mask (white = face adapter); default: face, hair and neck
    dtype: DType = "fp16"  # weights/activations dtype on the GPU (fp32 on CPU)
    device: str | None = None  # torch device; None = "cuda" when available, else "cpu"
    cpu_offload: bool = False  # keep idle models on the CPU (diffusers model offload) to save VRAM
    decode_chunk: int = 8  # frames per VAE decode call (the temporal decoder's chunk)


@dataclass(frozen=True)
class RenderOptions:
    """Everything `Studio.render` needs besides the inputs and the output path."""

    engine: Engine = "auto"  # auto: mofa when its checkpoints verify and a GPU is present, else warp
    fps: float = 25.0  # output frame rate
    size: int = 512  # short side of the output video in pixels
    seed: int = 0  # seeds every random choice (blinks, head motion, diffusion noise)
    transcript: str | None = None  # what is said (English): enables forced alignment of phones
    head_motion: float = 1.0  # scale of the idle head motion; 0 = still head
    expressiveness: float = 1.0  # scale of brow raises and eye widening; 0 = none (blinks stay natural)
    language: Language = "auto"  # speech: auto (phones + acoustics), english (phones), acoustic (any language)
    trajectory: Path | None = None  # JSON of trajectories that move the background (see README)
    motion_brush: Path | None = None  # mask PNG: white = the region the trajectories move
    max_duration: float = 600.0  # refuse audio longer than this many seconds
    ckpt_dir: Path | None = None  # checkpoint directory; None = $PORTRAIT_STUDIO_CKPTS or ckpts/
    save_landmarks: Path | None = None  # also write the landmark track (.npz)
    debug_dir: Path | None = None  # also write landmark-overlay and flow-visualisation videos here
    audio_driver: AudioDriver = "embedded"  # speech -> motion: embedded (no weights) or sadtalker (learned)
    pose_style: int = 0  # sadtalker head-pose style, 0..45
    driving_video: Path | None = None  # puppet the portrait with the face in this video
    relative_to: RelativeTo = "first"  # driving-video pose/expression zero: its first or most neutral frame
    expression: Path | None = None  # keyframes (JSON/YAML) layered over the driver, or driving alone
    landmarks: Path | None = None  # render this saved landmark track (.npz) instead of running a driver
    mofa: MofaOptions = field(default_factory=MofaOptions)  # MOFA engine settings

    def validate(self) -> "RenderOptions":
        """Raise InputError naming the first invalid value; return self for chaining."""
        _check(self.engine in ("auto", "warp", "mofa"), f"--engine must be auto, warp or mofa, got {self.engine!r}")
        _check(_finite(self.fps) and 1 <= self.fps <= 120, f"--fps must be between 1 and 120, got {self.fps}")
        _check(64 <= self.size <= 2048, f"--size must be between 64 and 2048 pixels, got {self.size}")
        _check(_finite(self.head_motion) and 0 <= self.head_motion <= 5,
               f"--head-motion must be between 0 and 5, got {self.head_motion}")
        _check(_finite(self.expressiveness) and 0 <= self.expressiveness <= 5,
               f"--expressiveness must be between 0 and 5, got {self.expressiveness}")
        _check(_finite(self.max_duration) and self.max_duration > 0,
               f"--max-duration must be positive, got {self.max_duration}")
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
        m = self.mofa
        _check(1 <= m.steps <= 200, f"--steps must be between 1 and 200, got {m.steps}")
        _check(_finite(m.guidance_min) and _finite(m.guidance_max) and 0 < m.guidance_min <= m.guidance_max,
               f"--guidance-min/--guidance-max must satisfy 0 < min <= max, got {m.guidance_min}/{m.guidance_max}")
        _check(m.window in (14, 25), f"--window must be 14 or 25 frames, got {m.window}")
        _check(m.dtype in ("fp16", "bf16", "fp32"), f"--dtype must be fp16, bf16 or fp32, got {m.dtype!r}")
        _check(m.decode_chunk >= 1, f"--decode-chunk must be at least 1, got {m.decode_chunk}")
        for name, v in (("--landmark-scale", m.landmark_scale), ("--trajectory-scale", m.trajectory_scale)):
            _check(_finite(v) and 0 <= v <= 5, f"{name} must be between 0 and 5, got {v}")
        return self


def _finite(x: float) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x)


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise InputError(message)
