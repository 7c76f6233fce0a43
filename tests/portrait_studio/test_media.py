import sys

import numpy as np
import pytest

from portrait_studio.errors import InputError
from portrait_studio.media import (
    AudioEncoder, VideoEncoder, atomic_output, check_output_path, load_audio, mux_audio, num_video_frames, probe_audio,
)

from .media_utils import make_audio, probe_video, read_frames


@pytest.mark.parametrize("ext,rate,channels", [
    (".wav", 16000, 1), (".mp3", 44100, 2), (".m4a", 48000, 2), (".ogg", 22050, 1), (".flac", 8000, 1),
])
def test_decodes_common_formats_to_mono_16k(tmp_path, ext, rate, channels):
    path = make_audio(tmp_path / f"a{ext}", seconds=1.5, rate=rate, channels=channels)
    info = probe_audio(path)
    assert info.duration == pytest.approx(1.5, abs=0.06)
    samples = load_audio(path, sample_rate=16000)
    assert samples.dtype == np.float32 and samples.ndim == 1
    assert len(samples) == pytest.approx(1.5 * 16000, abs=0.06 * 16000)
    # lavfi's sine has amplitude 1/8: RMS 0.125/sqrt(2) = 0.088, kept by every codec
    assert np.sqrt(np.mean(samples ** 2)) == pytest.approx(0.0884, rel=0.1)


def test_silent_audio_is_valid(tmp_path):
    samples = load_audio(make_audio(tmp_path / "s.wav", seconds=0.5, silent=True))
    assert len(samples) == 8000 and np.abs(samples).max() == 0


def test_missing_corrupt_and_non_audio_files(tmp_path, portrait_path):
    with pytest.raises(InputError, match="not found"):
        probe_audio(tmp_path / "nope.wav")
    corrupt = tmp_path / "corrupt.wav"
    corrupt.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunkjunkjunk" * 3)
    with pytest.raises(InputError):
        load_audio(corrupt)
    with pytest.raises(InputError):
        load_audio(portrait_path)  # an image is not audio
    text = tmp_path / "words.mp3"
    text.write_text("hello, I am not an mp3")
    with pytest.raises(InputError):
        load_audio(text)


def test_zero_length_audio(tmp_path):
    path = make_audio(tmp_path / "z.wav", seconds=0.0)
    with pytest.raises(InputError, match="zero-length|no audio"):
        load_audio(path)


def test_max_duration(tmp_path):
    path = make_audio(tmp_path / "long.wav", seconds=3.0)
    with pytest.raises(InputError, match="max-duration"):
        load_audio(path, max_duration=2.0)


def test_frame_count_rule():
    assert num_video_frames(7.1, 25) == 178 and num_video_frames(1.02, 25) == 26 and num_video_frames(0.001, 25) == 1


def test_encode_and_mux_h264_aac(tmp_path):
    audio = make_audio(tmp_path / "a.wav", seconds=1.0)
    raw, out = tmp_path / "v.mp4", tmp_path / "out.mp4"
    frames = [np.full((64, 96, 3), i * 10, np.uint8) for i in range(25)]
    with VideoEncoder(raw, 96, 64, fps=25) as enc:
        for f in frames:
            enc.write(f)
    mux_audio(raw, audio, out, duration=1.0)
    p = probe_video(out)
    assert (p.video_codec, p.audio_codec, p.pix_fmt) == ("h264", "aac", "yuv420p")
    assert (p.width, p.height, p.frames) == (96, 64, 25)
    assert p.duration == pytest.approx(1.0, abs=0.05)
    decoded = read_frames(out)
    assert abs(float(decoded[10].mean()) - 100) < 3  # the frames are the ones we wrote, in order


def _packets(path):
    import av

    with av.open(str(path)) as c:
        return [(p.stream.type, p.pts, p.duration, bytes(p)) for p in c.demux() if p.size]


@pytest.mark.parametrize("ext,rate,channels", [(".wav", 16000, 1), (".mp3", 48000, 2)])
def test_audio_encoded_ahead_muxes_the_same_packets(tmp_path, ext, rate, channels):
    audio = make_audio(tmp_path / f"a{ext}", seconds=1.5, rate=rate, channels=channels)
    raw = tmp_path / "v.mp4"
    with VideoEncoder(raw, 96, 64, fps=25) as enc:
        for i in range(30):
            enc.write(np.full((64, 96, 3), i * 8, np.uint8))
    mux_audio(raw, audio, tmp_path / "direct.mp4", duration=1.16)
    with AudioEncoder(audio, tmp_path / "a.m4a", 1.16) as ahead:
        mux_audio(raw, audio, tmp_path / "ahead.mp4", duration=1.16, encoded=ahead.wait())
    direct, copied = _packets(tmp_path / "direct.mp4"), _packets(tmp_path / "ahead.mp4")
    assert any(kind == "audio" for kind, *_ in direct) and copied == direct
    assert probe_video(tmp_path / "ahead.mp4").duration == pytest.approx(1.16, abs=0.05)


def test_audio_encoder_fails_loudly_and_stops(tmp_path):
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"not audio at all")
    with pytest.raises(RuntimeError, match="audio"):
        with AudioEncoder(bad, tmp_path / "a.m4a", 1.0) as ahead:
            ahead.wait()
    audio = make_audio(tmp_path / "a.wav", seconds=3.0)
    with AudioEncoder(audio, tmp_path / "b.m4a", 3.0) as ahead:
        pass  # left unfinished: stopped on exit
    assert ahead._proc.returncode is not None


def test_encoder_rejects_bad_frames(tmp_path):
    with pytest.raises(ValueError, match="even"):
        VideoEncoder(tmp_path / "x.mp4", 95, 64, fps=25)
    with VideoEncoder(tmp_path / "x.mp4", 96, 64, fps=25) as enc:
        with pytest.raises(ValueError, match="uint8"):
            enc.write(np.zeros((64, 96, 3), np.float32))
        enc.write(np.zeros((64, 96, 3), np.uint8))


def test_encoder_takes_strided_frames_and_a_frame_fits_its_pipe(tmp_path):
    # frames reach ffmpeg from their own memory (no bytes copy): a non-contiguous view must still arrive whole
    big = np.zeros((128, 384, 3), np.uint8)  # 192x128 frames: 72 KiB, more than a default pipe
    big[:, ::2] = [200, 40, 40]  # even columns red, odd ones black: the view of every other column is all red
    out = tmp_path / "v.mp4"
    with VideoEncoder(out, 192, 128, fps=25) as enc:
        if sys.platform.startswith("linux"):
            import fcntl  # the pipe holds a whole frame, so a write need not wait for ffmpeg to read it
            assert fcntl.fcntl(enc._proc.stdin.fileno(), fcntl.F_GETPIPE_SZ) >= 192 * 128 * 3
        for _ in range(3):
            enc.write(big[:, ::2])
    decoded = read_frames(out)
    assert decoded.shape == (3, 128, 192, 3)
    assert np.abs(decoded.astype(int) - [200, 40, 40]).max() < 12


def test_atomic_output_leaves_nothing_on_failure(tmp_path):
    out = tmp_path / "out.mp4"
    with pytest.raises(KeyboardInterrupt):
        with atomic_output(out) as tmp:
            tmp.write_bytes(b"half a video")
            raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []
    out.write_bytes(b"old")
    with pytest.raises(RuntimeError):
        with atomic_output(out) as tmp:
            tmp.write_bytes(b"new")
            raise RuntimeError("boom")
    assert out.read_bytes() == b"old" and len(list(tmp_path.iterdir())) == 1
    with atomic_output(out) as tmp:
        tmp.write_bytes(b"new")
    assert out.read_bytes() == b"new" and len(list(tmp_path.iterdir())) == 1


def test_check_output_path(tmp_path):
    assert check_output_path(tmp_path / "a.mp4") == tmp_path / "a.mp4"
    with pytest.raises(InputError, match="extension"):
        check_output_path(tmp_path / "a.gif")
    with pytest.raises(InputError, match="does not exist"):
        check_output_path(tmp_path / "missing" / "a.mp4")
    with pytest.raises(InputError, match="not writable"):
        check_output_path("/proc/a.mp4")
