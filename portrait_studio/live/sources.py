"""Live inputs: a webcam, a microphone, or a file played at real-time pace, each feeding a session
from its own thread. Missing devices and missing optional packages raise InputError (one line).

    source = open_source(session, webcam=0)          # or mic="default", video_file=..., audio_file=...
    source.start(); ...; source.stop()
"""

from __future__ import annotations

import logging
import threading
import time
import wave
from pathlib import Path

import numpy as np

from .. import media
from ..errors import InputError
from .session import LiveSession

logger = logging.getLogger(__name__)

AUDIO_CHUNK_S = 0.02  # seconds per pushed audio chunk (a typical microphone block)


class Source:
    """A thread that pushes input into a session until the input ends or `stop()`; then `session.end()`."""

    audio_path: Path | None = None  # audio to put in a recording (a file, or what the microphone heard)
    audio_start: float = 0.0  # stream time of that audio's first sample

    def __init__(self, session: LiveSession) -> None:
        self.session = session
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._guarded, name=type(self).__name__, daemon=True)
        self.error: BaseException | None = None

    def start(self) -> "Source":
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop reading (the session is ended) and wait for the thread."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        self._close()

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    def _guarded(self) -> None:
        try:
            self._run()
        except BaseException as exc:  # noqa: BLE001 - reported by the caller after the session ends
            self.error = exc
        finally:
            self.session.end()

    def _run(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _close(self) -> None:
        pass

    def _pace(self, start_wall: float, t: float) -> bool:
        """Sleep until stream time `t` (real-time pace); False once stopped."""
        delay = start_wall + t - time.perf_counter()
        if delay > 0:
            return not self._stop.wait(delay)
        return not self._stop.is_set()


class VideoFileSource(Source):
    """A driving video played at real-time pace (frames pushed at their own timestamps)."""

    def __init__(self, session: LiveSession, path: Path) -> None:
        from landmark_drivers.video_driver import DrivingVideoError, probe_driving_video

        super().__init__(session)
        try:
            info = probe_driving_video(path)
        except DrivingVideoError as exc:
            raise InputError(str(exc)) from None
        self.path, self.duration = Path(path), info.duration
        self.audio_path = self.path if info.has_audio else None

    def _run(self) -> None:
        from landmark_drivers.video_driver import read_video_frames

        start = time.perf_counter()
        for t, rgb in read_video_frames(self.path):
            if not self._pace(start, t):
                return
            self.session.push_video(rgb, t)


class AudioFileSource(Source):
    """Speech played at real-time pace in `AUDIO_CHUNK_S` chunks."""

    def __init__(self, session: LiveSession, path: Path, max_duration: float = 600.0) -> None:
        super().__init__(session)
        self.samples = media.load_audio(path, session.options.sample_rate, max_duration=max_duration)
        self.path = self.audio_path = Path(path)
        self.duration = self.samples.size / session.options.sample_rate

    def _run(self) -> None:
        rate = self.session.options.sample_rate
        step = int(round(AUDIO_CHUNK_S * rate))
        start = time.perf_counter()
        for i in range(0, self.samples.size, step):
            if not self._pace(start, (i + step) / rate):  # a chunk is available once it has been "heard"
                return
            self.session.push_audio(self.samples[i:i + step], i / rate)


class WebcamSource(Source):
    """Frames from an OpenCV camera (`cv2.VideoCapture(index)`), timestamped on arrival."""

    def __init__(self, session: LiveSession, index: int) -> None:
        import cv2

        super().__init__(session)
        self._cap = cv2.VideoCapture(int(index))
        if not self._cap.isOpened():
            self._cap.release()
            raise InputError(f"no webcam at index {int(index)} (is a camera connected and free?)")
        ok, _ = self._cap.read()
        if not ok:
            self._cap.release()
            raise InputError(f"webcam {int(index)} opened but gives no frames")

    def _run(self) -> None:
        import cv2

        start = time.perf_counter()
        while not self._stop.is_set():
            ok, bgr = self._cap.read()
            if not ok:
                raise InputError("the webcam stopped giving frames")
            self.session.push_video(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), time.perf_counter() - start)

    def _close(self) -> None:
        self._cap.release()


class MicSource(Source):
    """A microphone through `sounddevice` (optional extra `live`); what it hears is kept in a wav
    for recordings."""

    def __init__(self, session: LiveSession, device: str | int | None, record_to: Path | None = None) -> None:
        super().__init__(session)
        sd = _sounddevice()
        try:
            sd.check_input_settings(device=device, channels=1, samplerate=session.options.sample_rate)
        except Exception as exc:  # noqa: BLE001 - PortAudio raises several types; one line for the user
            name = "the default microphone" if device is None else f"microphone {str(device)[:60]!r}"
            raise InputError(f"{name} is not available ({' '.join(str(exc).split())[:160]})") from None
        self._sd, self._device = sd, device
        self._wav = None
        if record_to is not None:
            self.audio_path = Path(record_to)
            self._wav = wave.open(str(record_to), "wb")
            self._wav.setnchannels(1)
            self._wav.setsampwidth(2)
            self._wav.setframerate(session.options.sample_rate)

    def _run(self) -> None:
        rate = self.session.options.sample_rate
        heard = [0]

        def callback(indata, frames, when, status) -> None:  # PortAudio's thread
            samples = np.asarray(indata[:, 0], np.float32)
            self.session.push_audio(samples, heard[0] / rate)
            heard[0] += frames
            if self._wav is not None:
                self._wav.writeframes((np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes())

        with self._sd.InputStream(device=self._device, channels=1, samplerate=rate,
                                  blocksize=int(AUDIO_CHUNK_S * rate), dtype="float32", callback=callback):
            self._stop.wait()

    def _close(self) -> None:
        if self._wav is not None:
            self._wav.close()
            self._wav = None


def _sounddevice():
    try:
        import sounddevice
    except ImportError:
        raise InputError("--mic needs the optional 'live' extra: pip install 'portrait-studio[live]' "
                         "(sounddevice)") from None
    except OSError:
        raise InputError("--mic needs the PortAudio library (Debian/Ubuntu: apt-get install libportaudio2)") from None
    return sounddevice
