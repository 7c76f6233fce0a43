"""SadTalker driver pieces that need no weights: mel features, blinks, pose windows, smoothing, resampling."""

from __future__ import annotations

import math
import random
from fractions import Fraction

import librosa
import numpy as np
import pytest
import torch

from landmark_drivers.sadtalker.audio2exp import BLINK_SHAPE, EXP_CHUNK, Audio2Exp, blink_sequence
from landmark_drivers.sadtalker.audio2pose import Audio2Pose, pose_windows, savgol_window, smooth_pose
from landmark_drivers.sadtalker.driver import resample_track
from landmark_drivers.sadtalker.mel import audio_features, frame_windows, mel_spectrogram, num_frames

SR = 16000


def sine(seconds: float, freq: float = 1000.0, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def hand_mel(x: np.ndarray) -> np.ndarray:
    """The spec's recipe written out: pre-emphasis, zero-padded hann STFT, slaney mel, dB, normalisation."""
    x = np.asarray(x, np.float64)
    y = np.concatenate([[x[0]], x[1:] - 0.97 * x[:-1]])
    padded = np.pad(y, 400)
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(800) / 800)  # periodic hann
    frames = np.stack([padded[i * 200:i * 200 + 800] * window for i in range(1 + len(x) // 200)])
    magnitude = np.abs(np.fft.rfft(frames, axis=1))  # [M, 401]
    mel = magnitude @ librosa.filters.mel(sr=SR, n_fft=800, n_mels=80, fmin=55, fmax=7600).T  # [M, 80]
    db = 20 * np.log10(np.maximum(1e-5, mel)) - 20
    return np.clip(8 * (db + 100) / 100 - 4, -4, 4)


def test_mel_spectrogram_matches_hand_computation_on_a_sine():
    x = sine(1.0)
    mel = mel_spectrogram(x)
    expected = hand_mel(x)
    assert mel.shape == expected.shape == (81, 80)
    np.testing.assert_allclose(mel, expected, atol=2e-4)
    # a 1 kHz tone is loudest in the band whose centre is nearest 1 kHz
    centres = librosa.mel_frequencies(n_mels=82, fmin=55, fmax=7600)[1:-1]
    assert abs(centres[mel[40].argmax()] - 1000.0) < 60.0


def test_frame_windows_follow_the_index_rule_with_clamping():
    x = sine(1.0) + 0.1 * np.random.default_rng(0).standard_normal(SR).astype(np.float32)
    feats = audio_features(x)
    mel = hand_mel(x)
    assert feats.shape == (25, 1, 80, 16) and feats.dtype == np.float32
    assert feats.min() >= -4.0 and feats.max() <= 4.0
    for i in range(25):
        start = math.trunc(Fraction(80 * (i - 2), 25))  # int() truncates toward zero: frame 0 starts at -6
        rows = [min(max(start + k, 0), mel.shape[0] - 1) for k in range(16)]
        np.testing.assert_allclose(feats[i, 0], mel[rows].T, atol=2e-4)
    assert math.trunc(Fraction(80 * (0 - 2), 25)) == -6  # frame 0 repeats row 0 seven times
    np.testing.assert_array_equal(feats[0, 0, :, :7], np.repeat(feats[0, 0, :, :1], 7, axis=1))


def test_audio_is_cut_to_whole_frames():
    x = sine(1.0)
    longer = np.concatenate([x, sine(0.03, 300.0)])  # 480 extra samples: not a whole 640-sample frame
    assert num_frames(len(longer)) == 25 and num_frames(639) == 0 and num_frames(640) == 1
    np.testing.assert_array_equal(audio_features(longer), audio_features(x))
    assert audio_features(np.zeros(600, np.float32)).shape == (0, 1, 80, 16)


def test_silence_maps_to_the_floor():
    feats = frame_windows(mel_spectrogram(np.zeros(6400, np.float32)), 10)
    np.testing.assert_allclose(feats, -4.0)


def test_blink_sequence_is_seeded_and_shaped_like_the_reference():
    a = blink_sequence(200, random.Random(42))
    assert np.array_equal(a, blink_sequence(200, random.Random(42)))
    assert not np.array_equal(a, blink_sequence(200, random.Random(7)))
    assert not blink_sequence(20, random.Random(0)).any()  # none for N <= 20
    starts = [i for i in range(200) if a[i] == BLINK_SHAPE[0] and (i == 0 or a[i - 1] == 0)]
    assert starts, "200 frames must hold at least one blink"
    for s in starts:
        np.testing.assert_allclose(a[s:s + 5], BLINK_SHAPE)
        assert s + 5 <= 199  # a blink ends before the last frame
    assert np.count_nonzero(a) == 5 * len(starts)
    # the first gap is drawn from range(min(10, N), min(N // 2, 70)) like the reference
    rng = random.Random(42)
    assert starts[0] == rng.choice(range(10, 70))


@pytest.mark.parametrize("n, expected", [(64, [(0, 32, 32), (32, 64, 32)]),
                                         (70, [(0, 32, 32), (32, 64, 32), (38, 70, 6)]),
                                         (5, [(0, 5, 5)]), (0, [])])
def test_pose_windows_remainder_rule(n, expected):
    windows = pose_windows(n)
    assert windows == expected
    kept = [i for start, stop, keep in windows for i in range(stop - keep, stop)]
    assert kept == list(range(n))  # every motion frame exactly once, in order


@pytest.mark.parametrize("n, window", [(100, 13), (13, 13), (12, 11), (11, 11), (10, 9), (4, 3), (3, 3),
                                       (2, None), (1, None)])
def test_savgol_window_rule(n, window):
    assert savgol_window(n) == window


def test_smooth_pose_keeps_quadratics_and_damps_noise():
    t = np.arange(40, dtype=np.float64)[:, None]
    quadratic = np.tile(0.001 * t ** 2 - 0.02 * t + 0.3, (1, 6))
    np.testing.assert_allclose(smooth_pose(quadratic), quadratic, atol=1e-5)
    noise = np.random.default_rng(0).standard_normal((40, 6))
    assert smooth_pose(noise).std() < 0.7 * noise.std()
    short = np.arange(12, dtype=np.float64).reshape(2, 6)
    np.testing.assert_array_equal(smooth_pose(short), short)  # N < 3: unchanged


@pytest.fixture(scope="module")
def audio2pose() -> Audio2Pose:
    torch.manual_seed(0)
    return Audio2Pose().eval()


@pytest.mark.parametrize("n", [41, 6])  # 40 motion frames = 32 + remainder 8; 5 motion frames < 32 (padded)
def test_audio2pose_chunks_follow_the_reference(audio2pose, n):
    torch.manual_seed(1)
    mels = torch.rand(n, 1, 80, 16) * 8 - 4
    ref = torch.tensor([0.1, -0.2, 0.05, 0.3, -0.1, 0.2])
    pose = audio2pose.predict(mels, ref, pose_style=3, generator=torch.Generator().manual_seed(5))
    assert pose.shape == (n, 6)
    assert torch.equal(pose[0], ref)  # frame 0: zero motion

    gen = torch.Generator().manual_seed(5)
    with torch.no_grad():
        emb = audio2pose.audio_encoder(mels[1:])
        style = torch.tensor([3])
        decode = audio2pose.netG.decoder
        if n == 41:
            first = decode(torch.randn(1, 64, generator=gen), style, ref[None], emb[None, 0:32])[0]
            last = decode(torch.randn(1, 64, generator=gen), style, ref[None], emb[None, 8:40])[0]
            motion = torch.cat([first, last[-8:]])
        else:
            padded = torch.cat([emb[:1].expand(27, 512), emb])  # the first embedding repeated in front
            motion = decode(torch.randn(1, 64, generator=gen), style, ref[None], padded[None])[0][-5:]
    torch.testing.assert_close(pose[1:], ref + motion)
    with pytest.raises(ValueError, match="46"):
        audio2pose.predict(mels, ref, pose_style=46)


def test_audio2exp_chunks_of_ten_equal_one_batch():
    torch.manual_seed(0)
    net = Audio2Exp().eval()
    mels = torch.rand(23, 1, 80, 16) * 8 - 4
    ref = torch.randn(64)
    blink = torch.zeros(23)
    blink[5:10] = torch.tensor(BLINK_SHAPE)
    out = net.predict(mels, ref, blink)
    with torch.no_grad():
        whole = net(mels, ref.expand(23, 64), blink[:, None])
    assert out.shape == (23, 64) and EXP_CHUNK == 10
    torch.testing.assert_close(out, whole, rtol=1e-5, atol=1e-5)
    with torch.no_grad():  # the blink ratio is an input: changing it changes only those frames
        other = net.predict(mels, ref, torch.zeros(23))
    changed = (other - out).abs().amax(dim=1) > 0
    assert changed[5:10].all() and not changed[:5].any() and not changed[10:].any()


def test_resample_track_is_linear_in_time_and_holds_the_end():
    points = np.arange(4, dtype=np.float64)[:, None, None] * np.ones((4, 68, 2))  # value = frame index
    same = resample_track(points, 25, 25, 4)
    np.testing.assert_array_equal(same, points)
    double = resample_track(points, 25, 50, 9)
    np.testing.assert_allclose(double[:, 0, 0], [0, 0.5, 1, 1.5, 2, 2.5, 3, 3, 3])
    np.testing.assert_allclose(resample_track(points, 25, 30, 5)[:, 0, 0], [0, 25 / 30, 50 / 30, 2.5, 3])
