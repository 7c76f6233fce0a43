"""Control accuracy: how closely the video's face follows the motion that was asked for.

Per frame, the mean distance between each asked landmark and the one found in the video, over the
asked frame's inter-ocular distance (normalised mean error, NME), averaged over the frames both have;
reported for the whole face (68 points), the mouth (48-67) and the eyes (36-47).
"""

from __future__ import annotations

import numpy as np

from .lipsync import interocular

PARTS = {"nme": slice(0, 68), "nme_mouth": slice(48, 68), "nme_eyes": slice(36, 48)}


def control_error(achieved: np.ndarray, asked: np.ndarray) -> dict:
    """NME figures between achieved float [T, 68, 2] (NaN where no face) and asked float [T', 68, 2].

    Frames beyond the shorter of the two are not compared (`frames` says how many were).
    """
    n = min(len(achieved), len(asked))
    got, want = np.asarray(achieved[:n], np.float64), np.asarray(asked[:n], np.float64)
    ok = np.isfinite(got).all(axis=(1, 2))
    out: dict = {"frames": int(ok.sum()), "asked_frames": int(len(asked)), "video_frames": int(len(achieved))}
    if not ok.any():
        return out | {name: None for name in PARTS}
    dist = np.linalg.norm(got[ok] - want[ok], axis=-1) / interocular(want[ok])[:, None]  # [n, 68]
    return out | {name: round(float(dist[:, part].mean()), 5) for name, part in PARTS.items()}
