"""`python -m portrait_studio live`: the portrait follows a webcam, a microphone or a file in real time.

One input (`--webcam [N]`, `--mic [DEVICE]`, `--driving-video V`, `--audio A`; files play at real-time
pace), any of the outputs (`--window`, `--virtual-camera`, `-o rec.mp4`), `--stats` for one JSON line
of counters at the end. Missing devices or optional packages exit 2 with one line.
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
import threading
import time
from pathlib import Path

from ..errors import InputError
from .options import LiveOptions, live_option_specs

logger = logging.getLogger(__name__)


def add_live_parser(sub) -> argparse.ArgumentParser:
    """Add the `live` subcommand to an argparse subparsers object."""
    p = sub.add_parser("live", help="animate the portrait in real time from a webcam, a microphone or a file")
    p.add_argument("--image", required=True, type=Path, help="portrait photo (any format PIL reads)")
    src = p.add_argument_group("input (exactly one)").add_mutually_exclusive_group(required=True)
    src.add_argument("--webcam", nargs="?", const=0, type=int, metavar="N", help="camera index (default 0)")
    src.add_argument("--mic", nargs="?", const="", metavar="DEVICE",
                     help="microphone (name or index; default: the system's); needs the 'live' extra")
    src.add_argument("--driving-video", type=Path, help="a driving video played at real-time pace")
    src.add_argument("--audio", type=Path, help="speech played at real-time pace")
    out = p.add_argument_group("outputs")
    out.add_argument("--window", action="store_true", help="show a preview window (Esc or q closes it)")
    out.add_argument("--virtual-camera", action="store_true",
                     help="send frames to a virtual webcam (pyvirtualcam: OBS on Windows/macOS, v4l2loopback on Linux)")
    out.add_argument("-o", "--output", type=Path, help="record to this video (.mp4, .mov, .mkv), input audio aligned")
    out.add_argument("--stats", action="store_true",
                     help="print one JSON line at the end: frames, dropped, fps, latency_p50_ms, latency_p95_ms")
    for spec in live_option_specs():  # --fps, --size, --seed, --head-motion, ... from LiveOptions' fields
        default = f" (default {spec.default:g})" if isinstance(spec.default, float) else f" (default {spec.default})"
        p.add_argument(spec.flag, dest=spec.name, type=spec.kind, default=None, metavar=spec.metavar,
                       help=spec.help + default)
    p.add_argument("--duration", type=float, help="stop after this many seconds (webcam/mic; files stop at their end)")
    return p


def _options(args: argparse.Namespace) -> LiveOptions:
    driver = "video" if (args.webcam is not None or args.driving_video is not None) else "audio"
    values = {spec.name: getattr(args, spec.name) for spec in live_option_specs()}
    return LiveOptions(driver=driver, **{k: v for k, v in values.items() if v is not None}).validate()


def cmd_live(args: argparse.Namespace, cancel: threading.Event | None = None) -> int:
    """Run a live session from the parsed arguments; returns the exit status.

    cancel: set (the CLI's Ctrl-C/SIGTERM) to end the session normally: the recording is finished.
    """
    from ..studio import Studio
    from .sinks import RecordingSink, VirtualCameraSink, WindowSink
    from .sources import AudioFileSource, MicSource, VideoFileSource, WebcamSource

    options = _options(args)
    if not (args.window or args.virtual_camera or args.output or args.stats):
        raise InputError("live needs an output: --window, --virtual-camera, -o FILE and/or --stats")
    if args.duration is not None and not args.duration > 0:
        raise InputError(f"--duration must be positive, got {args.duration}")
    for flag, path in (("--driving-video", args.driving_video), ("--audio", args.audio)):
        if path is not None and not Path(path).is_file():
            raise InputError(f"{flag} file not found: {path}")
    sinks: list = []
    source = None
    with tempfile.TemporaryDirectory(prefix="portrait-live-") as tmp, Studio() as studio, \
            studio.live(args.image, options) as session:
        h, w = session.portrait.image.shape[:2]
        try:
            # outputs and the input device are opened before anything is read: failures are one line
            inputs = (args.image, args.audio, args.driving_video)
            recorder = RecordingSink(args.output, w, h, options.fps, inputs) if args.output else None
            sinks += [s for s in (recorder,) if s is not None]
            if args.virtual_camera:
                sinks.append(VirtualCameraSink(w, h, options.fps))
            window = WindowSink() if args.window else None
            sinks += [window] if window is not None else []
            if args.webcam is not None:
                source = WebcamSource(session, args.webcam)
            elif args.mic is not None:
                device = None if args.mic == "" else (int(args.mic) if args.mic.isdigit() else args.mic)
                source = MicSource(session, device, record_to=Path(tmp) / "mic.wav" if recorder else None)
            elif args.driving_video is not None:
                source = VideoFileSource(session, args.driving_video)
            else:
                source = AudioFileSource(session, args.audio)
            _run(session, source, sinks, window, args.duration, cancel)
            if recorder is not None:
                recorder.audio, recorder.audio_start = source.audio_path, source.audio_start
        except BaseException:
            if source is not None:
                source.stop()
            for sink in sinks:
                sink.abort()
            raise
        for sink in sinks:
            sink.close()
        stats = session.stats()
    if recorder is not None:
        print(f"wrote {args.output} ({recorder.frames} frames at {options.fps:g} fps)")
    if args.stats:
        print(json.dumps({k: v for k, v in stats.as_dict().items() if k != "inputs_dropped"}
                         | {"inputs_dropped": stats.inputs_dropped}))
    return 0


def _run(session, source, sinks: list, window, duration: float | None, cancel: threading.Event | None) -> None:
    """Start the source and hand every frame to the sinks until the input ends (or `cancel`, the window
    closing, `duration`)."""
    done = threading.Event()

    def watch() -> None:  # a cancel (Ctrl-C) or the duration ends the input; the session then ends too
        while not done.wait(0.05):
            if (cancel is not None and cancel.is_set()) or (duration and time.perf_counter() - started >= duration):
                logger.warning("stopping: finishing the outputs")
                source.stop()
                return

    started = time.perf_counter()
    source.start()
    watcher = threading.Thread(target=watch, name="live-watch", daemon=True)
    watcher.start()
    try:
        for frame in session.frames():
            for sink in sinks:
                sink.write(frame)
            if window is not None and window.closed:
                break
    finally:
        done.set()
        watcher.join()
    source.stop()
    for _ in session.frames():  # drain what the session still makes (it ends after source.stop())
        pass
    if source.error is not None:
        if isinstance(source.error, InputError):
            raise source.error
        raise RuntimeError(f"live input failed: {source.error}") from source.error
