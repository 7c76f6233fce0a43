"""Live outputs: a preview window, a virtual camera, a recording with the input's audio aligned.

Missing optional packages or devices raise InputError (one line) when the sink is opened, before
any input is read.
"""

from __future__ import annotations

import contextlib
import sys
import logging
from pathlib import Path

import numpy as np

from .. import media
from ..errors import InputError
from .session import LiveFrame

logger = logging.getLogger(__name__)


class Sink:
    """Takes every frame a session delivers; `close()` finishes (and may raise InputError)."""

    def write(self, frame: LiveFrame) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def close(self) -> None:
        pass

    def abort(self) -> None:
        self.close()


class WindowSink(Sink):
    """An OpenCV preview window (`cv2.imshow`); closing it (or Esc/q) sets `closed`."""

    TITLE = "Portrait Studio live"

    def __init__(self) -> None:
        import os

        import cv2

        if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
            # OpenCV's Qt backend aborts the process without a display: refuse before it is touched
            raise InputError("--window needs a display (neither DISPLAY nor WAYLAND_DISPLAY is set)")
        self._cv2 = cv2
        try:
            cv2.namedWindow(self.TITLE, cv2.WINDOW_AUTOSIZE)
        except cv2.error:
            raise InputError("--window needs a display (none found; is DISPLAY set?)") from None
        self.closed = False

    def write(self, frame: LiveFrame) -> None:
        cv2 = self._cv2
        cv2.imshow(self.TITLE, cv2.cvtColor(frame.image, cv2.COLOR_RGB2BGR))
        key = cv2.waitKey(1) & 0xFF
        if key in (27, ord("q")) or cv2.getWindowProperty(self.TITLE, cv2.WND_PROP_VISIBLE) < 1:
            self.closed = True

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._cv2.destroyWindow(self.TITLE)


class VirtualCameraSink(Sink):
    """A virtual webcam through `pyvirtualcam` (optional extra `live`): OBS Virtual Camera on Windows
    and macOS, v4l2loopback on Linux."""

    def __init__(self, width: int, height: int, fps: float) -> None:
        try:
            import pyvirtualcam
        except ImportError:
            raise InputError("the virtual camera (--virtual-camera) needs the optional 'live' extra: pip install "
                             "'portrait-studio[live]' (pyvirtualcam)") from None
        try:
            self._cam = pyvirtualcam.Camera(width=width, height=height, fps=fps, fmt=pyvirtualcam.PixelFormat.RGB)
        except Exception as exc:  # noqa: BLE001 - backends raise RuntimeError/OSError; one line for the user
            reason = " ".join(str(exc).split())[:200]
            raise InputError(f"no virtual camera device ({reason}); on Linux load v4l2loopback, on Windows/macOS "
                             "install OBS and start its virtual camera once (see README, live mode)") from None
        logger.info("virtual camera: %s", self._cam.device)

    def write(self, frame: LiveFrame) -> None:
        self._cam.send(np.ascontiguousarray(frame.image))

    def close(self) -> None:
        self._cam.close()


class RecordingSink(Sink):
    """An H.264 recording at the session's fps, frames placed by their index (a skipped frame repeats
    the previous one), the input's audio muxed from the first frame's stream time; atomic write."""

    def __init__(self, path: Path, width: int, height: int, fps: float, inputs: tuple = ()) -> None:
        self.path = media.check_output_path(path, inputs)  # never over an input file
        self.fps = float(fps)
        self._stack = contextlib.ExitStack()
        self._tmp_out = self._stack.enter_context(media.atomic_output(self.path))
        self._tmp_video = self._stack.enter_context(media.temporary_path(self.path, "video", ".mp4"))
        self._encoder = media.VideoEncoder(self._tmp_video, width, height, fps)
        self._first: LiveFrame | None = None
        self._last: LiveFrame | None = None
        self.audio: Path | None = None  # set before close(): the audio to mux
        self.audio_start = 0.0  # stream time of the audio's first sample

    def write(self, frame: LiveFrame) -> None:
        if self._first is None:
            self._first = frame
        elif self._last is not None:
            for _ in range(frame.index - self._last.index - 1):  # keep the timeline: repeat over gaps
                self._encoder.write(self._last.image)
        self._encoder.write(frame.image)
        self._last = frame

    @property
    def frames(self) -> int:
        return self._encoder.frames

    def close(self) -> None:
        """Finish the video, mux the audio from the first frame's time, rename onto the path."""
        try:
            if self._first is None:
                raise InputError("no frames were made, so nothing was recorded (was a face visible?)")
            self._encoder.close()
            duration = self._encoder.frames / self.fps
            offset = self._first.t - self.audio_start
            if self.audio is not None and offset > 1e-3:
                with media.temporary_path(self.path, "audio", ".wav") as cut:
                    _cut_audio(self.audio, cut, offset)
                    media.mux_audio(self._tmp_video, cut, self._tmp_out, duration)
            else:
                media.mux_audio(self._tmp_video, self.audio, self._tmp_out, duration)
        except BaseException:
            self._encoder.abort()
            self._stack.__exit__(*sys.exc_info())
            raise
        self._stack.close()

    def abort(self) -> None:
        self._encoder.abort()
        with contextlib.suppress(Exception):
            self._stack.__exit__(RuntimeError, RuntimeError("aborted"), None)


def _cut_audio(src: Path, dst: Path, offset: float) -> None:
    """Write `src` from `offset` seconds on as 16-bit mono wav at 48 kHz."""
    samples = media.load_audio(src, 48000)[int(round(offset * 48000)):]
    import wave

    with wave.open(str(dst), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(48000)
        w.writeframes((np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes())
