"""The embedded audio driver in streaming form: audio chunks in, one `MotionFrame` per video frame out.

The acoustic path of `acoustic.py` (loudness -> jaw, formants -> rounding/spreading), computed
incrementally at 100 analysis frames per second on audio resampled to 8 kHz, with every zero-phase
filter of the offline driver replaced by a short centred window that ends within the lookahead:

| offline (whole clip)                         | streaming                                            |
|----------------------------------------------|------------------------------------------------------|
| level smoothed by a Gaussian, sigma 1.5      | the same Gaussian truncated at +-`LEVEL_RADIUS`      |
| loudness gate/ref: the clip's percentiles    | the percentiles of the last `HISTORY_S` seconds      |
| formants median-filtered over 5 frames       | the same (+-`MEDIAN_RADIUS`)                          |
| F2 reference: the clip's voiced median       | the running median of voiced F2 so far               |
| jaw/lip Gaussians (sigma 2 and 4 frames)     | truncated at +-`MOUTH_RADIUS` frames                 |

As offline, the mouth shows the sound `MOUTH_LEAD_S` (20 ms) ahead: the first 20 ms of the stream are
skipped (and 20 ms of silence close it). A video frame is emitted once the audio reaches `lookahead_s`
past its end: `AUDIO_LOOKAHEAD_S` (100 ms of analysis windows + the 20 ms lead) plus the resampler's
pad (1.4 ms at 16 and 48 kHz, 10 ms at 44.1 kHz).
Phones are not used: recognising them needs whole utterances, far beyond the latency budget.
Blinks, head sway, nods and brows come from `online_nonverbal.py` (seeded, causal).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from math import gcd

import numpy as np
from scipy.signal import resample_poly

from ..audio import acoustic as ac
from ..audio.audio_driver import MOUTH_LEAD_S, check_motion_options
from ..blendshapes import NUM_BLENDSHAPES, blendshape_index
from .frames import MotionFrame
from .online_nonverbal import OnlineNonverbal

LEVEL_RADIUS = 3  # analysis frames each side of the loudness smoothing
MEDIAN_RADIUS = 2  # ... of the formant median filter
MOUTH_RADIUS = 4  # ... of the jaw and lip smoothing
HISTORY_S = 30.0  # seconds of level history behind the loudness normalisation
_RATE = ac.ANALYSIS_RATE
_HOP = ac._HOP  # 80 samples at 8 kHz
_HALF = ac._PITCH_WIN // 2  # the widest analysis window reaches this many 8 kHz samples past its centre
_AHEAD = LEVEL_RADIUS + MEDIAN_RADIUS + MOUTH_RADIUS  # analysis frames past a video frame's last one
# audio needed past a frame's end: the analysis windows (100 ms) and the mouth's lead on the sound (20 ms),
# plus the resampler's pad (`StreamingAudioDriver.lookahead_s`)
AUDIO_LOOKAHEAD_S = ((_AHEAD - 1) * _HOP + _HALF) / ac.ANALYSIS_SR + MOUTH_LEAD_S
_KEEP = 64  # analysis frames kept behind the newest finished one
_MOUTH = {name: blendshape_index(name) for name in (
    "jawOpen", "mouthLowerDownLeft", "mouthLowerDownRight", "mouthUpperUpLeft", "mouthUpperUpRight", "mouthPucker",
    "mouthFunnel", "mouthStretchLeft", "mouthStretchRight", "mouthSmileLeft", "mouthSmileRight")}


@dataclass(frozen=True)
class StreamingAudioOptions:
    """How live speech becomes face motion (the offline `AudioDriverOptions` without phones)."""

    fps: float = 25.0  # output frames per second (1..240)
    seed: int = 0  # non-negative; same seed + same audio = same motion (blinks, head sway)
    head_motion: float = 1.0  # scale of head rotation/translation (0 = still head, 1 = natural, <= 5)
    expressiveness: float = 1.0  # scale of brow raises with the prosody (0 = still brows, <= 5)
    articulation: float = 1.0  # scale of jaw/lip motion (0 = closed still mouth, <= 2)
    blinks: bool = True  # add natural blinks

    def __post_init__(self) -> None:
        check_motion_options(self)


def _gaussian(sigma: float, radius: int) -> np.ndarray:
    k = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    return k / k.sum()


_LEVEL_KERNEL = _gaussian(1.5, LEVEL_RADIUS)
_JAW_KERNEL = _gaussian(0.02 * _RATE, MOUTH_RADIUS)
_LIP_KERNEL = _gaussian(0.04 * _RATE, MOUTH_RADIUS)


class _Resampler:
    """Streaming polyphase resampling to 8 kHz: the output equals `resample_poly` on the whole signal."""

    def __init__(self, rate: int) -> None:
        g = gcd(int(rate), ac.ANALYSIS_SR)
        self.up, self.down = ac.ANALYSIS_SR // g, int(rate) // g
        need = -(-10 * max(self.up, self.down) // self.up) + 2  # resample_poly's half filter, input samples
        self.pad = self.down * -(-need // self.down)  # a multiple of `down`, so windows stay in phase
        self._raw = np.zeros(self.pad)  # input history (zeros before the start, as resample_poly assumes)
        self._start = -self.pad  # input index of _raw[0]
        self._done = 0  # input samples turned into output so far (a multiple of `down`)

    def push(self, x: np.ndarray, final: bool = False) -> np.ndarray:
        """Append input; return every 8 kHz sample that no longer depends on unseen input."""
        if self.up == 1 and self.down == 1:
            return np.asarray(x, np.float64)
        self._raw = np.concatenate([self._raw, x])
        end = self._start + len(self._raw)  # input samples received
        if final:
            self._raw = np.concatenate([self._raw, np.zeros(2 * self.pad)])
            stop = end + (-end) % self.down
        else:
            stop = (end - self.pad) // self.down * self.down  # safe: the filter's right half is inside
        if stop <= self._done:
            return np.zeros(0)
        lo = self._done - self.pad - self._start  # window in _raw
        hi = stop + self.pad - self._start
        y = resample_poly(self._raw[lo:hi], self.up, self.down)
        skip = self.pad * self.up // self.down
        out = y[skip: skip + (stop - self._done) * self.up // self.down]
        self._done = stop
        keep = self._done - self.pad - self._start
        self._raw, self._start = self._raw[keep:], self._start + keep
        return out


class StreamingAudioDriver:
    """Face motion for live speech, one frame per 1/fps s, `AUDIO_LOOKAHEAD_S` behind the audio.

    sample_rate: Hz of the pushed samples (4000-192000). Frame t (time t / fps) is emitted once the audio
    reaches (t + 1) / fps + `lookahead_s`; `finish()` emits the rest (the future taken as silence).
    """

    def __init__(self, sample_rate: int, options: StreamingAudioOptions | None = None) -> None:
        if not 4000 <= int(sample_rate) <= 192000:
            raise ValueError(f"sample_rate must be within 4000..192000 Hz, got {sample_rate}")
        self.sample_rate = int(sample_rate)
        self.options = options or StreamingAudioOptions()
        self._resampler = _Resampler(self.sample_rate)
        pad = 0 if self._resampler.up == self._resampler.down else self._resampler.pad
        self.lookahead_s = AUDIO_LOOKAHEAD_S + pad / self.sample_rate  # audio needed past a frame's end
        self._lead_left = int(round(MOUTH_LEAD_S * self.sample_rate))  # samples still to skip (the lead)
        self._lead = self._lead_left
        self._x = np.zeros(0)  # 8 kHz samples from absolute index _x0
        self._x0 = 0
        self._n8k = 0  # 8 kHz samples received
        self._base = 0  # analysis frame index of the per-frame lists' first entry
        self._raw: dict[str, list[float]] = {k: [] for k in ("level", "hf", "voicing", "f0")}
        self._feat: dict[str, list[float]] = {k: [] for k in ("loud", "voicing", "f0", "f1", "f2")}
        self._mouth: dict[str, list[float]] = {k: [] for k in ("jaw", "round", "spread")}
        self._counts = {"raw": 0, "feat": 0, "mouth": 0}  # analysis frames finished per stage (absolute)
        self._history: deque[float] = deque(maxlen=int(HISTORY_S * _RATE))  # smoothed levels
        self._f2_history: deque[float] = deque(maxlen=int(HISTORY_S * _RATE))
        self._f0_history: deque[float] = deque(maxlen=int(HISTORY_S * _RATE))
        self._next_frame = 0
        self._final = False
        self._nonverbal = OnlineNonverbal(self.options.fps, int(self.options.seed), self.options.blinks)

    def with_options(self, **changes: float) -> None:
        """Change head_motion / expressiveness / articulation from the next frame on."""
        from dataclasses import replace

        self.options = replace(self.options, **changes)

    @property
    def received_s(self) -> float:
        """Seconds of audio pushed so far."""
        return self._n8k / ac.ANALYSIS_SR

    # ------------------------------------------------------------------ input
    def push(self, samples: np.ndarray) -> list[MotionFrame]:
        """Append mono float samples in [-1, 1] (any length); return the frames that became ready."""
        x = np.asarray(samples, dtype=np.float64).reshape(-1)
        if x.size and not np.isfinite(x).all():
            raise ValueError("audio samples contain NaN or inf")
        if self._final:
            raise ValueError("push() after finish()")
        if self._lead_left:  # the sound MOUTH_LEAD_S ahead: drop the stream's first samples
            skip = min(self._lead_left, x.size)
            x, self._lead_left = x[skip:], self._lead_left - skip
        return self._advance(self._resampler.push(x))

    def finish(self) -> list[MotionFrame]:
        """End of stream: the remaining frames, up to round(duration * fps) frames in all."""
        y = self._resampler.push(np.zeros(self._lead - self._lead_left), final=True)  # silence for the lead
        self._final = True
        return self._advance(y)

    # ------------------------------------------------------------------ stages
    def _advance(self, y: np.ndarray) -> list[MotionFrame]:
        if y.size:
            self._x = np.concatenate([self._x, y])
            self._n8k += y.size
        total = self._total_analysis_frames()
        # raw features need the pitch window inside the received audio (zeros past the end when final)
        raw_ready = total if self._final else min(total, (self._n8k - _HALF) // _HOP + 1)
        self._raw_stage(raw_ready)
        self._feature_stage(raw_ready if self._final else raw_ready - LEVEL_RADIUS)
        feat_ready = self._counts["feat"]
        self._mouth_stage(feat_ready if self._final else feat_ready - MEDIAN_RADIUS)
        mouth_ready = self._counts["mouth"]
        out = []
        while True:
            t = self._next_frame
            if self._final and t >= self._num_frames():
                break
            lo, hi = self._frame_span(t)
            if self._final:
                hi = min(hi, mouth_ready)
            if hi + (0 if self._final else MOUTH_RADIUS) > mouth_ready or lo >= hi:
                break
            out.append(self._frame(t, lo, hi, mouth_ready))
            self._next_frame += 1
        self._trim()
        return out

    def _total_analysis_frames(self) -> int:
        duration = self._n8k / ac.ANALYSIS_SR
        return max(1, int(np.ceil(duration * _RATE)) + 1) if self._final else 1 << 62

    def _num_frames(self) -> int:
        n = int(round(self._n8k / ac.ANALYSIS_SR * self.options.fps))
        return max(1, n) if self._n8k else 0

    def _frame_span(self, t: int) -> tuple[int, int]:
        fps = self.options.fps
        lo = int(round(t / fps * _RATE))
        hi = max(lo + 1, int(round((t + 1) / fps * _RATE)))
        return lo, hi

    def _raw_stage(self, ready: int) -> None:
        k0 = self._counts["raw"]
        if ready <= k0:
            return
        window = np.hanning(ac._WIN)
        freqs = np.fft.rfftfreq(ac._NFFT, 1.0 / ac.ANALYSIS_SR)
        band = (freqs >= 100) & (freqs <= 3800)
        frames = self._windows(k0, ready, ac._WIN)
        spec = np.abs(np.fft.rfft(frames * window, ac._NFFT)) ** 2  # [n, 129]
        power = spec[:, band].sum(1)
        self._raw["level"] += list(10.0 * np.log10(power / (window ** 2).sum() + 1e-12))
        self._raw["hf"] += list(spec[:, band & (freqs >= 2500)].sum(1) / (power + 1e-20))
        voicing, f0 = ac._pitch(self._windows(k0, ready, ac._PITCH_WIN))
        self._raw["voicing"] += list(voicing)
        self._raw["f0"] += list(f0)
        self._counts["raw"] = ready

    def _windows(self, k0: int, k1: int, win: int) -> np.ndarray:
        """[k1 - k0, win] windows centred at k * _HOP (absolute), zeros outside the signal."""
        idx = (np.arange(k0, k1)[:, None] * _HOP + np.arange(win)[None, :] - win // 2) - self._x0  # [n, win]
        inside = (idx >= 0) & (idx < self._x.size) & (idx + self._x0 < self._n8k)
        return np.where(inside, self._x[np.clip(idx, 0, max(self._x.size - 1, 0))] if self._x.size else 0.0, 0.0)

    def _feature_stage(self, ready: int) -> None:
        """Loudness (normalised on the history), voicing, f0 and formants for frames < ready."""
        raw_n = self._counts["raw"]
        for k in range(self._counts["feat"], max(ready, self._counts["feat"])):
            lo, hi = k - LEVEL_RADIUS, k + LEVEL_RADIUS + 1
            idx = np.clip(np.arange(lo, hi), 0, raw_n - 1) - self._base  # "nearest" at the edges
            idx = np.clip(idx, 0, None)
            level = float(np.dot(_LEVEL_KERNEL, np.asarray(self._raw["level"])[idx]))
            self._history.append(level)
            loud = float(ac._normalize_loudness(np.asarray(self._history))[-1]) if len(self._history) > 1 else 0.0
            i = k - self._base
            voicing = self._raw["voicing"][i] if loud > 0 else 0.0
            f0 = self._raw["f0"][i] if (voicing > 0.5 and loud > 0.05) else np.nan
            f1 = f2 = np.nan
            if voicing > 0.45 and loud > 0.1:
                f1s, f2s = ac._formants(self._windows(k, k + 1, ac._WIN), np.ones(1, bool))
                f1, f2 = float(f1s[0]), float(f2s[0])
            for name, value in (("loud", loud), ("voicing", voicing), ("f0", f0), ("f1", f1), ("f2", f2)):
                self._feat[name].append(value)
            self._counts["feat"] = k + 1

    def _mouth_stage(self, ready: int) -> None:
        """Per analysis frame: raw jaw, rounding and spreading (acoustic_mouth before its smoothing)."""
        feat_n = self._counts["feat"]
        f = {k: np.asarray(v) for k, v in self._feat.items()}
        for k in range(self._counts["mouth"], max(ready, self._counts["mouth"])):
            i = k - self._base
            win = np.clip(np.arange(k - MEDIAN_RADIUS, k + MEDIAN_RADIUS + 1), 0, feat_n - 1) - self._base
            win = np.clip(win, 0, None)
            f1 = float(np.median(np.nan_to_num(f["f1"][win], nan=-1.0)))
            f2 = float(np.median(np.nan_to_num(f["f2"][win], nan=-1.0)))
            f1, f2 = (v if v > 0 else np.nan for v in (f1, f2))
            loud, voicing = float(np.clip(f["loud"][i], 0, 1)), float(f["voicing"][i])
            openness = float(np.clip((f1 - 300.0) / 500.0, 0, 1)) if np.isfinite(f1) else 0.5
            fricative = float(np.clip((self._raw["hf"][i] - 0.4) / 0.3, 0, 1)) * (voicing < 0.5)
            jaw = loud ** 0.7 * (0.7 + 0.5 * openness) * (1.0 - 0.5 * fricative) * 0.55
            voiced = float(np.clip(loud * 2.0, 0, 1) * np.clip((voicing - 0.35) / 0.3, 0, 1))
            if voiced > 0.3 and np.isfinite(f2):
                self._f2_history.append(f2)
            ref = float(np.median(self._f2_history)) if self._f2_history else 1500.0
            rel = np.log(f2 / ref) / 0.35 if np.isfinite(f2) else 0.0
            self._mouth["jaw"].append(jaw)
            self._mouth["round"].append(float(np.clip(-rel - 0.15, 0, 1)) * voiced)
            self._mouth["spread"].append(float(np.clip(rel - 0.15, 0, 1)) * voiced)
            self._counts["mouth"] = k + 1

    # ------------------------------------------------------------------ output
    def _smoothed(self, name: str, kernel: np.ndarray, lo: int, hi: int, ready: int) -> float:
        """Mean over analysis frames [lo, hi) of the track smoothed by `kernel` ("nearest" edges)."""
        r = len(kernel) // 2
        track = np.asarray(self._mouth[name])
        idx = np.clip(np.arange(lo - r, hi + r), 0, ready - 1) - self._base  # [hi - lo + 2r]
        values = np.convolve(track[np.clip(idx, 0, None)], kernel, mode="valid")  # [hi - lo]
        return float(values.mean())

    def _frame(self, t: int, lo: int, hi: int, ready: int) -> MotionFrame:
        o = self.options
        jaw = self._smoothed("jaw", _JAW_KERNEL, lo, hi, ready)
        rounding = self._smoothed("round", _LIP_KERNEL, lo, hi, ready)
        spread = self._smoothed("spread", _LIP_KERNEL, lo, hi, ready)
        shapes = np.zeros(NUM_BLENDSHAPES, np.float32)
        for name, value in (("jawOpen", jaw), ("mouthLowerDownLeft", 0.35 * jaw), ("mouthLowerDownRight", 0.35 * jaw),
                            ("mouthUpperUpLeft", 0.12 * jaw), ("mouthUpperUpRight", 0.12 * jaw),
                            ("mouthPucker", 0.6 * rounding), ("mouthFunnel", 0.35 * rounding * (0.5 + jaw)),
                            ("mouthStretchLeft", 0.3 * spread), ("mouthStretchRight", 0.3 * spread),
                            ("mouthSmileLeft", 0.15 * spread), ("mouthSmileRight", 0.15 * spread)):
            shapes[_MOUTH[name]] = np.clip(value * o.articulation, 0, 1)
        span = slice(lo - self._base, hi - self._base)
        loud = float(np.mean(np.clip(self._feat["loud"][span], 0, 1)))
        f0 = np.asarray(self._feat["f0"][span], np.float64)
        self._f0_history.extend(f0[np.isfinite(f0)])  # the speaker's pitch up to this frame
        semitones = np.nan
        if np.isfinite(f0).any() and len(self._f0_history) >= 3:
            semitones = 12.0 * np.log2(np.nanmean(f0) / np.median(self._f0_history))
        extra, rotation, translation = self._nonverbal.step(t, loud, semitones, o.head_motion, o.expressiveness)
        return MotionFrame(t / o.fps, np.clip(shapes + extra, 0, 1).astype(np.float32), rotation, translation)

    def _trim(self) -> None:
        """Drop analysis frames and samples no future frame needs (memory stays flat)."""
        lo, _ = self._frame_span(self._next_frame)
        keep_from = min(lo - 2 * (MOUTH_RADIUS + MEDIAN_RADIUS + LEVEL_RADIUS), self._counts["mouth"] - _KEEP)
        drop = keep_from - self._base
        if drop > 256:
            for store in (self._raw, self._feat, self._mouth):
                for key in store:
                    del store[key][:drop]
            self._base += drop
        sample_keep = (self._counts["raw"] - 8) * _HOP - ac._PITCH_WIN  # windows of frames still to analyse
        sample_keep = min(sample_keep, (self._counts["feat"] - 8) * _HOP - ac._PITCH_WIN)
        cut = sample_keep - self._x0
        if cut > 8000:
            self._x, self._x0 = self._x[cut:], self._x0 + cut
