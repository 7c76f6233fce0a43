"""Phones -> visemes -> mouth blendshapes: targets, coarticulation without lag, sealed bilabials."""

from __future__ import annotations

import json

import numpy as np
import pytest

from landmark_drivers.blendshapes import blendshape_index
from landmark_drivers.audio.phonemes import PhoneSegment
from landmark_drivers.audio.visemes import (
    MOUTH_CHANNELS,
    PHONE_TO_VISEMES,
    bilabial_frames,
    lip_aperture,
    phones_to_visemes,
    viseme_mouth,
    viseme_target,
)

JAW = blendshape_index("jawOpen")
PUCKER = blendshape_index("mouthPucker")
STRETCH = blendshape_index("mouthStretchLeft")
ARPABET = ("AA AE AH AO AW AY B CH D DH EH ER EY F G HH IH IY JH K L M N NG OW OY P R S SH T TH UH UW V W Y Z "
           "ZH").split()


@pytest.fixture(scope="module")
def reference_phones(fixtures):
    data = json.loads((fixtures / "speech_librivox_0870.phone.json").read_text())
    return [PhoneSegment(p["t"], p["b"], p["b"] + p["d"]) for w in data["w"] for p in w["w"]]


def _seq(*spec: tuple[str, float]) -> list[PhoneSegment]:
    """Consecutive phones from (name, duration) pairs starting at 0."""
    out, t = [], 0.0
    for name, dur in spec:
        out.append(PhoneSegment(name, t, t + dur))
        t += dur
    return out


def test_every_english_phone_has_a_viseme_and_targets_are_weights():
    assert set(ARPABET) <= set(PHONE_TO_VISEMES)
    for visemes in PHONE_TO_VISEMES.values():
        for v in visemes:
            target = viseme_target(v)
            assert target.shape == (52,) and 0 <= target.min() and target.max() <= 1
    assert viseme_target("aa")[JAW] > viseme_target("E")[JAW] > viseme_target("I")[JAW] > viseme_target("PP")[JAW]
    assert viseme_target("U")[PUCKER] > 0.5 > viseme_target("I")[PUCKER]
    assert viseme_target("I")[STRETCH] > viseme_target("U")[STRETCH]
    assert [v for v, _, _ in phones_to_visemes(_seq(("AY", 0.2)))] == ["aa", "I"]
    assert [v for v, _, _ in phones_to_visemes(_seq(("+NSN+", 0.2), ("XX", 0.1)))] == ["sil", "sil"]


@pytest.mark.parametrize("fps", [24, 25, 30])
def test_bilabials_seal_the_lips(reference_phones, fps):
    num_frames = round(7.1 * fps)
    mouth = viseme_mouth(reference_phones, num_frames, fps)
    closed = bilabial_frames(reference_phones, num_frames, fps)
    n_bilabials = sum(p.phone in ("P", "B", "M") for p in reference_phones)
    assert closed.sum() >= n_bilabials  # every P/B/M shows in at least one frame
    aperture = lip_aperture(mouth)
    assert aperture[closed].max() < 0.01
    assert mouth[closed, JAW].max() <= 0.04 + 1e-6
    assert mouth[closed, blendshape_index("mouthClose")].min() == 1.0  # sealed even on a parted-lips portrait
    assert aperture[~closed].mean() > 0.1  # ... while the rest of the speech is open


def test_a_bilabial_shorter_than_a_frame_still_closes_one_frame():
    phones = _seq(("SIL", 0.3), ("AA", 0.2), ("M", 0.025), ("AA", 0.2), ("SIL", 0.3))
    mouth = viseme_mouth(phones, 26, 25)
    closed = bilabial_frames(phones, 26, 25)
    assert closed.sum() == 1
    assert lip_aperture(mouth)[closed][0] < 0.01
    assert lip_aperture(mouth)[np.flatnonzero(closed)[0] + 3] > 0.3  # open again on the next vowel


def test_silence_is_a_neutral_mouth():
    mouth = viseme_mouth(_seq(("SIL", 2.0)), 50, 25)
    assert np.abs(mouth).max() == 0
    assert np.abs(viseme_mouth([], 50, 25)).max() == 0
    assert viseme_mouth(_seq(("AA", 0.5)), 0, 25).shape == (0, 52)
    # long pauses between words relax fully
    mouth = viseme_mouth(_seq(("AA", 0.3), ("SIL", 1.0), ("AA", 0.3)), 40, 25)
    assert mouth[14:20, JAW].max() < 0.01


def test_coarticulation_is_not_late():
    """A vowel in silence: the opening is centred on the vowel (anticipation >= carry-over), no lag."""
    fps = 25
    mouth = viseme_mouth(_seq(("SIL", 1.0), ("AA", 0.2), ("SIL", 1.0)), 55, fps)
    jaw = mouth[:, JAW].astype(np.float64)
    centre = (np.arange(55) + 0.5) / fps
    centroid = (jaw * centre).sum() / jaw.sum()
    assert 1.1 - 1.0 / fps <= centroid <= 1.1 + 0.1 / fps
    assert jaw[25:30].max() > 0.5 and jaw[25:30].min() > 0.35  # open throughout the vowel


def test_lip_rounding_anticipates_the_next_vowel():
    """Alveolars leave the lips free: the S of 'soo' is rounded, the S of 'see' is spread."""
    soo = viseme_mouth(_seq(("SIL", 0.5), ("S", 0.12), ("UW", 0.3), ("SIL", 0.5)), 36, 25)
    see = viseme_mouth(_seq(("SIL", 0.5), ("S", 0.12), ("IY", 0.3), ("SIL", 0.5)), 36, 25)
    s_frame = 13  # centre 0.54 s, inside the S
    assert soo[s_frame, PUCKER] > see[s_frame, PUCKER] + 0.1
    assert see[s_frame, STRETCH] > soo[s_frame, STRETCH]
    assert set(np.flatnonzero(soo.any(0))) <= {blendshape_index(n) for n in MOUTH_CHANNELS}


def test_long_inputs_are_evaluated_in_chunks_without_seams():
    phones = _seq(*[("AA", 0.151), ("M", 0.083), ("IY", 0.127), ("S", 0.119)] * 60)  # 28.8 s, no boundary on a
    num_frames = int(28.8 * 25)  # frame centre
    mouth = viseme_mouth(phones, num_frames, 25)
    jaw = mouth[:, JAW]
    assert np.isfinite(mouth).all()
    period = 12 * 5  # the pattern repeats every 0.48 s = 12 frames; chunks are 256 frames
    assert np.allclose(jaw[50:600], jaw[50 + period: 600 + period], atol=1e-4)
    assert jaw.max() > 0.3
