"""Phones -> visemes -> ARKit mouth blendshapes, with coarticulation.

Each ARPAbet phone maps to one of 15 visemes (diphthongs to two, split 60/40 in time); each viseme has
target weights for the mouth blendshapes. Coarticulation follows Cohen & Massaro's dominance model: a
segment's dominance is its strength inside its span and decays exponentially outside it, faster after
(carry-over) than before (anticipation), and the mouth at time t is the dominance-weighted mean of all
targets. The model is non-causal and looks ahead, so it adds no lag. Strengths come in two groups: the
jaw, and the lips; alveolars and velars hold the jaw but leave the lips free to take the neighbouring
vowels' rounding or spreading.

Bilabials (P, B, M) must seal the lips: every frame whose centre lies inside a bilabial (or, for one
falling between two frame centres, the frame holding its midpoint) is forced shut (`LIP_SEAL`),
whatever the blend gave.

The lip aperture that a rig derives from these weights is approximated by `lip_aperture`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np

from ..blendshapes import NUM_BLENDSHAPES, blendshape_index
from .phonemes import PhoneSegment

Viseme = Literal["sil", "PP", "FF", "TH", "DD", "kk", "CH", "SS", "nn", "RR", "aa", "E", "I", "O", "U"]

PHONE_TO_VISEMES: dict[str, tuple[Viseme, ...]] = {
    "SIL": ("sil",),
    "P": ("PP",), "B": ("PP",), "M": ("PP",),
    "F": ("FF",), "V": ("FF",),
    "TH": ("TH",), "DH": ("TH",),
    "T": ("DD",), "D": ("DD",),
    "K": ("kk",), "G": ("kk",), "NG": ("kk",), "HH": ("kk",),
    "CH": ("CH",), "JH": ("CH",), "SH": ("CH",), "ZH": ("CH",),
    "S": ("SS",), "Z": ("SS",),
    "N": ("nn",), "L": ("nn",),
    "R": ("RR",), "ER": ("RR",),
    "AA": ("aa",), "AE": ("aa",), "AH": ("aa",),
    "EH": ("E",),
    "IH": ("I",), "IY": ("I",), "Y": ("I",),
    "AO": ("O",),
    "UH": ("U",), "UW": ("U",), "W": ("U",),
    "AY": ("aa", "I"), "AW": ("aa", "U"), "EY": ("E", "I"), "OW": ("O", "U"), "OY": ("O", "I"),
}
BILABIAL_PHONES = frozenset({"P", "B", "M"})

# Targets: blendshape weights in [0, 1]; mirrored channels are written once (L/R are set together).
VISEME_TARGETS: dict[Viseme, dict[str, float]] = {
    "sil": {},
    "PP": {"jawOpen": 0.03, "mouthClose": 0.03, "mouthPress": 0.35, "mouthRollLower": 0.12, "mouthRollUpper": 0.08},
    "FF": {"jawOpen": 0.08, "mouthClose": 0.02, "mouthRollLower": 0.45, "mouthUpperUp": 0.2, "mouthFunnel": 0.05},
    "TH": {"jawOpen": 0.12, "mouthLowerDown": 0.12, "mouthUpperUp": 0.05},
    "DD": {"jawOpen": 0.14, "mouthLowerDown": 0.1, "mouthStretch": 0.1},
    "kk": {"jawOpen": 0.2, "mouthLowerDown": 0.1, "mouthStretch": 0.1},
    "CH": {"jawOpen": 0.12, "mouthFunnel": 0.45, "mouthPucker": 0.25, "mouthUpperUp": 0.25, "mouthLowerDown": 0.2},
    "SS": {"jawOpen": 0.06, "mouthStretch": 0.25, "mouthSmile": 0.15, "mouthUpperUp": 0.12, "mouthLowerDown": 0.12},
    "nn": {"jawOpen": 0.14, "mouthLowerDown": 0.06},
    "RR": {"jawOpen": 0.15, "mouthFunnel": 0.3, "mouthPucker": 0.3},
    "aa": {"jawOpen": 0.65, "mouthLowerDown": 0.3, "mouthUpperUp": 0.1, "mouthStretch": 0.1},
    "E": {"jawOpen": 0.42, "mouthStretch": 0.3, "mouthSmile": 0.15, "mouthLowerDown": 0.25, "mouthUpperUp": 0.1},
    "I": {"jawOpen": 0.22, "mouthStretch": 0.35, "mouthSmile": 0.3, "mouthLowerDown": 0.15, "mouthUpperUp": 0.15},
    "O": {"jawOpen": 0.45, "mouthFunnel": 0.5, "mouthPucker": 0.25, "mouthLowerDown": 0.15},
    "U": {"jawOpen": 0.18, "mouthPucker": 0.7, "mouthFunnel": 0.35},
}
# Dominance strength (jaw, lips): how hard a segment holds its target against its neighbours.
VISEME_STRENGTH: dict[Viseme, tuple[float, float]] = {
    "sil": (0.6, 0.6), "PP": (4.0, 6.0), "FF": (2.0, 4.0), "TH": (1.5, 0.5), "DD": (1.5, 0.3), "kk": (1.0, 0.3),
    "CH": (1.5, 3.0), "SS": (2.0, 1.5), "nn": (1.0, 0.3), "RR": (1.0, 2.0), "aa": (1.0, 1.0), "E": (1.0, 1.0),
    "I": (1.0, 1.2), "O": (1.0, 1.5), "U": (1.0, 2.0),
}
ANTICIPATION_S = 0.07  # dominance decays by 1/e this long before a segment starts
CARRY_OVER_S = 0.045  # ... and this long after it ends
SUBSAMPLES = 4  # evaluation points per video frame (averaged: a zero-phase box over the frame)
_CHUNK = 256  # video frames evaluated at once

MOUTH_CHANNELS: tuple[str, ...] = (
    "jawOpen", "mouthClose", "mouthFunnel", "mouthPucker", "mouthSmileLeft", "mouthSmileRight",
    "mouthStretchLeft", "mouthStretchRight", "mouthLowerDownLeft", "mouthLowerDownRight", "mouthUpperUpLeft",
    "mouthUpperUpRight", "mouthPressLeft", "mouthPressRight", "mouthRollLower", "mouthRollUpper")
_PAIRED = ("mouthSmile", "mouthStretch", "mouthLowerDown", "mouthUpperUp", "mouthPress")
# What a bilabial frame is forced to (jawOpen is an upper bound). mouthClose = 1 closes the lips by the
# jaw's separation plus the portrait's own lip gap, so they meet even on a portrait photographed with
# parted lips; on a closed one the face rig clamps the overshoot (lips never cross).
LIP_SEAL: dict[str, float] = {
    "jawOpen": 0.04, "mouthClose": 1.0, "mouthPressLeft": 0.3, "mouthPressRight": 0.3, "mouthRollLower": 0.1,
    "mouthLowerDownLeft": 0.0, "mouthLowerDownRight": 0.0, "mouthUpperUpLeft": 0.0, "mouthUpperUpRight": 0.0,
    "mouthFunnel": 0.0}


def viseme_target(viseme: Viseme) -> np.ndarray:
    """The full [52] float32 weight vector of one viseme's target (paired channels set on both sides)."""
    out = np.zeros(NUM_BLENDSHAPES, np.float32)
    for name, weight in VISEME_TARGETS[viseme].items():
        names = (name + "Left", name + "Right") if name in _PAIRED else (name,)
        for n in names:
            out[blendshape_index(n)] = weight
    return out


def phones_to_visemes(phones: Sequence[PhoneSegment]) -> list[tuple[Viseme, float, float]]:
    """Expand phones into (viseme, start_s, end_s); unknown phones and fillers become "sil"."""
    out: list[tuple[Viseme, float, float]] = []
    for phone, start, end in phones:
        visemes = PHONE_TO_VISEMES.get(phone, ("sil",))
        if len(visemes) == 1:
            out.append((visemes[0], start, end))
        else:
            mid = start + 0.6 * (end - start)
            out.extend([(visemes[0], start, mid), (visemes[1], mid, end)])
    return out


def viseme_mouth(phones: Sequence[PhoneSegment], num_frames: int, fps: float) -> np.ndarray:
    """Coarticulated mouth blendshapes from timed phones. Returns float32 [T, 52] in [0, 1].

    Only the mouth channels (`MOUTH_CHANNELS`) are non-zero. Time outside every phone is silence. The
    jaw here is the articulatory target alone; the audio driver scales it by loudness.
    """
    out = np.zeros((num_frames, NUM_BLENDSHAPES), np.float32)
    segments = phones_to_visemes(phones)
    if num_frames == 0 or not segments:
        return out
    segments = _cover_with_silence(segments, -1.0, num_frames / fps + 1.0)
    starts = np.array([s for _, s, _ in segments])  # [S]
    ends = np.array([e for _, _, e in segments])  # [S]
    ends_sorted = np.maximum.accumulate(ends)  # [S] monotone, for searching
    targets = np.stack([viseme_target(v) for v, _, _ in segments])  # [S, 52]
    strength = np.array([VISEME_STRENGTH[v] for v, _, _ in segments])  # [S, 2] (jaw, lips)
    jaw_index = blendshape_index("jawOpen")
    reach = 20 * max(ANTICIPATION_S, CARRY_OVER_S)  # beyond this a segment's dominance is < 1e-8 of its own
    for f0 in range(0, num_frames, _CHUNK):  # chunks keep memory flat for long audio
        f1 = min(num_frames, f0 + _CHUNK)
        t = ((np.arange(f0, f1)[:, None] + (np.arange(SUBSAMPLES) + 0.5) / SUBSAMPLES) / fps).ravel()  # [n*K]
        lo = max(0, int(np.searchsorted(ends_sorted, t[0] - reach)))
        hi = min(len(segments), int(np.searchsorted(starts, t[-1] + reach, side="right")))
        before = np.clip(starts[None, lo:hi] - t[:, None], 0, None)  # [n*K, s] seconds until a segment starts
        after = np.clip(t[:, None] - ends[None, lo:hi], 0, None)  # [n*K, s] seconds since it ended
        decay = np.exp(-before / ANTICIPATION_S - after / CARRY_OVER_S)  # [n*K, s]
        jaw_w = decay * strength[None, lo:hi, 0]
        lip_w = decay * strength[None, lo:hi, 1]
        blend = (lip_w @ targets[lo:hi]) / lip_w.sum(1, keepdims=True)  # [n*K, 52]
        blend[:, jaw_index] = (jaw_w @ targets[lo:hi, jaw_index]) / jaw_w.sum(1)
        out[f0:f1] = blend.reshape(f1 - f0, SUBSAMPLES, NUM_BLENDSHAPES).mean(1)  # [n*K, 52] -> [n, K, 52] -> [n, 52]
    seal_lips(out, bilabial_frames(phones, num_frames, fps))
    return np.clip(out, 0, 1)


def _cover_with_silence(segments: list[tuple[Viseme, float, float]], start: float,
                        end: float) -> list[tuple[Viseme, float, float]]:
    """Sort segments and fill every gap (and the edges out to [start, end]) with "sil"."""
    out: list[tuple[Viseme, float, float]] = []
    cursor = start
    for viseme, s, e in sorted(segments, key=lambda seg: seg[1]):
        if s > cursor:
            out.append(("sil", cursor, s))
        if e > s:
            out.append((viseme, s, e))
            cursor = max(cursor, e)
    out.append(("sil", cursor, max(end, cursor + 1.0)))
    return out


def bilabial_frames(phones: Sequence[PhoneSegment], num_frames: int, fps: float) -> np.ndarray:
    """Boolean [T]: frames showing a bilabial closure (centre inside a P/B/M, or its best-overlapping frame)."""
    mask = np.zeros(num_frames, bool)
    for phone, start, end in phones:
        if phone not in BILABIAL_PHONES or end <= start:
            continue
        first = int(np.ceil(start * fps - 0.5))  # first frame whose centre (t + 0.5) / fps >= start
        last = int(np.ceil(end * fps - 0.5)) - 1  # last frame whose centre < end
        if first <= last:
            mask[max(first, 0): min(last + 1, num_frames)] = True
        else:  # shorter than a frame and between two centres: the frame holding most of it
            frame = int(np.floor((start + end) / 2 * fps))
            if 0 <= frame < num_frames:
                mask[frame] = True
    return mask


def seal_lips(blendshapes: np.ndarray, mask: np.ndarray, strength: np.ndarray | float = 1.0) -> None:
    """In place: move frames under `mask` [T] towards `LIP_SEAL` by `strength` ([T] or scalar in [0, 1]).

    blendshapes: float32 [T, 52]. jawOpen is only lowered (to at most 0.04), never raised.
    """
    weight = np.broadcast_to(np.asarray(strength, np.float32), mask.shape) * mask  # [T]
    if not weight.any():
        return
    for name, value in LIP_SEAL.items():
        i = blendshape_index(name)
        target = np.minimum(blendshapes[:, i], value) if name == "jawOpen" else value
        blendshapes[:, i] += weight * (target - blendshapes[:, i])


def lip_aperture(blendshapes: np.ndarray) -> np.ndarray:
    """A rig-independent proxy of the vertical lip gap per frame, float32 [T] (0 = lips together).

    jawOpen opens the lips, mouthClose closes them against an open jaw (ARKit: jawOpen = mouthClose
    means lips together), lower-lip-down / upper-lip-up add a little, and press/roll pull them together.
    """
    b = np.asarray(blendshapes, np.float32)
    ch = {name: b[:, blendshape_index(name)] for name in MOUTH_CHANNELS}
    gap = (ch["jawOpen"] - ch["mouthClose"]
           + 0.25 * (ch["mouthLowerDownLeft"] + ch["mouthLowerDownRight"]) / 2
           + 0.25 * (ch["mouthUpperUpLeft"] + ch["mouthUpperUpRight"]) / 2
           - 0.1 * (ch["mouthPressLeft"] + ch["mouthPressRight"]) / 2 - 0.1 * ch["mouthRollLower"])
    return np.clip(gap, 0, None)
