"""`LiveSession`: timestamped camera frames or audio chunks in, timestamped portrait frames out.

A render thread runs the warp engine (and the audio driver); with video driving an analysis thread
beside it runs the face landmarker, so the two overlap. Callers push input from their capture
threads (never blocking) and read frames from `frames()`:

    with studio.live("portrait.png", LiveOptions(driver="audio")) as session:
        mic.on_chunk(lambda samples, t: session.push_audio(samples, t))
        for frame in session.frames():          # LiveFrame(index, t, image, latency_s)
            window.show(frame.image)

Output frame k shows stream time k / fps (the input's own clock). Video driving: frame k is made when
an input frame at or after k / fps has been analysed, with the latest motion (sample and hold); a
camera frame still waiting when a newer one arrives is skipped (`inputs_dropped`). Audio driving:
frame k is made when the audio reaches its end plus the driver's lookahead. Either way a frame more
than `max_lag_frames` behind real time is skipped when a newer one is ready (`dropped`), so the
session never falls behind; a consumer that does not keep up loses its oldest frames (also `dropped`).

Latency is measured per frame from the wall time its input arrived (video: the frame that drove it;
audio: the chunk holding the frame's middle) to the frame being ready.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from dataclasses import asdict, dataclass, replace
from typing import Callable, Iterator, Mapping

import numpy as np

from landmark_drivers.expressions import ExpressionTrack
from landmark_drivers.live import (MotionFrame, StreamingAudioDriver, StreamingAudioOptions, StreamingVideoDriver,
                                   StreamingVideoOptions)

from ..errors import InputError
from .options import LiveOptions
from .renderer import Direction, LiveRenderer

logger = logging.getLogger(__name__)

OUTPUT_QUEUE = 8  # frames waiting for the consumer before the oldest is dropped
LATENCY_WINDOW = 20000  # latencies kept for the percentiles (memory stays flat)


@dataclass(frozen=True)
class LiveFrame:
    """One output frame."""

    index: int  # frame number k: it shows stream time k / fps
    t: float  # stream seconds shown (k / fps)
    image: np.ndarray  # uint8 [H, W, 3] RGB, read-only
    points: np.ndarray  # float32 [68, 2]: the landmarks it was rendered at (output pixels)
    latency_s: float  # from its input's arrival to this frame being ready (wall seconds)


@dataclass(frozen=True)
class LiveStats:
    """Counters of a session so far."""

    frames: int  # frames delivered
    dropped: int  # output frames skipped (late, or the consumer did not keep up)
    inputs_dropped: int  # camera frames skipped because a newer one was already waiting
    fps: float  # delivered frames per wall second (first to last)
    latency_p50_ms: float  # median input-to-frame latency
    latency_p95_ms: float  # 95th percentile

    def as_dict(self) -> dict:
        return {k: (round(v, 2) if isinstance(v, float) else v) for k, v in asdict(self).items()}


class LiveSession:
    """A running live portrait (module docstring). Use as a context manager, or call `close()`.

    portrait: a prepared portrait (`image` uint8 [H, W, 3], `face` SourceFace), e.g. `Studio.prepare`.
    analyzer: a FaceAnalyzer for video driving (default: a new one, closed with the session).
    clock: wall-clock seconds (tests may pass a fake).
    """

    def __init__(self, portrait, options: LiveOptions | None = None, analyzer=None,
                 clock: Callable[[], float] = time.perf_counter) -> None:
        self.options = (options or LiveOptions()).validate()
        o = self.options
        self.portrait = portrait
        self._clock = clock
        self._renderer = LiveRenderer(portrait)
        self._renderer.direct(Direction(o.head_motion, o.expressiveness, o.articulation))
        if o.driver == "video":
            self._video_driver = StreamingVideoDriver(
                StreamingVideoOptions(smoothing=o.smoothing, expressiveness=min(o.expressiveness, 3.0),
                                      head_motion=min(o.head_motion, 3.0)), source=portrait.face, analyzer=analyzer)
            self._audio_driver = None
        else:
            self._video_driver = None
            self._audio_driver = StreamingAudioDriver(o.sample_rate, StreamingAudioOptions(
                fps=o.fps, seed=o.seed, head_motion=o.head_motion, expressiveness=o.expressiveness,
                articulation=o.articulation))
        self._cond = threading.Condition()
        self._video: tuple[np.ndarray, float, float] | None = None  # (rgb, t, arrival)
        self._audio: deque[tuple[np.ndarray, float]] = deque()  # (samples, arrival)
        self._audio_t0: float | None = None
        self._audio_pushed = 0  # samples
        self._arrivals: deque[tuple[float, float]] = deque()  # audio: (stream end time, arrival wall)
        self._ended = self._closed = False
        self._neutral = False
        self._out: queue.Queue = queue.Queue(OUTPUT_QUEUE)
        self._next_slot: int | None = None
        self._offset: float | None = None  # wall - stream time, smallest seen (the input clock's origin)
        self._counts = {"frames": 0, "dropped": 0, "inputs_dropped": 0}
        self._latencies: deque[float] = deque(maxlen=LATENCY_WINDOW)
        self._first_wall: float | None = None
        self._last_wall: float | None = None
        self._error: BaseException | None = None
        self._motions: deque[tuple[MotionFrame | None, float, float]] = deque()  # analysed camera frames
        self._analysis_done = False
        self._worker = threading.Thread(target=self._run, name="live-session", daemon=True)
        self._analyser = (threading.Thread(target=self._analyse, name="live-analysis", daemon=True)
                          if self._video_driver is not None else None)
        self._worker.start()
        if self._analyser is not None:
            self._analyser.start()

    # ------------------------------------------------------------------ input (any thread)
    def push_video(self, rgb: np.ndarray, t: float) -> None:
        """A camera frame (uint8 RGB [H, W, 3]) taken at stream time `t` s (increasing). Never blocks."""
        if self._video_driver is None:
            raise InputError("this live session is driven by audio; push_audio() instead")
        if not (isinstance(rgb, np.ndarray) and rgb.dtype == np.uint8 and rgb.ndim == 3 and rgb.shape[2] == 3):
            raise InputError("video frames must be uint8 RGB arrays [H, W, 3]")
        with self._cond:
            if self._video is not None:
                self._counts["inputs_dropped"] += 1
            self._video = (rgb, float(t), self._clock())
            self._cond.notify_all()

    def push_audio(self, samples: np.ndarray, t: float | None = None) -> None:
        """Mono float samples in [-1, 1] at `options.sample_rate`; `t` = stream time of the first sample
        (only the first chunk's is used: audio is continuous). Never blocks."""
        if self._audio_driver is None:
            raise InputError("this live session is driven by video; push_video() instead")
        samples = np.asarray(samples, dtype=np.float32).reshape(-1)
        with self._cond:
            if self._audio_t0 is None:
                self._audio_t0 = float(t) if t is not None else 0.0
            arrival = self._clock()
            self._audio_pushed += samples.size
            self._arrivals.append((self._audio_t0 + self._audio_pushed / self.options.sample_rate, arrival))
            self._audio.append((samples, arrival))
            self._cond.notify_all()

    def end(self) -> None:
        """No more input: the remaining frames are made, then `frames()` ends."""
        with self._cond:
            self._ended = True
            self._cond.notify_all()

    # ------------------------------------------------------------------ direction (any thread)
    def set_neutral(self) -> None:
        """Video driving: the face as it is now becomes the portrait's pose (from the next camera frame)."""
        with self._cond:
            self._neutral = True

    def direct(self, *, head_motion: float | None = None, expressiveness: float | None = None,
               articulation: float | None = None, sliders: Mapping[str, float] | None = None,
               keyframes: ExpressionTrack | None = None, clear_keyframes: bool = False) -> None:
        """Change the direction from the next frame on. `keyframes` start now (their t = 0 is the next
        frame); `sliders` (presets, blendshapes, angles) replace the held ones. Raises InputError."""
        current = self._renderer.direction
        changes: dict = {}
        for name, value, top in (("head_motion", head_motion, 3.0), ("expressiveness", expressiveness, 3.0),
                                 ("articulation", articulation, 2.0)):
            if value is not None:
                if not (np.isfinite(value) and 0 <= value <= top):
                    raise InputError(f"{name} must be between 0 and {top:g}, got {value}")
                changes[name] = float(value)
        if sliders is not None:
            changes["sliders"] = dict(sliders)
        if keyframes is not None:
            changes["keyframes"], changes["keyframes_start"] = keyframes, self._now_stream()
        elif clear_keyframes:
            changes["keyframes"] = None
        self._renderer.direct(replace(current, **changes))

    def _now_stream(self) -> float:
        """The stream time of the next frame to be made."""
        slot = self._next_slot if self._next_slot is not None else 0
        return slot / self.options.fps

    # ------------------------------------------------------------------ output
    def frames(self, timeout: float | None = None) -> Iterator[LiveFrame]:
        """Yield frames as they are made; ends after `end()` (all frames made) or `close()`.

        timeout: seconds to wait for one frame before raising TimeoutError (None = forever).
        Re-raises an error of the worker thread.
        """
        while True:
            try:
                item = self._out.get(timeout=timeout)
            except queue.Empty:
                raise TimeoutError(f"no live frame within {timeout} s") from None
            if item is None:
                self._put(None)  # later calls end at once too
                if self._error is not None:
                    raise self._error
                return
            yield item

    def stats(self) -> LiveStats:
        """The counters so far (thread-safe)."""
        with self._cond:
            lat = np.asarray(self._latencies, np.float64) * 1000.0
            frames = self._counts["frames"]
            span = (self._last_wall - self._first_wall) if frames > 1 else 0.0
            return LiveStats(frames=frames, dropped=self._counts["dropped"],
                             inputs_dropped=self._counts["inputs_dropped"],
                             fps=(frames - 1) / span if span > 0 else 0.0,
                             latency_p50_ms=float(np.percentile(lat, 50)) if lat.size else 0.0,
                             latency_p95_ms=float(np.percentile(lat, 95)) if lat.size else 0.0)

    def close(self) -> None:
        """Stop the worker (frames not yet made are discarded) and release the face analyzer."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._worker.join()
        if self._analyser is not None:
            self._analyser.join()
        if self._video_driver is not None:
            self._video_driver.close()

    def __enter__(self) -> "LiveSession":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ worker
    def _run(self) -> None:
        """Render thread: motions (video) or audio chunks in, frames out."""
        try:
            while True:
                with self._cond:
                    while not (self._closed or self._motions or self._audio or self._input_done()):
                        self._cond.wait()
                    if self._closed:
                        break
                    motions = list(self._motions)
                    self._motions.clear()
                    chunks = list(self._audio)
                    self._audio.clear()
                    done = self._input_done() and not self._motions and not self._audio
                for motion in motions:
                    self._on_motion(*motion)
                if chunks or (done and self._audio_driver is not None):
                    self._on_audio(chunks, done)
                if done or self._error is not None:
                    break
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer by frames()
            logger.exception("live session worker failed")
            self._error = exc
        finally:
            self._put(None)

    def _input_done(self) -> bool:
        """All input is in: video, once the analysis thread has finished; audio, once `end()` was called."""
        return self._analysis_done if self._video_driver is not None else self._ended

    def _analyse(self) -> None:
        """Analysis thread (video driving): camera frames -> motions, newest frame first, beside the render
        thread so that face analysis and rendering overlap."""
        try:
            while True:
                with self._cond:
                    while not (self._closed or self._video is not None or self._ended):
                        self._cond.wait()
                    if self._closed or (self._video is None and self._ended):
                        break
                    video, self._video = self._video, None
                    neutral, self._neutral = self._neutral, False
                rgb, t, arrival = video
                self._sync_driver_options()
                if neutral:
                    self._video_driver.set_neutral()
                motion = self._video_driver.push(rgb, t)
                with self._cond:
                    self._motions.append((motion, t, arrival))
                    self._cond.notify_all()
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer by frames()
            logger.exception("live session analysis failed")
            self._error = exc
        finally:
            with self._cond:
                self._analysis_done = True
                self._cond.notify_all()

    def _sync_driver_options(self) -> Direction:
        d = self._renderer.direction
        if self._video_driver is not None:
            o = self._video_driver.options
            if (o.head_motion, o.expressiveness) != (min(d.head_motion, 3.0), min(d.expressiveness, 3.0)):
                self._video_driver.with_options(replace(o, head_motion=min(d.head_motion, 3.0),
                                                        expressiveness=min(d.expressiveness, 3.0)))
        elif self._audio_driver is not None:
            self._audio_driver.with_options(head_motion=d.head_motion, expressiveness=d.expressiveness,
                                            articulation=d.articulation)
        return d

    def _on_motion(self, motion: MotionFrame | None, t: float, arrival: float) -> None:
        """Make the output frames whose time the camera frame at `t` (its motion) has reached."""
        fps = self.options.fps
        self._offset = arrival - t if self._offset is None else min(self._offset, arrival - t)
        if motion is None:
            return  # no face yet: nothing to show
        if self._next_slot is None:
            self._next_slot = int(np.ceil(t * fps - 1e-6))
        last = int(np.floor(t * fps + 1e-6))
        for k in range(self._next_slot, last + 1):
            due = self._offset + k / fps  # when slot k's moment happened, on the wall clock
            if k < last and self._late(due):
                self._counts["dropped"] += 1
                continue
            frame = MotionFrame(k / fps, motion.blendshapes, motion.rotation, motion.translation)
            self._emit(k, frame, arrival)
        self._next_slot = max(self._next_slot, last + 1)

    def _on_audio(self, chunks: list[tuple[np.ndarray, float]], ended: bool) -> None:
        self._sync_driver_options()
        driver, fps = self._audio_driver, self.options.fps
        motions: list[MotionFrame] = []
        for samples, _ in chunks:
            motions += driver.push(samples)
        if ended:
            motions += driver.finish()
        t0 = self._audio_t0 or 0.0
        for i, m in enumerate(motions):
            k = int(round(m.t * fps))
            self._next_slot = k + 1
            middle = t0 + (k + 0.5) / fps
            arrival = self._arrival(middle)
            ready = self._arrival(t0 + (k + 1) / fps + driver.lookahead_s, pop=False)
            if i < len(motions) - 1 and self._late(ready):
                self._counts["dropped"] += 1
                continue
            self._emit(k, MotionFrame(t0 + m.t, m.blendshapes, m.rotation, m.translation), arrival)

    def _arrival(self, t: float, pop: bool = True) -> float:
        """Wall time at which the audio at stream time `t` arrived (now, if it has not)."""
        with self._cond:
            while pop and len(self._arrivals) > 1 and self._arrivals[0][0] < t:
                self._arrivals.popleft()
            for end, wall in self._arrivals:
                if end >= t:
                    return wall
        return self._clock()

    def _late(self, due: float) -> bool:
        o = self.options
        return o.drop_late and self._clock() - due > (1.0 + o.max_lag_frames) / o.fps

    def _emit(self, k: int, motion: MotionFrame, arrival: float) -> None:
        points = self._renderer.pose(motion, self.options.fps)
        image = self._renderer.render(points)
        now = self._clock()
        frame = LiveFrame(index=k, t=k / self.options.fps if self._audio_driver is None else motion.t,
                          image=image, points=points, latency_s=now - arrival)
        with self._cond:
            self._counts["frames"] += 1
            self._latencies.append(frame.latency_s)
            self._first_wall = now if self._first_wall is None else self._first_wall
            self._last_wall = now
        self._put(frame)

    def _put(self, item: LiveFrame | None) -> None:
        # Without drop_late (files, tests: every frame wanted) a slow consumer holds the renderer back
        # instead of losing frames; with it, the oldest waiting frame gives way (counted as dropped).
        while not self.options.drop_late and not self._closed:
            try:
                self._out.put(item, timeout=0.1)
                return
            except queue.Full:
                continue
        while True:
            try:
                self._out.put_nowait(item)
                return
            except queue.Full:
                try:
                    self._out.get_nowait()
                    with self._cond:
                        self._counts["dropped"] += 1
                        self._counts["frames"] -= 1
                except queue.Empty:
                    pass
