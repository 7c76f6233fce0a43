"""The embedded audio driver: speech samples -> `FaceMotion` at the video frame rate, no weights needed.

Two mouth paths, blended per `AudioDriverOptions.language`:

- phones (English): pocketsphinx phones -> visemes with coarticulation (`visemes.py`), the jaw scaled by
  the loudness envelope, bilabials sealed. A transcript gives forced alignment (exact timings);
  without one, phone recognition (boundaries good, identities often wrong).
- acoustic (any language): loudness -> jaw, formants -> rounding/spreading (`acoustic.py`).

`"english"` uses the phones alone (and the sealed bilabials). `"acoustic"` uses acoustics alone.
`"auto"` uses the transcript's alignment like `"english"` when a transcript is given. Without one it
cannot tell English from other languages: the bundled en-us models offer no reliable language
identification (on telephone prompts of one speaker in English and Spanish, and of others in French
and Italian, neither the phone-LM score nor the acoustic score of the phone loop separated the
languages). So "auto" is built to be safe in any language: the acoustic path carries at least half of
the jaw and lips, recognised phones at most the other half, weighted down when their vowel/consonant
timing disagrees with the loudness (noise, music, mumbling), and bilabial closures are applied only
where the loudness dips too. Whatever the language, the opening follows the loudness envelope (every
smoothing is zero-phase) `MOUTH_LEAD_S` (20 ms) ahead of the sound, as a speaker's lips lead their sound.

The face around the mouth comes from `nonverbal.py`: blinks (always natural), prosodic brow raises
(`expressiveness`), head sway and nods (`head_motion`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

import numpy as np

from ..blendshapes import blendshape_index
from ..motion import FaceMotion
from .acoustic import AcousticFeatures, acoustic_mouth, analyze_audio, loudness_at_frames
from .nonverbal import nonverbal_motion
from .phonemes import PhoneAlignmentError, PhoneSegment, align_phones, check_samples, recognize_phones
from .visemes import MOUTH_CHANNELS, bilabial_frames, seal_lips, viseme_mouth
from ..progress import ProgressFn

logger = logging.getLogger(__name__)

LanguageMode = Literal["auto", "english", "acoustic"]

# Motion shows the sound this many seconds ahead: lips and jaw lead the acoustics they shape. Without it the
# mouth at frame t followed the sound heard during that frame, [t / fps, (t + 1) / fps): `evaluate` found the
# peak of mouth opening against loudness at +3..+9 ms (lag 0), and a loudness window centred one frame later
# than that (an independent landmarker's measure) put it a frame late (+27..+35 ms). 20 ms moves it to
# -8..-16 ms here (lag 0, slightly early) and to +5..+11 ms (lag 0) there, at about the same correlation.
MOUTH_LEAD_S = 0.02
AUTO_PHONE_WEIGHT = 0.5  # share of the mouth given to recognised phones in "auto" when they look plausible
_OPENING = tuple(blendshape_index(n) for n in (
    "jawOpen", "mouthClose", "mouthLowerDownLeft", "mouthLowerDownRight", "mouthUpperUpLeft", "mouthUpperUpRight"))
_MOUTH = tuple(blendshape_index(n) for n in MOUTH_CHANNELS)
_STAGES = 4
_SPEECH_PHONES = frozenset({
    "AA", "AE", "AH", "AO", "AW", "AY", "B", "CH", "D", "DH", "EH", "ER", "EY", "F", "G", "HH", "IH", "IY", "JH", "K",
    "L", "M", "N", "NG", "OW", "OY", "P", "R", "S", "SH", "T", "TH", "UH", "UW", "V", "W", "Y", "Z", "ZH"})


@dataclass(frozen=True)
class AudioDriverOptions:
    """How speech becomes face motion."""

    fps: float = 25.0  # output frames per second; the motion has round(duration * fps) frames
    seed: int = 0  # non-negative; same seed + same audio = same motion (blinks, head sway)
    head_motion: float = 1.0  # scale of head rotation/translation (0 = still head, 1 = natural, <= 5)
    expressiveness: float = 1.0  # scale of brow raises/eye widening with the prosody (0 = still brows, <= 5);
    #                              blinks stay natural and the lips keep moving whatever this is
    articulation: float = 1.0  # scale of jaw/lip motion (0 = closed still mouth, 1 = natural, <= 2)
    language: LanguageMode = "auto"  # phone path for English, acoustic path for any language, or a safe blend
    transcript: str | None = None  # English text of the speech: forced alignment (ignored with "acoustic")
    blinks: bool = True  # add natural blinks (~17 a minute)

    def __post_init__(self) -> None:
        check_motion_options(self)
        if self.language not in ("auto", "english", "acoustic"):
            raise ValueError(f"language must be 'auto', 'english' or 'acoustic', got {self.language!r}")
        if self.transcript is not None and not isinstance(self.transcript, str):
            raise ValueError(f"transcript must be a string or None, got {type(self.transcript).__name__}")


def check_motion_options(options) -> None:
    """The checks the offline and the live audio driver's options share: `fps` within 1..240, `seed` a
    non-negative integer, `head_motion` and `expressiveness` within 0..5, `articulation` within 0..2."""
    if not (np.isfinite(options.fps) and 1.0 <= options.fps <= 240.0):
        raise ValueError(f"fps must be within 1..240, got {options.fps}")
    if not isinstance(options.seed, (int, np.integer)) or isinstance(options.seed, bool) or options.seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {options.seed!r}")
    for name, top in (("head_motion", 5.0), ("expressiveness", 5.0), ("articulation", 2.0)):
        value = getattr(options, name)
        if not (np.isfinite(value) and 0.0 <= value <= top):
            raise ValueError(f"{name} must be within 0..{top}, got {value}")


def num_output_frames(num_samples: int, sample_rate: int, fps: float) -> int:
    """Frames of motion for `num_samples` of audio: round(duration * fps), at least 1 for any audio.

    The same count as the app's video (`portrait_studio.media.num_video_frames`); no samples, no frames.
    """
    return max(1, int(round(num_samples / sample_rate * fps))) if num_samples > 0 else 0


def drive_from_audio(samples: np.ndarray, sample_rate: int, options: AudioDriverOptions | None = None,
                     progress: ProgressFn | None = None) -> FaceMotion:
    """Face motion that speaks `samples`.

    samples: float32 [N] mono in [-1, 1] (all zeros is valid: a still, closed mouth); sample_rate: Hz,
    8000-48000 typical (4000-192000 accepted; resampled internally). Returns a FaceMotion with
    round(N / sample_rate * options.fps) frames (at least 1 when N > 0; 0 for empty audio). Raises
    ValueError for malformed samples or options.
    """
    options = options or AudioDriverOptions()
    samples = check_samples(samples, sample_rate)
    fps = float(options.fps)
    num_frames = num_output_frames(samples.size, sample_rate, fps)
    report = progress or (lambda stage, done, total: None)
    report("driver", 0, _STAGES)
    if num_frames == 0:
        report("driver", _STAGES, _STAGES)
        return FaceMotion.still(0, fps)

    # 1. acoustic analysis (loudness, voicing, f0, formants) of the sound MOUTH_LEAD_S ahead: frame t shows
    #    the sound of [t / fps + lead, (t + 1) / fps + lead), so the mouth opens slightly before the sound.
    samples = lead_audio(samples, sample_rate, MOUTH_LEAD_S)
    features = analyze_audio(samples, sample_rate)
    report("driver", 1, _STAGES)

    # 2. phones, and how much to trust them.
    phones, phone_weight, trusted_closures = _phones(samples, sample_rate, options, features, num_frames)
    report("driver", 2, _STAGES)

    # 3. mouth: acoustic and phone paths blended, bilabials sealed, scaled by articulation.
    mouth = _mouth(features, phones, phone_weight, trusted_closures, num_frames, fps, options.articulation)
    report("driver", 3, _STAGES)

    # 4. blinks, brows, head.
    shapes, rotation, translation = nonverbal_motion(features, num_frames, fps, int(options.seed),
                                                     options.head_motion, options.expressiveness, options.blinks)
    report("driver", 4, _STAGES)
    return FaceMotion(blendshapes=np.clip(mouth + shapes, 0, 1).astype(np.float32),
                      rotation=rotation.astype(np.float32), translation=translation.astype(np.float32), fps=fps)


def lead_audio(samples: np.ndarray, sample_rate: int, lead_s: float) -> np.ndarray:
    """`samples` advanced by `lead_s` seconds (the first `lead_s` dropped, silence appended): same length.

    Frame t of motion driven by the result shows the sound of [t / fps + lead_s, (t + 1) / fps + lead_s).
    """
    shift = int(round(lead_s * sample_rate))
    if shift <= 0 or samples.size == 0:
        return samples
    return np.concatenate([samples[shift:], np.zeros(min(shift, samples.size), samples.dtype)])


def _phones(samples: np.ndarray, sample_rate: int, options: AudioDriverOptions, features: AcousticFeatures,
            num_frames: int) -> tuple[list[PhoneSegment], float, bool]:
    """(phones, weight of the phone path in [0, 1], whether phone bilabials may close the lips unchecked)."""
    if options.language == "acoustic":
        if options.transcript:
            logger.warning("language='acoustic': the transcript is not used")
        return [], 0.0, False
    if options.transcript and options.transcript.strip():
        try:
            phones = align_phones(samples, sample_rate, options.transcript)
            logger.info("aligned %d phones to the transcript", len(phones))
            return phones, 1.0, True
        except PhoneAlignmentError as exc:
            logger.warning("%s; falling back to phone recognition", exc)
    phones = recognize_phones(samples, sample_rate)
    if options.language == "english":
        return phones, (1.0 if phones else 0.0), True
    agreement = phone_plausibility(phones, features, num_frames, options.fps)
    weight = AUTO_PHONE_WEIGHT * float(np.clip((agreement - 0.2) / 0.3, 0.0, 1.0))
    logger.info("auto: phone/loudness agreement %.2f -> phone weight %.2f", agreement, weight)
    return phones, weight, False


def phone_plausibility(phones: list[PhoneSegment], features: AcousticFeatures, num_frames: int,
                       fps: float) -> float:
    """Correlation in [-1, 1] between the phones' articulatory opening and the loudness, per frame.

    Speech recognised in step with the audio (any language) scores ~0.5-0.8; phones hallucinated on
    noise or music score low. Fewer than two speech phones, or a constant track, give 0.
    """
    if sum(p.phone in _SPEECH_PHONES for p in phones) < 2 or num_frames < 3:
        return 0.0
    opening = viseme_mouth(phones, num_frames, fps)[:, blendshape_index("jawOpen")]
    loud = loudness_at_frames(features, num_frames, fps)
    if opening.std() < 1e-6 or loud.std() < 1e-6:
        return 0.0
    return float(np.corrcoef(opening, loud)[0, 1])


def _mouth(features: AcousticFeatures, phones: list[PhoneSegment], phone_weight: float, trusted_closures: bool,
           num_frames: int, fps: float, articulation: float) -> np.ndarray:
    """Mouth blendshapes float32 [T, 52] (only MOUTH_CHANNELS non-zero)."""
    mouth = acoustic_mouth(features, num_frames, fps) * (1.0 - phone_weight)
    loud = loudness_at_frames(features, num_frames, fps)  # [T] in [0, 1]
    if phone_weight > 0:
        visemes = viseme_mouth(phones, num_frames, fps)
        presence = np.clip(loud * 3.0, 0, 1)[:, None]  # neutral lips in silence
        visemes *= presence
        visemes[:, _OPENING] *= (loud ** 0.6 / np.maximum(presence[:, 0], 1e-6))[:, None]  # opening follows loudness
        mouth += phone_weight * visemes
    mouth[:, _MOUTH] *= articulation
    closures = bilabial_frames(phones, num_frames, fps) if phone_weight > 0 else np.zeros(num_frames, bool)
    if closures.any() and not trusted_closures:
        closures &= _loudness_dips(loud, max(1, round(0.12 * fps)))
    seal_lips(mouth, closures, min(1.0, articulation))
    return np.clip(mouth, 0, 1)


def _loudness_dips(loud: np.ndarray, radius: int) -> np.ndarray:
    """Boolean [T]: frames clearly quieter than the loudest within +/- `radius` frames (or quiet anyway)."""
    padded = np.pad(loud, radius, mode="edge")
    windows = np.lib.stride_tricks.sliding_window_view(padded, 2 * radius + 1)  # [T, 2r+1]
    return (loud <= 0.75 * windows.max(1)) | (loud < 0.25)
