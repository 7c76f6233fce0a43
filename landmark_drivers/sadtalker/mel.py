"""Wav2Lip/SadTalker mel features: 16 kHz speech -> one [80, 16] normalised log-mel window per 25 fps frame.

Constants are the reference's (`hparams` of Wav2Lip): pre-emphasis 0.97; STFT n_fft 800, hop 200 (80 mel
frames per second), win 800, hann, centred, zero ('constant') padding; magnitude (not power); 80 slaney
mel bands 55-7600 Hz; `20 log10(max(1e-5, mel)) - 20` dB; `clip(8 (S + 100) / 100 - 4, -4, 4)`.
Frame i (25 fps) takes mel rows `int(80 * (i - 2) / 25) + 0..15`, clamped to the valid rows.
"""

from __future__ import annotations

from functools import lru_cache

import librosa
import numpy as np
from scipy.signal import lfilter

SAMPLE_RATE = 16000
FPS = 25  # the networks' frame rate
SAMPLES_PER_FRAME = SAMPLE_RATE // FPS  # 640
N_FFT, HOP, WIN = 800, 200, 800
N_MELS, FMIN, FMAX = 80, 55.0, 7600.0
PREEMPHASIS = 0.97
MIN_LEVEL_DB, REF_LEVEL_DB, MAX_ABS = -100.0, 20.0, 4.0
MEL_STEP = 16  # mel rows per frame window (0.2 s)
MEL_PER_SECOND = SAMPLE_RATE / HOP  # 80


@lru_cache(maxsize=1)
def _mel_basis() -> np.ndarray:
    return librosa.filters.mel(sr=SAMPLE_RATE, n_fft=N_FFT, n_mels=N_MELS, fmin=FMIN, fmax=FMAX)  # [80, 401]


def num_frames(num_samples: int) -> int:
    """Whole 25 fps frames in `num_samples` at 16 kHz (the reference's `int(len / 640)`)."""
    return int(num_samples / (SAMPLE_RATE / FPS))


def mel_spectrogram(samples: np.ndarray) -> np.ndarray:
    """samples: float [L] mono at 16 kHz in [-1, 1]. Returns float32 [1 + L // 200, 80] in [-4, 4]."""
    emphasised = lfilter([1.0, -PREEMPHASIS], [1.0], np.asarray(samples, np.float64))
    spectrum = np.abs(librosa.stft(emphasised, n_fft=N_FFT, hop_length=HOP, win_length=WIN, window="hann",
                                   center=True, pad_mode="constant"))  # [401, M]
    mel = _mel_basis() @ spectrum  # [80, 401] @ [401, M] -> [80, M]
    min_level = np.exp(MIN_LEVEL_DB / 20.0 * np.log(10.0))  # 1e-5
    db = 20.0 * np.log10(np.maximum(min_level, mel)) - REF_LEVEL_DB
    norm = np.clip(2.0 * MAX_ABS * (db - MIN_LEVEL_DB) / -MIN_LEVEL_DB - MAX_ABS, -MAX_ABS, MAX_ABS)
    return norm.T.astype(np.float32)  # [80, M] -> [M, 80]


def window_start(frame: int, fps: float = FPS) -> int:
    """First mel row of frame `frame`'s window: `int(80 * ((frame - 2) / fps))` (truncated toward 0, as
    the reference computes it); may be negative (clamped by `frame_windows`)."""
    return int(MEL_PER_SECOND * ((frame - 2) / float(fps)))


def frame_windows(mel: np.ndarray, count: int, fps: float = FPS) -> np.ndarray:
    """mel: float32 [M, 80] from `mel_spectrogram`. Returns float32 [count, 1, 80, 16]: frame i holds mel
    rows `window_start(i) + 0..15` clamped to 0..M-1, transposed to (band, time)."""
    rows = np.array([[window_start(i, fps) + k for k in range(MEL_STEP)] for i in range(count)], np.int64)
    rows = np.clip(rows, 0, mel.shape[0] - 1).reshape(count, MEL_STEP)  # [count, 16]
    return np.ascontiguousarray(mel[rows].transpose(0, 2, 1)[:, None])  # [count, 16, 80] -> [count, 1, 80, 16]


def audio_features(samples: np.ndarray) -> np.ndarray:
    """The networks' input for 16 kHz `samples`: float32 [N, 1, 80, 16], N = `num_frames(len(samples))`.

    The audio is cut to N * 640 samples first (the reference drops the last partial frame).
    """
    count = num_frames(len(samples))
    if count == 0:
        return np.zeros((0, 1, N_MELS, MEL_STEP), np.float32)
    mel = mel_spectrogram(np.asarray(samples)[:count * SAMPLES_PER_FRAME])
    return frame_windows(mel, count)
