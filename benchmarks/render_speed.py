"""Warp-engine speed and memory at 512x512, 25 fps.

Prints, per stage, seconds of video per second of compute (>= 1 means faster than real time), the
overall ratio, the warp engine's own cost per frame (flow + render), and the peak RSS of a 10 s render
vs a 60 s render (each in its own process, ffmpeg children included); then the wall time of the same
renders through the CLI (`python -m portrait_studio render`: process start, imports and all).
Targets: overall >= 1.0 (issue #2), CLI >= 5x real time for 60 s (issue #11); RSS(60 s) / RSS(10 s)
<= 1.2.

    python benchmarks/render_speed.py            # both durations, a summary table
    python benchmarks/render_speed.py --no-cli   # the stages only
    python benchmarks/render_speed.py --child 10 # one measurement as JSON (used by the parent)
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import wave
from collections import defaultdict
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from landmark_drivers.audio.audio_driver import AudioDriverOptions, drive_from_audio, num_output_frames  # noqa: E402
from landmark_drivers.rig import FaceRig  # noqa: E402
from portrait_studio import media  # noqa: E402
from portrait_studio.options import RenderOptions  # noqa: E402
from portrait_studio.drivers import DRIVER_RATE  # noqa: E402
from portrait_studio.studio import Studio  # noqa: E402
from portrait_studio.controls import MotionControls  # noqa: E402
from portrait_studio.engines.warp import build_flow  # noqa: E402
from mofa_engine.regions import face_region_mask  # noqa: E402
from mofa_engine.warp.raster import MapWindow  # noqa: E402
from mofa_engine.warp.warp_renderer import WarpRenderer  # noqa: E402

IMAGE = ROOT / "examples" / "portrait.png"
SPEECH = ROOT / "examples" / "speech.wav"


def looped_speech(seconds: float, path: Path) -> Path:
    """The bundled speech repeated to `seconds` (16-bit wav)."""
    samples = media.load_audio(SPEECH, 16000)
    reps = int(np.ceil(seconds * 16000 / len(samples)))
    clip = np.tile(samples, reps)[: int(seconds * 16000)]
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes((np.clip(clip, -1, 1) * 32767).astype("<i2").tobytes())
    return path


def encoder_peak_rss_mb(encoder: media.VideoEncoder) -> float:
    """The encoding ffmpeg's own peak RSS (VmHWM) while it still runs (ru_maxrss of children would
    report the forked Python's size instead)."""
    status = Path(f"/proc/{encoder.pid}/status").read_text()
    kb = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:"))
    return kb / 1024


def measure(seconds: float) -> dict:
    times: dict[str, float] = defaultdict(float)
    with tempfile.TemporaryDirectory() as tmp:
        audio = looped_speech(seconds, Path(tmp) / "speech.wav")
        out = Path(tmp) / "out.mp4"
        t0 = time.perf_counter()
        # closed here: a landmarker left to the interpreter's shutdown makes mediapipe print a TypeError
        with Studio(RenderOptions(engine="warp", size=512, fps=25)) as studio:
            portrait = studio.prepare(IMAGE)
        times["face analysis"] += time.perf_counter() - t0
        t0 = time.perf_counter()
        samples = media.load_audio(audio, DRIVER_RATE)
        duration = num_output_frames(len(samples), DRIVER_RATE, 25) / 25
        # as Studio.render: the output's AAC is encoded by a background ffmpeg while the driver runs
        audio_encoder = media.AudioEncoder(audio, Path(tmp) / "audio.m4a", duration)
        motion = drive_from_audio(samples, DRIVER_RATE, AudioDriverOptions(fps=25))
        times["audio driver"] += time.perf_counter() - t0
        t0 = time.perf_counter()
        track = FaceRig(portrait.face).track(motion)
        times["face rig"] += time.perf_counter() - t0
        t0 = time.perf_counter()
        flow = build_flow(portrait, track, MotionControls())
        renderer = WarpRenderer(portrait.image, track.reference, flow)
        times["flow (set-up)"] += time.perf_counter() - t0
        h, w = portrait.image.shape[:2]
        outside = face_region_mask(track.reference, h, w) < 0.5  # background: not face, hair or neck
        background = 0.0
        video = Path(tmp) / "video.mp4"
        with media.VideoEncoder(video, w, h, 25) as enc:
            for points in track.points:
                t0 = time.perf_counter()
                local, box = flow.backward_map_box(points)  # the map where it differs from the identity
                t1 = time.perf_counter()
                frame = renderer.finish(renderer.remap_box(local, box), points, MapWindow.fused(local, box))
                t2 = time.perf_counter()
                enc.write(frame)
                t3 = time.perf_counter()
                background += np.abs(frame.astype(np.int16) - portrait.image)[outside].mean() / 255
                times["flow"] += t1 - t0
                times["render"] += t2 - t1
                times["encode"] += t3 - t2
            ffmpeg_peak = encoder_peak_rss_mb(enc)
            t0 = time.perf_counter()
        times["encode"] += time.perf_counter() - t0  # ffmpeg finishing the stream
        t0 = time.perf_counter()
        media.mux_audio(video, audio, out, duration, encoded=audio_encoder.wait())
        times["mux"] += time.perf_counter() - t0
    rss_self = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"seconds": duration, "frames": track.num_frames, "times": dict(times),
            "background_motion": background / track.num_frames,
            "peak_rss_mb": rss_self, "peak_rss_ffmpeg_mb": ffmpeg_peak}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--child", type=float, help="measure one duration and print JSON")
    parser.add_argument("--durations", type=float, nargs=2, default=(10.0, 60.0))
    parser.add_argument("--no-cli", action="store_true", help="skip the CLI wall-time renders")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.child)))
        return 0
    results = []
    for seconds in args.durations:
        proc = subprocess.run([sys.executable, __file__, "--child", str(seconds)], capture_output=True,
                              text=True, check=True)
        results.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    for r in results:
        total = sum(r["times"].values())
        print(f"\n{r['seconds']:.0f} s of video, {r['frames']} frames at 512x512 (OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']})")
        print(f"  {'stage':<16}{'compute s':>10}{'video s / compute s':>22}")
        for stage, t in r["times"].items():
            print(f"  {stage:<16}{t:>10.2f}{r['seconds'] / t if t > 0 else float('inf'):>22.1f}")
        print(f"  {'overall':<16}{total:>10.2f}{r['seconds'] / total:>22.2f}   (target >= 1.0: real time)")
        per_frame = 1000 * (r["times"]["flow"] + r["times"]["render"]) / r["frames"]
        print(f"  warp engine per frame: flow + render {per_frame:.2f} ms")
        print(f"  peak RSS: python {r['peak_rss_mb']:.0f} MB, ffmpeg {r['peak_rss_ffmpeg_mb']:.0f} MB")
        print(f"  background motion outside face/hair/neck: {r['background_motion'] * 255:.2f}/255 (target < 2/255)")
    a, b = results
    ratio = b["peak_rss_mb"] / a["peak_rss_mb"]
    ratio_ff = b["peak_rss_ffmpeg_mb"] / a["peak_rss_ffmpeg_mb"]
    print(f"\npeak RSS {b['seconds']:.0f} s / {a['seconds']:.0f} s: python {ratio:.2f}, ffmpeg {ratio_ff:.2f}"
          "   (target <= 1.2)")
    if not args.no_cli:
        print("\nthrough the CLI (wall clock: process start, imports, every stage, the output file):")
        for seconds in args.durations:
            wall = cli_wall(seconds)
            print(f"  {seconds:.0f} s of video: {wall:.2f} s wall, {seconds / wall:.2f}x real time"
                  f"{'   (issue #11 target >= 5x)' if seconds >= 60 else ''}")
    return 0


def cli_wall(seconds: float) -> float:
    """Wall seconds of `python -m portrait_studio render` on the looped speech (warp engine, 512)."""
    with tempfile.TemporaryDirectory() as tmp:
        audio = looped_speech(seconds, Path(tmp) / "speech.wav")
        cmd = [sys.executable, "-m", "portrait_studio", "render", "--image", str(IMAGE), "--audio", str(audio),
               "-o", str(Path(tmp) / "out.mp4"), "--engine", "warp", "--size", "512", "--fps", "25"]
        t0 = time.perf_counter()
        subprocess.run(cmd, cwd=ROOT, capture_output=True, check=True)
        return time.perf_counter() - t0


if __name__ == "__main__":
    raise SystemExit(main())
