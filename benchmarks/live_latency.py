"""Live mode at real-time pace: frame rate, drops, input-to-frame latency, memory, mouth quality.

Plays 60 s of input at real-time pace into a `LiveSession` (512x512, 25 fps) for each driver:

- video: the bundled driving clip (tests/fixtures/driving_carphone.mp4) looped to the duration;
- audio: the bundled speech (examples/speech.wav) looped to the duration, in 20 ms chunks.

Prints one row per driver: frames, dropped (% of the frames due), delivered fps, latency p50/p95
(from the input's arrival to the frame being ready; audio includes the driver's lookahead), RSS at
10 s and at the end (memory must stay flat), and for audio the correlation of the mouth aperture of
the live frames with the offline render's (mediapipe on both, first `--quality-seconds`).
Targets (issue #11): >= 25 fps with <= 1 % dropped; p95 <= 150 ms (video), <= 250 ms (audio);
aperture correlation >= 0.8.

    python benchmarks/live_latency.py                       # both drivers, 60 s each, 512x512
    python benchmarks/live_latency.py --seconds 20 --size 1024 --drivers audio
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from portrait_studio import media  # noqa: E402
from portrait_studio.live import LiveOptions  # noqa: E402
from portrait_studio.live.sources import AudioFileSource, VideoFileSource  # noqa: E402
from portrait_studio.options import RenderOptions  # noqa: E402
from portrait_studio.studio import Studio  # noqa: E402

IMAGE = ROOT / "examples" / "portrait.png"
SPEECH = ROOT / "examples" / "speech.wav"
DRIVING = ROOT / "tests" / "fixtures" / "driving_carphone.mp4"


def rss_mb() -> float:
    status = Path("/proc/self/status").read_text()
    return next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:")) / 1024


def looped(src: Path, seconds: float, out: Path) -> Path:
    """`src` repeated to `seconds` (stream copy for video, PCM for audio) with the bundled ffmpeg."""
    cmd = [media.ffmpeg_exe(), "-nostdin", "-v", "error", "-y", "-stream_loop", "-1", "-i", str(src), "-t",
           f"{seconds}"]
    cmd += ["-an", "-c:v", "libx264", "-preset", "veryfast", "-crf", "18"] if out.suffix == ".mp4" else ["-ac", "1"]
    subprocess.run(cmd + [str(out)], check=True)
    return out


def run(studio: Studio, driver: str, path: Path, size: int, fps: float) -> dict:
    rss = {}
    points = []
    options = LiveOptions(driver=driver, size=size, fps=fps)
    with studio.live(IMAGE, options) as session:
        source = VideoFileSource(session, path) if driver == "video" else AudioFileSource(session, path)
        start = time.perf_counter()
        source.start()
        for frame in session.frames():
            points.append((frame.index, frame.points))
            elapsed = time.perf_counter() - start
            if "10s" not in rss and elapsed >= 10:
                rss["10s"] = rss_mb()
        source.join()
        rss["end"] = rss_mb()
        stats = session.stats()
        due = stats.frames + stats.dropped
        return {"driver": driver, "size": size, "seconds": source.duration, **stats.as_dict(),
                "dropped_pct": 100.0 * stats.dropped / max(due, 1), "rss_10s_mb": rss.get("10s", 0.0),
                "rss_end_mb": rss["end"], "points": points, "portrait": session.portrait}


def aperture_correlation(result: dict, audio: Path, seconds: float) -> float:
    """Mouth aperture (mediapipe on the frames) of the live frames vs the offline render, first `seconds`."""
    sys.path.insert(0, str(ROOT))
    from landmark_drivers.audio.audio_driver import AudioDriverOptions, drive_from_audio
    from landmark_drivers.rig import FaceRig
    from mofa_engine.warp.analytic_flow import AnalyticFlow
    from mofa_engine.warp.warp_renderer import WarpRenderer
    from tests.portrait_studio.test_render_e2e import mouth_aperture

    portrait = result["portrait"]
    n = int(seconds * 25)
    samples = media.load_audio(audio, 16000)[: int(seconds * 16000)]
    track = FaceRig(portrait.face).track(drive_from_audio(samples, 16000, AudioDriverOptions(fps=25)))
    h, w = portrait.image.shape[:2]
    renderer = WarpRenderer(portrait.image, track.reference, AnalyticFlow(track.reference, h, w))
    shown = [(k, p) for k, p in result["points"] if k < min(n, track.num_frames)]  # frames by their index
    live = [renderer.render(p) for _, p in shown]  # the live frames, re-made from their landmarks
    offline = [renderer.render(track.points[k]) for k, _ in shown]
    return float(np.corrcoef(mouth_aperture(live), mouth_aperture(offline))[0, 1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60.0, help="input length (default 60)")
    parser.add_argument("--size", type=int, default=512, help="frame short side (default 512)")
    parser.add_argument("--fps", type=float, default=25.0)
    parser.add_argument("--drivers", nargs="+", default=["video", "audio"], choices=["video", "audio"])
    parser.add_argument("--quality-seconds", type=float, default=20.0, help="0 = skip the aperture measure")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp, Studio(RenderOptions(engine="warp")) as studio:
        for driver in args.drivers:
            src = looped(DRIVING, args.seconds, Path(tmp) / "driving.mp4") if driver == "video" else \
                looped(SPEECH, args.seconds, Path(tmp) / "speech.wav")
            result = run(studio, driver, src, args.size, args.fps)
            if driver == "audio" and args.quality_seconds > 0:
                result["aperture_r"] = aperture_correlation(result, src, min(args.quality_seconds, args.seconds))
            result.pop("points")
            result.pop("portrait")
            rows.append(result)
            print(json.dumps(result), flush=True)
    load = os.getloadavg()[0]
    print(f"\n{args.size}x{args.size}, {args.fps:g} fps, {args.seconds:g} s at real-time pace, "
          f"OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}, load average {load:.1f} on {os.cpu_count()} cores")
    print(f"  {'driver':<7}{'frames':>7}{'dropped':>9}{'fps':>7}{'p50 ms':>8}{'p95 ms':>8}{'RSS 10s/end MB':>16}{'aperture r':>12}")
    for r in rows:
        print(f"  {r['driver']:<7}{r['frames']:>7}{r['dropped_pct']:>8.1f}%{r['fps']:>7.1f}{r['latency_p50_ms']:>8.0f}"
              f"{r['latency_p95_ms']:>8.0f}{r['rss_10s_mb']:>9.0f}/{r['rss_end_mb']:<6.0f}"
              f"{r.get('aperture_r', float('nan')):>12.2f}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
