"""SadTalker-compatible driver: published layout at full size, strict loading, and the end-to-end track."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from landmark_drivers import LandmarkTrack
from landmark_drivers.sadtalker import (MissingSadTalkerFilesError, SadTalkerCheckpointError, SadTalkerDriver,
                                        SadTalkerOptions, required_files)
from landmark_drivers.sadtalker.bfm import project_landmarks
from landmark_drivers.sadtalker.driver import NETWORKS, load_networks
from landmark_drivers.sadtalker.mel import audio_features

from .test_sadtalker_fakes import fake_source, write_checkpoint, write_fake_bfm

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
SR = 16000


@pytest.fixture(scope="module")
def manifest() -> dict[str, list[int]]:
    return json.loads((FIXTURES / "manifests" / "manifest_sadtalker.json").read_text())


@pytest.mark.parametrize("prefix", sorted(NETWORKS))
def test_full_size_networks_match_the_published_manifest(prefix, manifest):
    with torch.device("meta"):
        net = NETWORKS[prefix]()
    got = {f"{prefix}.{k}": list(v.shape) for k, v in net.state_dict().items()}
    expected = {k: v for k, v in manifest.items() if k.startswith(f"{prefix}.")}
    assert got == expected
    counts = json.loads((FIXTURES / "param_counts.json").read_text())
    floats = sum(v.numel() for v in net.state_dict().values() if v.is_floating_point())  # params + BN statistics
    assert floats == counts[prefix]


@pytest.fixture(scope="module")
def ckpt_root(tmp_path_factory) -> Path:
    """A clone-layout checkpoint dir: seeded full-size random networks + a fake BFM with small bases."""
    root = tmp_path_factory.mktemp("clone")
    torch.manual_seed(0)
    nets = {name: cls().eval() for name, cls in NETWORKS.items()}
    write_checkpoint(root / "ckpts/sad_talker/SadTalker_V0.0.2_256.safetensors", nets)
    write_fake_bfm(root / "ckpts/sad_talker/BFM_Fitting", bases=0.02)
    return root


def test_checkpoint_loads_strictly_by_prefix_and_ignores_the_renderer(ckpt_root):
    path = ckpt_root / "ckpts/sad_talker/SadTalker_V0.0.2_256.safetensors"
    with safe_open(str(path), framework="pt") as handle:
        stored = {k: handle.get_tensor(k) for k in handle.keys()}
    nets = load_networks(path)
    for name, net in nets.items():
        state = net.state_dict()
        assert set(state) == {k[len(name) + 1:] for k in stored if k.startswith(f"{name}.")}
        for key, value in state.items():
            assert value.device.type == "cpu" and torch.equal(value, stored[f"{name}.{key}"]), key
        assert not net.training


def test_checkpoint_with_a_missing_or_misshapen_key_is_rejected(tmp_path):
    torch.manual_seed(0)
    state = {f"audio2exp.{k}": v for k, v in NETWORKS["audio2exp"]().state_dict().items()}
    del state["audio2exp.mapping1.bias"]
    save_file(state, str(tmp_path / "a.safetensors"))
    with pytest.raises(SadTalkerCheckpointError, match=r"'audio2exp\.'.*missing \(1\): mapping1\.bias"):
        load_networks(tmp_path / "a.safetensors")
    state["audio2exp.mapping1.bias"] = torch.zeros(65)
    save_file(state, str(tmp_path / "b.safetensors"))
    with pytest.raises(SadTalkerCheckpointError, match=r"wrong shape \(1\): mapping1\.bias \(65,\) != \(64,\)"):
        load_networks(tmp_path / "b.safetensors")


def test_missing_files_are_all_named_with_their_expected_paths(tmp_path):
    with pytest.raises(MissingSadTalkerFilesError) as info:
        SadTalkerDriver.from_checkpoint_dir(tmp_path)
    expected = [tmp_path / "ckpts/sad_talker/SadTalker_V0.0.2_256.safetensors",
                tmp_path / "ckpts/sad_talker/BFM_Fitting/BFM_model_front.mat",
                tmp_path / "ckpts/sad_talker/BFM_Fitting/similarity_Lm3D_all.mat"]
    assert isinstance(info.value, FileNotFoundError)
    assert list(info.value.missing) == expected
    for path in expected:
        assert str(path) in str(info.value)
    # a ckpts/-content folder (sad_talker/... directly) is accepted; only the absent files are named
    (tmp_path / "sad_talker").mkdir()
    (tmp_path / "sad_talker/SadTalker_V0.0.2_256.safetensors").write_bytes(b"x")
    assert required_files(tmp_path).weights == tmp_path / "sad_talker/SadTalker_V0.0.2_256.safetensors"
    with pytest.raises(MissingSadTalkerFilesError) as info:
        SadTalkerDriver.from_checkpoint_dir(tmp_path)
    assert list(info.value.missing) == expected[1:]


def speech_like(seconds: float, seed: int = 0) -> np.ndarray:
    """Amplitude-modulated harmonics + noise: syllable-like loudness changes at ~4 Hz."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    voice = sum(np.sin(2 * np.pi * f * t) / k for k, f in enumerate((140, 280, 420, 700, 1200), start=1))
    envelope = 0.5 + 0.5 * np.sin(2 * np.pi * 4.0 * t)
    return (0.2 * envelope * voice + 0.01 * rng.standard_normal(t.size)).astype(np.float32)


@pytest.fixture(scope="module")
def driver(ckpt_root) -> SadTalkerDriver:
    return SadTalkerDriver.from_checkpoint_dir(ckpt_root)


def test_end_to_end_track_is_finite_and_starts_at_the_portrait(driver):
    image, face = fake_source()
    samples = speech_like(1.2)  # 30 frames: the pose window is padded (29 motion frames < 32)
    track = driver.drive(samples, image, face, fps=25, pose_style=0, seed=0)
    assert isinstance(track, LandmarkTrack) and track.fps == 25.0
    assert track.points.shape == (30, 68, 2) and np.isfinite(track.points).all()
    np.testing.assert_array_equal(track.points[0], track.reference)
    np.testing.assert_array_equal(track.reference, face.landmarks68)
    motion = np.abs(track.points[1:] - track.reference).max(axis=(1, 2))
    assert (motion > 1e-3).all() and motion.max() < 100.0  # moves, and stays on the face
    again = driver.drive(samples, image, face, fps=25, pose_style=0, seed=0)
    np.testing.assert_array_equal(again.points, track.points)  # seeded: reproducible


def test_frame_k_shows_audio_frame_k(driver):
    """The reference lags by one frame; here landmark k is built from audio frame k's expression."""
    image, face = fake_source()
    samples = speech_like(0.8, seed=3)
    still = SadTalkerDriver(driver.audio2exp, driver.audio2pose, driver.face_recon, driver.bfm, driver.template,
                            SadTalkerOptions(blinks=False, head_motion=0.0))
    track = still.drive(samples, image, face, seed=1)
    source, alignment = still.source_coefficients(image, face)
    mels = torch.from_numpy(audio_features(samples))
    exp = still.audio2exp.predict(mels, torch.from_numpy(source[80:144]).float(), torch.zeros(len(mels)))
    coeffs = np.repeat(source[None], len(mels), axis=0)
    coeffs[:, 80:144] = exp.double().numpy()
    projected = alignment.to_image(project_landmarks(coeffs, still.bfm))
    source_bfm = alignment.to_image(project_landmarks(source[None], still.bfm))[0]
    expected = face.landmarks68 + (projected - source_bfm)
    np.testing.assert_allclose(track.points[1:], expected[1:], atol=1e-3)
    assert np.abs(track.points[1:] - expected[:-1]).max() > 1e-3  # not the lagged alignment


def test_other_frame_rates_and_the_bfm_anchor(driver):
    image, face = fake_source()
    samples = speech_like(1.0)
    track30 = driver.drive(samples, image, face, fps=30, seed=0)
    assert track30.points.shape == (30, 68, 2) and track30.fps == 30.0
    track25 = driver.drive(samples, image, face, fps=25, seed=0)
    np.testing.assert_allclose(track30.points[6], track25.points[5], atol=1e-4)  # t = 0.2 s in both
    np.testing.assert_allclose(track30.points[3], (track25.points[2] + track25.points[3]) / 2, atol=1e-4)

    bfm_driver = SadTalkerDriver(driver.audio2exp, driver.audio2pose, driver.face_recon, driver.bfm,
                                 driver.template, SadTalkerOptions(anchor="bfm"))
    absolute = bfm_driver.drive(samples, image, face, seed=0)
    np.testing.assert_array_equal(absolute.points[0], absolute.reference)
    assert np.abs(absolute.reference - face.landmarks68).max() > 1.0  # the projected fit, not the detection
    np.testing.assert_allclose(absolute.points - absolute.reference, track25.points - track25.reference, atol=1e-3)


def test_short_audio_gives_a_still_track_and_bad_inputs_are_rejected(driver):
    image, face = fake_source()
    still = driver.drive(np.zeros(300, np.float32), image, face)
    assert still.points.shape == (1, 68, 2)
    np.testing.assert_array_equal(still.points[0], face.landmarks68)
    samples = speech_like(0.5)
    with pytest.raises(ValueError, match="pose_style"):
        driver.drive(samples, image, face, pose_style=46)
    with pytest.raises(ValueError, match=r"\(320, 320\)"):
        driver.drive(samples, image[:200], face)
    with pytest.raises(ValueError, match="NaN"):
        driver.drive(np.full(1000, np.nan, np.float32), image, face)
    with pytest.raises(ValueError, match="head_motion"):
        SadTalkerOptions(head_motion=-1.0)
    assert dataclasses.is_dataclass(SadTalkerOptions) and SadTalkerOptions.__dataclass_params__.frozen
