"""Language-independent speech features and the mouth they imply: loudness -> jaw, formants -> lip shape.

Everything is computed on the audio resampled to 8 kHz (the lowest rate the app accepts, so 8 kHz
telephone speech and 48 kHz studio speech give comparable features) at 100 analysis frames per second,
then averaged over each video frame's interval. All smoothing is zero-phase (centred windows), so the
mouth is never late: its opening peaks at lag 0 against the loudness envelope.

- loudness: band level (100-3800 Hz) between the clip's own gate (0: pause/silence) and its loud
  speech (1); all-zero or near-silent audio (< -70 dBFS) is silence throughout, and so is a steady
  sound (hum, hiss: less than 12 dB between its quiet and loud frames).
- voicing and f0: normalised autocorrelation over a 40 ms window (70-400 Hz).
- F1, F2: roots of a 10th-order LPC fit on voiced frames. F1 adds to the jaw opening; F2 relative to
  the clip's median sets rounding (low F2: /o u/) versus spreading (high F2: /i e/).
"""

from __future__ import annotations

from dataclasses import dataclass
from math import gcd

import numpy as np
from scipy.ndimage import gaussian_filter1d, median_filter
from scipy.signal import resample_poly

from ..blendshapes import NUM_BLENDSHAPES, blendshape_index

ANALYSIS_SR = 8000  # Hz; every input is resampled to this before analysis
ANALYSIS_RATE = 100  # analysis frames per second (10 ms hop)
_HOP = ANALYSIS_SR // ANALYSIS_RATE  # 80 samples
_WIN = 200  # 25 ms level/LPC window
_PITCH_WIN = 320  # 40 ms autocorrelation window
_NFFT = 256
SILENCE_DBFS = -70.0  # a clip whose loud speech is below this is treated as silence
LPC_ORDER = 10
_BLOCK = 2000  # analysis frames processed at once (20 s)


@dataclass(frozen=True)
class AcousticFeatures:
    """Per analysis frame (frame k centred at k / rate seconds) speech features of one clip."""

    rate: float  # analysis frames per second (ANALYSIS_RATE)
    duration: float  # seconds of audio analysed
    level_db: np.ndarray  # float32 [F], 100-3800 Hz band level, dB re full scale (-120 for digital silence)
    loudness: np.ndarray  # float32 [F] in [0, 1]: 0 at/below the clip's speech gate, 1 at its loud speech
    voicing: np.ndarray  # float32 [F] in [0, 1]: normalised autocorrelation peak (>~0.5: voiced)
    f0: np.ndarray  # float32 [F], Hz; NaN where unvoiced or silent
    f1: np.ndarray  # float32 [F], first formant in Hz; NaN where not estimated
    f2: np.ndarray  # float32 [F], second formant in Hz; NaN where not estimated
    hf_ratio: np.ndarray  # float32 [F] in [0, 1]: share of band power above 2.5 kHz (fricatives ~> 0.5)

    @property
    def num_frames(self) -> int:
        return int(self.level_db.shape[0])


def analyze_audio(samples: np.ndarray, sample_rate: int) -> AcousticFeatures:
    """Acoustic features of mono speech. samples: float [N] in [-1, 1] at `sample_rate` Hz (any N >= 0)."""
    x = np.asarray(samples, np.float64)
    if sample_rate != ANALYSIS_SR:
        g = gcd(int(sample_rate), ANALYSIS_SR)
        x = resample_poly(x, ANALYSIS_SR // g, int(sample_rate) // g) if x.size else x
    duration = len(samples) / float(sample_rate)
    n = max(1, int(np.ceil(duration * ANALYSIS_RATE)) + 1)
    blocks = [(b, min(n, b + _BLOCK)) for b in range(0, n, _BLOCK)]  # blocks keep memory flat for long audio
    window = np.hanning(_WIN)
    freqs = np.fft.rfftfreq(_NFFT, 1.0 / ANALYSIS_SR)
    band = (freqs >= 100) & (freqs <= 3800)
    level_db, hf_ratio, voicing, f0 = (np.zeros(n) for _ in range(4))
    for b0, b1 in blocks:
        # 1. band power spectrum -> level and high-frequency share.
        spec = np.abs(np.fft.rfft(_frames(x, b0, b1, _WIN) * window, _NFFT)) ** 2  # [b, 129]
        band_power = spec[:, band].sum(1)
        level_db[b0:b1] = 10.0 * np.log10(band_power / (window ** 2).sum() + 1e-12)
        hf_ratio[b0:b1] = spec[:, band & (freqs >= 2500)].sum(1) / (band_power + 1e-20)
        # 2. voicing and f0 from the normalised autocorrelation of 40 ms windows.
        voicing[b0:b1], f0[b0:b1] = _pitch(_frames(x, b0, b1, _PITCH_WIN))
    loudness = _normalize_loudness(gaussian_filter1d(level_db, 1.5, mode="nearest"))
    voicing = np.where(loudness > 0, voicing, 0.0)
    f0 = np.where((voicing > 0.5) & (loudness > 0.05), f0, np.nan)

    # 3. formants on voiced, audible frames.
    valid = (voicing > 0.45) & (loudness > 0.1)
    f1, f2 = np.full(n, np.nan), np.full(n, np.nan)
    for b0, b1 in blocks:
        if valid[b0:b1].any():
            f1[b0:b1], f2[b0:b1] = _formants(_frames(x, b0, b1, _WIN), valid[b0:b1])
    return AcousticFeatures(
        rate=float(ANALYSIS_RATE), duration=duration, level_db=level_db.astype(np.float32),
        loudness=loudness.astype(np.float32), voicing=voicing.astype(np.float32), f0=f0.astype(np.float32),
        f1=f1.astype(np.float32), f2=f2.astype(np.float32), hf_ratio=hf_ratio.astype(np.float32))


def frame_centers(num_frames: int, fps: float) -> np.ndarray:
    """Times in seconds [T] of the middle of each video frame's interval [t / fps, (t + 1) / fps)."""
    return (np.arange(num_frames) + 0.5) / fps


def to_frames(track: np.ndarray, rate: float, num_frames: int, fps: float) -> np.ndarray:
    """Average a [F] track sampled at `rate` Hz (frame k at k / rate s) over each video frame's interval.

    NaNs are ignored; a frame with no finite value gets NaN. Returns float32 [num_frames]. Zero-phase:
    frame t averages the samples in [t / fps, (t + 1) / fps), rounded outward to the analysis grid.
    """
    track = np.asarray(track, np.float64)
    out = np.full(num_frames, np.nan)
    if track.size == 0:
        return out.astype(np.float32)
    edges = np.arange(num_frames + 1) / fps * rate
    lo = np.clip(np.round(edges[:-1]).astype(int), 0, track.size - 1)
    hi = np.clip(np.round(edges[1:]).astype(int), lo + 1, track.size)
    finite = np.isfinite(track)
    csum = np.concatenate([[0.0], np.cumsum(np.where(finite, track, 0.0))])
    ccnt = np.concatenate([[0], np.cumsum(finite)])
    cnt = ccnt[hi] - ccnt[lo]
    np.divide(csum[hi] - csum[lo], cnt, out=out, where=cnt > 0)
    return out.astype(np.float32)


def loudness_at_frames(features: AcousticFeatures, num_frames: int, fps: float) -> np.ndarray:
    """The clip's loudness (0 silence .. 1 loud speech) per video frame, float32 [T]."""
    return np.nan_to_num(to_frames(features.loudness, features.rate, num_frames, fps))


def acoustic_mouth(features: AcousticFeatures, num_frames: int, fps: float,
                   articulation: float = 1.0) -> np.ndarray:
    """Mouth blendshapes driven by acoustics alone (any language). Returns float32 [T, 52] in [0, 1].

    jawOpen follows loudness (concave, so quiet speech still opens), raised on high-F1 (open) vowels and
    lowered on fricatives; lips round (pucker/funnel) on low F2 and spread (stretch/smile) on high F2.
    `articulation` scales all of it (0 = still mouth).
    """
    out = np.zeros((num_frames, NUM_BLENDSHAPES), np.float32)
    if num_frames == 0:
        return out
    rate = features.rate
    loud = np.clip(features.loudness.astype(np.float64), 0, 1)
    f1 = _fill_nan(median_filter(np.nan_to_num(features.f1, nan=-1.0), 5, mode="nearest"), invalid_below=0)
    f2 = _fill_nan(median_filter(np.nan_to_num(features.f2, nan=-1.0), 5, mode="nearest"), invalid_below=0)
    openness = np.where(np.isfinite(f1), np.clip((f1 - 300.0) / 500.0, 0, 1), 0.5)
    fricative = np.clip((features.hf_ratio - 0.4) / 0.3, 0, 1) * (features.voicing < 0.5)
    jaw = loud ** 0.7 * (0.7 + 0.5 * openness) * (1.0 - 0.5 * fricative) * 0.55
    voiced = np.clip(loud * 2.0, 0, 1) * np.clip((features.voicing - 0.35) / 0.3, 0, 1)
    ref = np.nanmedian(f2[voiced > 0.3]) if np.any(np.isfinite(f2[voiced > 0.3])) else 1500.0
    rel = np.where(np.isfinite(f2), np.log(np.where(np.isfinite(f2), f2, ref) / ref) / 0.35, 0.0)
    rounding = np.clip(-rel - 0.15, 0, 1) * voiced
    spread = np.clip(rel - 0.15, 0, 1) * voiced

    def frames(track: np.ndarray, sigma_s: float = 0.02) -> np.ndarray:
        return np.nan_to_num(to_frames(gaussian_filter1d(track, sigma_s * rate, mode="nearest"), rate, num_frames,
                                       fps))

    jaw_f, round_f, spread_f = frames(jaw), frames(rounding, 0.04), frames(spread, 0.04)
    shapes = {
        "jawOpen": jaw_f,
        "mouthLowerDownLeft": 0.35 * jaw_f, "mouthLowerDownRight": 0.35 * jaw_f,
        "mouthUpperUpLeft": 0.12 * jaw_f, "mouthUpperUpRight": 0.12 * jaw_f,
        "mouthPucker": 0.6 * round_f, "mouthFunnel": 0.35 * round_f * (0.5 + jaw_f),
        "mouthStretchLeft": 0.3 * spread_f, "mouthStretchRight": 0.3 * spread_f,
        "mouthSmileLeft": 0.15 * spread_f, "mouthSmileRight": 0.15 * spread_f,
    }
    for name, track in shapes.items():
        out[:, blendshape_index(name)] = np.clip(track * articulation, 0, 1)
    return out


# --- internals ----------------------------------------------------------------------------------------

def _frames(x: np.ndarray, start: int, stop: int, win: int) -> np.ndarray:
    """[stop - start, win] windows of x, window k centred at sample k * _HOP (zero outside the signal)."""
    idx = (np.arange(start, stop)[:, None] * _HOP + np.arange(win)[None, :] - win // 2)  # [b, win]
    inside = (idx >= 0) & (idx < x.size)
    return np.where(inside, x[np.clip(idx, 0, max(x.size - 1, 0))] if x.size else 0.0, 0.0)


def _normalize_loudness(level_db: np.ndarray) -> np.ndarray:
    """dB level [F] -> [0, 1]: 0 at the speech gate, 1 at the clip's loud (95th percentile) speech."""
    ref = max(float(np.percentile(level_db, 95)), float(np.percentile(level_db, 99.5)) - 6.0)  # speech may be rare
    if ref < SILENCE_DBFS:
        return np.zeros_like(level_db)
    floor = float(np.percentile(level_db, 10))
    gate = min(max(ref - 35.0, floor + 6.0, SILENCE_DBFS), ref - 12.0)
    # Speech swings >= 15 dB between syllables and pauses; a steady hum or hiss does not: keep it shut.
    modulation = float(np.clip((ref - floor - 6.0) / 6.0, 0.0, 1.0))
    return np.clip((level_db - gate) / (ref - gate), 0.0, 1.0) * modulation


def _pitch(frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Voicing [F] in [0, 1] and f0 [F] in Hz from 40 ms frames [F, 320] at 8 kHz."""
    win = frames.shape[1]
    x = frames - frames.mean(1, keepdims=True)
    spec = np.fft.rfft(x, 2 * win)
    ac = np.fft.irfft(np.abs(spec) ** 2)[:, :win]  # [F, win] autocorrelation
    lags = np.arange(win)
    ac = ac / (win - lags)[None, :] * win  # unbiased
    lo, hi = ANALYSIS_SR // 400, ANALYSIS_SR // 70  # lags 20..114
    energy = ac[:, :1]
    norm = ac[:, lo:hi] / np.maximum(energy, 1e-12)
    best = np.argmax(norm, axis=1)
    voicing = np.clip(norm[np.arange(len(best)), best], 0, 1)
    voicing = np.where(energy[:, 0] > 1e-10, voicing, 0.0)
    return voicing, ANALYSIS_SR / (best + lo)


def _formants(frames: np.ndarray, valid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """F1, F2 [F] in Hz (NaN outside `valid` or where no resonance qualifies) from 25 ms frames [F, 200]."""
    f1 = np.full(frames.shape[0], np.nan)
    f2 = np.full(frames.shape[0], np.nan)
    idx = np.flatnonzero(valid)
    if idx.size == 0:
        return f1, f2
    x = frames[idx]
    x = np.concatenate([x[:, :1], x[:, 1:] - 0.63 * x[:, :-1]], axis=1) * np.hamming(x.shape[1])  # pre-emphasis
    r = np.stack([(x[:, : x.shape[1] - k] * x[:, k:]).sum(1) for k in range(LPC_ORDER + 1)], 1)  # [n, 11]
    r[:, 0] *= 1.0001  # white-noise correction keeps the recursion stable
    a = _levinson(r)  # [n, 11], a[:, 0] = 1
    companion = np.zeros((len(idx), LPC_ORDER, LPC_ORDER))  # [n, p, p]
    companion[:, 0, :] = -a[:, 1:]
    companion[:, np.arange(1, LPC_ORDER), np.arange(LPC_ORDER - 1)] = 1.0
    roots = np.linalg.eigvals(companion)  # [n, p]
    freq = np.angle(roots) * ANALYSIS_SR / (2 * np.pi)
    bw = -np.log(np.maximum(np.abs(roots), 1e-9)) * ANALYSIS_SR / np.pi
    ok = (roots.imag > 0) & (freq > 150) & (freq < 3700) & (bw < 500)
    freq = np.where(ok, freq, np.inf)
    freq.sort(axis=1)
    f1[idx] = np.where(np.isfinite(freq[:, 0]), freq[:, 0], np.nan)
    f2[idx] = np.where(np.isfinite(freq[:, 1]), freq[:, 1], np.nan)
    return f1, f2


def _levinson(r: np.ndarray) -> np.ndarray:
    """LPC coefficients [n, p+1] from autocorrelations [n, p+1] (Levinson-Durbin, vectorised over n)."""
    n, p1 = r.shape
    a = np.zeros((n, p1))
    a[:, 0] = 1.0
    err = r[:, 0].copy()
    for i in range(1, p1):
        acc = r[:, i] + (a[:, 1:i] * r[:, i - 1:0:-1]).sum(1)
        k = -acc / np.maximum(err, 1e-12)
        a[:, 1:i] = a[:, 1:i] + k[:, None] * a[:, i - 1:0:-1]
        a[:, i] = k
        err = err * (1.0 - k * k)
    return a


def _fill_nan(x: np.ndarray, invalid_below: float) -> np.ndarray:
    return np.where(x > invalid_below, x, np.nan)
