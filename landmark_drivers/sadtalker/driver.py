"""`SadTalkerDriver`: speech + portrait -> `LandmarkTrack`, with SadTalker's published networks.

The route of MOFA-Video's audio demo (spec §8.1): the portrait's 257 BFM coefficients from the
Deep3DFaceRecon net, expression per frame from ExpNet (audio2exp), head pose per frame from PoseVAE
(audio2pose), and the BFM's 68 landmark vertices projected back into the portrait.

Deliberate differences from the reference (the weights do not depend on any of them):
* Timing: the reference's `landmarks.npy` is [source] + N predictions, so landmark k >= 1 shows audio frame
  k - 1 and the video lags the audio by one frame (40 ms). Here landmark k shows audio frame k (k >= 1);
  frame 0 is the portrait itself, which replaces the prediction for audio frame 0.
* Frame rate: the networks run at 25 fps. For any other output fps the 25 fps track is resampled in time
  by linear interpolation. The track has `max(1, round(duration * fps))` frames, the product's rule (the
  last one holds the last predicted frame when it falls past it); audio shorter than one 25 fps frame
  (640 samples) gives a still track.
* Anchor (`SadTalkerOptions.anchor`): by default ("portrait") the track is the portrait's detected
  landmarks plus the BFM landmark motion (projection of frame k minus projection of the source fit), so
  frame 0 is exactly the detected face and the fit error of the 3DMM does not show up as motion. "bfm"
  gives the reference's absolute projections (frame 0 = the projected source fit).
* Fewer than 3 frames are not smoothed (the reference's Savitzky-Golay call fails there).
* Face detection/landmarks come from mediapipe (`SourceFace`), not RetinaFace + FAN; see `align.py`.
* Random draws (blinks, pose latents) come from `random.Random(seed)` and a torch CPU generator seeded with
  `seed`; the reference seeds the global generators, so its draws match only if nothing consumed them first.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, NamedTuple

import librosa
import numpy as np
import torch
from safetensors import safe_open
from torch import nn

from ..motion import LandmarkTrack
from ..progress import ProgressFn
from ..source_face import SourceFace
from .align import Alignment, align_for_recon
from .audio2exp import Audio2Exp, blink_sequence
from .audio2pose import NUM_STYLES, Audio2Pose, smooth_pose
from .bfm import BFMKeypoints, load_bfm, load_lm3d_template, project_landmarks
from .face_recon import COEFF_SLICES, FaceReconNet
from .mel import FPS, SAMPLE_RATE, audio_features

logger = logging.getLogger(__name__)

WEIGHTS_FILE = "sad_talker/SadTalker_V0.0.2_256.safetensors"
BFM_FILE = "sad_talker/BFM_Fitting/BFM_model_front.mat"
LM3D_FILE = "sad_talker/BFM_Fitting/similarity_Lm3D_all.mat"
# state-dict prefix in the safetensors file -> network; `generator.`, `kp_extractor.`, `he_estimator.`
# (the facevid2vid renderer) are in the same file and ignored.
NETWORKS: dict[str, type[nn.Module]] = {"audio2exp": Audio2Exp, "audio2pose": Audio2Pose, "face_3drecon": FaceReconNet}

Anchor = Literal["portrait", "bfm"]
_STAGES = 5


class MissingSadTalkerFilesError(FileNotFoundError):
    """Files of the SadTalker driver are missing; `missing` holds every expected path."""

    def __init__(self, missing: tuple[Path, ...]) -> None:
        self.missing = tuple(missing)
        listing = "; ".join(str(p) for p in self.missing)
        super().__init__(f"SadTalker audio driver: {len(self.missing)} file(s) missing: {listing} "
                         "(fetch them with `python -m portrait_studio download` and the SadTalker files)")


class SadTalkerCheckpointError(ValueError):
    """The SadTalker safetensors file does not hold the expected networks (missing/unexpected keys, shapes)."""


class SadTalkerFiles(NamedTuple):
    """Where the driver's files are (or are expected) under a checkpoint directory."""

    weights: Path  # SadTalker_V0.0.2_256.safetensors (audio2exp., audio2pose., face_3drecon. keys)
    bfm: Path  # BFM_Fitting/BFM_model_front.mat
    lm3d: Path  # BFM_Fitting/similarity_Lm3D_all.mat (5-point alignment template)


def required_files(ckpt_dir: str | Path) -> SadTalkerFiles:
    """The driver's files under `ckpt_dir`: a clone of MyNiuuu/MOFA-Video-Hybrid (`<dir>/ckpts/sad_talker/...`)
    or a folder holding that clone's `ckpts/` content (`<dir>/sad_talker/...`). Each entry is the existing
    file in either layout, else the clone-layout path where it is expected."""
    root = Path(ckpt_dir)

    def find(rel: str) -> Path:
        for candidate in (root / "ckpts" / rel, root / rel):
            if candidate.is_file():
                return candidate
        return root / "ckpts" / rel

    return SadTalkerFiles(weights=find(WEIGHTS_FILE), bfm=find(BFM_FILE), lm3d=find(LM3D_FILE))


def load_networks(path: str | Path) -> dict[str, nn.Module]:
    """The three networks from the safetensors file, loaded strictly, float32, eval mode, on CPU.

    For each prefix every key *containing* it is kept with `prefix.` stripped (the reference's rule);
    networks are built on the meta device and take the file's tensors directly (no double allocation).
    Raises SadTalkerCheckpointError when a network's keys or shapes differ from the published layout.
    """
    path = Path(path)
    states: dict[str, dict[str, torch.Tensor]] = {name: {} for name in NETWORKS}
    with safe_open(str(path), framework="pt", device="cpu") as handle:
        for key in handle.keys():
            for name, state in states.items():
                if name in key:
                    tensor = handle.get_tensor(key)
                    state[key.replace(f"{name}.", "", 1)] = tensor.float() if tensor.is_floating_point() else tensor
    networks = {}
    for name, cls in NETWORKS.items():
        with torch.device("meta"):
            net = cls()
        problems = _layout_problems(net.state_dict(), states[name])
        if problems:
            raise SadTalkerCheckpointError(f"{path}: the '{name}.' weights do not match the network: {problems}")
        net.load_state_dict(states[name], strict=True, assign=True)
        networks[name] = net.eval().requires_grad_(False)
    return networks


def _layout_problems(expected: dict[str, torch.Tensor], found: dict[str, torch.Tensor], limit: int = 5) -> str:
    """'' when `found` has exactly the keys and shapes of `expected`, else a one-line summary."""
    missing = [k for k in expected if k not in found]
    unexpected = [k for k in found if k not in expected]
    shapes = [f"{k} {tuple(found[k].shape)} != {tuple(v.shape)}" for k, v in expected.items()
              if k in found and found[k].shape != v.shape]
    parts = [f"{label} ({len(keys)}): {', '.join(keys[:limit])}{', ...' if len(keys) > limit else ''}"
             for label, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shape", shapes)) if keys]
    return "; ".join(parts)


@dataclass(frozen=True)
class SadTalkerOptions:
    """How the SadTalker networks' output becomes a landmark track."""

    anchor: Anchor = "portrait"  # "portrait": detected landmarks + BFM motion; "bfm": the reference's projections
    blinks: bool = True  # feed the random blink sequence to ExpNet (False: eyes never driven closed)
    head_motion: float = 1.0  # scale of the predicted head-pose motion (0 = still head, 1 = as predicted, <= 3)

    def __post_init__(self) -> None:
        if self.anchor not in ("portrait", "bfm"):
            raise ValueError(f"anchor must be 'portrait' or 'bfm', got {self.anchor!r}")
        if not (np.isfinite(self.head_motion) and 0.0 <= self.head_motion <= 3.0):
            raise ValueError(f"head_motion must be within 0..3, got {self.head_motion}")


class SadTalkerDriver:
    """Speech -> 68-point landmark track of a portrait, with SadTalker's audio2exp/audio2pose networks.

    Holds the three networks (move them with `.to(device)`), the BFM landmark model and the alignment
    template. Thread-compatible, not thread-safe (one `drive` at a time per instance).
    """

    def __init__(self, audio2exp: Audio2Exp, audio2pose: Audio2Pose, face_recon: FaceReconNet, bfm: BFMKeypoints,
                 template: np.ndarray, options: SadTalkerOptions | None = None) -> None:
        self.audio2exp = audio2exp.eval()
        self.audio2pose = audio2pose.eval()
        self.face_recon = face_recon.eval()
        self.bfm = bfm
        self.template = np.asarray(template, np.float64)
        if self.template.shape != (5, 3):
            raise ValueError(f"alignment template must be [5, 3], got {self.template.shape}")
        self.options = options or SadTalkerOptions()

    @classmethod
    def from_checkpoint_dir(cls, ckpt_dir: str | Path, options: SadTalkerOptions | None = None) -> "SadTalkerDriver":
        """Load from a checkpoint directory (see `required_files`). Raises MissingSadTalkerFilesError naming
        every missing file, SadTalkerCheckpointError / bfm.BFMFormatError for malformed files."""
        files = required_files(ckpt_dir)
        missing = tuple(p for p in files if not p.is_file())
        if missing:
            raise MissingSadTalkerFilesError(missing)
        nets = load_networks(files.weights)
        logger.info("SadTalker driver loaded from %s", files.weights)
        return cls(nets["audio2exp"], nets["audio2pose"], nets["face_3drecon"], load_bfm(files.bfm),
                   load_lm3d_template(files.lm3d), options)

    def to(self, device: torch.device | str) -> "SadTalkerDriver":
        for net in (self.audio2exp, self.audio2pose, self.face_recon):
            net.to(device)
        return self

    @property
    def device(self) -> torch.device:
        return next(self.audio2exp.parameters()).device

    @torch.no_grad()
    def source_coefficients(self, image: np.ndarray, source: SourceFace) -> tuple[np.ndarray, Alignment]:
        """The portrait's BFM coefficients: (float64 [257], its Alignment). image: uint8 [H, W, 3] RGB."""
        window, alignment = align_for_recon(image, source.landmarks68, self.template)
        x = torch.from_numpy(window).permute(2, 0, 1)[None].to(self.device)  # [224, 224, 3] -> [1, 3, 224, 224]
        return self.face_recon(x)[0].double().cpu().numpy(), alignment

    @torch.no_grad()
    def drive(self, samples: np.ndarray, image: np.ndarray, source: SourceFace, fps: float = 25.0,
              pose_style: int = 0, seed: int = 42, sample_rate: int = SAMPLE_RATE,
              progress: ProgressFn | None = None) -> LandmarkTrack:
        """Landmarks of `source` speaking `samples`.

        samples: float32 [L] mono in [-1, 1] at `sample_rate` Hz (resampled to 16 kHz if different);
        image: uint8 [H, W, 3] RGB, the portrait `source` was analysed on; fps: output frame rate (1..240);
        pose_style: 0..45 (the PoseVAE's style classes); seed: non-negative, fixes blinks and pose latents.
        Returns a LandmarkTrack of `max(1, round(L / sample_rate * fps))` frames, points[0] == reference.
        """
        report = progress or (lambda stage, done, total: None)
        samples = self._check_inputs(samples, image, source, fps, pose_style, seed, sample_rate)
        if sample_rate != SAMPLE_RATE:
            samples = librosa.resample(samples, orig_sr=sample_rate, target_sr=SAMPLE_RATE).astype(np.float32)
        count = max(1, int(round(len(samples) / SAMPLE_RATE * fps)))
        report("driver", 0, _STAGES)

        # 1. the portrait's 3DMM coefficients and where its 224 crop sits.
        source_coeffs, alignment = self.source_coefficients(image, source)
        reference_bfm = alignment.to_image(project_landmarks(source_coeffs[None], self.bfm))[0]  # [68, 2]
        reference = source.landmarks68.astype(np.float64) if self.options.anchor == "portrait" else reference_bfm
        report("driver", 1, _STAGES)

        # 2. audio features, 25 fps; nothing to predict for less than one frame.
        mels = torch.from_numpy(audio_features(samples)).to(self.device)  # [N, 1, 80, 16]
        n = mels.shape[0]
        if n < 2:
            report("driver", _STAGES, _STAGES)
            return self._track(np.repeat(reference[None], max(n, 1), axis=0), count, fps, reference)
        report("driver", 2, _STAGES)

        # 3. expression per frame (blink ratio from the seeded reference sequence).
        blink = blink_sequence(n, random.Random(seed)) if self.options.blinks else np.zeros(n, np.float32)
        ref_exp = torch.from_numpy(source_coeffs[COEFF_SLICES["exp"]]).float().to(self.device)
        exp = self.audio2exp.predict(mels, ref_exp, torch.from_numpy(blink).to(self.device)).double().cpu().numpy()
        report("driver", 3, _STAGES)

        # 4. head pose per frame: angles (rad) + translation, frame 0 = the source pose, smoothed.
        ref_pose = np.concatenate([source_coeffs[COEFF_SLICES["angle"]], source_coeffs[COEFF_SLICES["trans"]]])
        generator = torch.Generator().manual_seed(seed)
        pose = self.audio2pose.predict(mels, torch.from_numpy(ref_pose).float().to(self.device), pose_style,
                                       generator).double().cpu().numpy()
        pose = smooth_pose(ref_pose + self.options.head_motion * (pose - ref_pose)).astype(np.float64)
        report("driver", 4, _STAGES)

        # 5. coefficients -> 68 landmarks in the portrait.
        coeffs = np.repeat(source_coeffs[None], n, axis=0)  # [N, 257]
        coeffs[:, COEFF_SLICES["exp"]] = exp
        coeffs[:, COEFF_SLICES["angle"]] = pose[:, :3]
        coeffs[:, COEFF_SLICES["trans"]] = pose[:, 3:]
        landmarks = alignment.to_image(project_landmarks(coeffs, self.bfm))  # [N, 68, 2]
        # Deliberate fix of the reference's one-frame lag: frame k shows audio frame k; frame 0 is the portrait.
        points = reference[None] + (landmarks - reference_bfm[None])
        points[0] = reference
        report("driver", 5, _STAGES)
        return self._track(points, count, fps, reference)

    @staticmethod
    def _track(points: np.ndarray, count: int, fps: float, reference: np.ndarray) -> LandmarkTrack:
        return LandmarkTrack(points=resample_track(points, FPS, fps, count).astype(np.float32),
                             reference=reference.astype(np.float32), fps=float(fps))

    @staticmethod
    def _check_inputs(samples: np.ndarray, image: np.ndarray, source: SourceFace, fps: float, pose_style: int,
                      seed: int, sample_rate: int) -> np.ndarray:
        samples = np.asarray(samples)
        if samples.ndim != 1 or not np.issubdtype(samples.dtype, np.floating):
            raise ValueError(f"samples must be a 1-D float array, got {samples.dtype} {samples.shape}")
        if not np.isfinite(samples).all():
            raise ValueError("samples contain NaN or infinite values")
        if not (isinstance(sample_rate, (int, np.integer)) and 4000 <= sample_rate <= 192000):
            raise ValueError(f"sample_rate must be an integer within 4000..192000, got {sample_rate!r}")
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"image must be uint8 [H, W, 3] RGB, got {image.dtype} {image.shape}")
        if tuple(image.shape[:2]) != tuple(source.image_size):
            raise ValueError(f"image is {image.shape[:2]} but the face was analysed on {source.image_size}")
        if not (np.isfinite(fps) and 1.0 <= fps <= 240.0):
            raise ValueError(f"fps must be within 1..240, got {fps}")
        if isinstance(pose_style, bool) or not isinstance(pose_style, (int, np.integer)) \
                or not 0 <= pose_style < NUM_STYLES:
            raise ValueError(f"pose_style must be an integer within 0..{NUM_STYLES - 1}, got {pose_style!r}")
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
        return samples.astype(np.float32)


def resample_track(points: np.ndarray, src_fps: float, dst_fps: float, count: int) -> np.ndarray:
    """Linear resampling in time: output frame j is the track at time j / dst_fps (held after its end).

    points: float [N, 68, 2] at src_fps (N >= 1). Returns float64 [count, 68, 2]; frame 0 == points[0].
    """
    position = np.minimum(np.arange(count) * (src_fps / dst_fps), points.shape[0] - 1)
    lo = np.floor(position).astype(np.int64)
    hi = np.minimum(lo + 1, points.shape[0] - 1)
    frac = (position - lo)[:, None, None]
    return (1.0 - frac) * points[lo] + frac * points[hi]
