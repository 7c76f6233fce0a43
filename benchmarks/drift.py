"""Does the warp engine drift? Render 10 minutes of the bundled portrait speaking, then `evaluate` it.

    python benchmarks/drift.py                         # 10 min at 512x512, 25 fps; prints the drift table
    python benchmarks/drift.py --minutes 1 --size 256  # a quick look
    python benchmarks/drift.py --video out/long.mp4    # evaluate an existing render instead
    python benchmarks/drift.py --keep out/long.mp4 --json out/long.json --plot out/long.png

Targets (issue #12): colour ΔE2000 of every 5 s window against the first < 1 (face and background);
sharpness (CPBD) of every window within 5 % of the first. Exit status 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from render_speed import IMAGE, looped_speech  # noqa: E402

from portrait_studio import evaluation  # noqa: E402
from portrait_studio.options import RenderOptions  # noqa: E402
from portrait_studio.studio import Studio  # noqa: E402

MAX_DE = 1.0  # colour drift target, CIEDE2000
MAX_SHARPNESS_LOSS = 0.05  # CPBD within 5 % of the first window


def render(minutes: float, size: int, out: Path, work: Path) -> float:
    """Render `minutes` of looped speech to `out`; return the compute seconds."""
    audio = looped_speech(minutes * 60.0, work / "speech.wav")
    start = time.perf_counter()
    with Studio(RenderOptions(engine="warp", size=size, max_duration=minutes * 60.0 + 1)) as studio:
        studio.render(IMAGE, audio, out)
    return time.perf_counter() - start


def verdict(report: dict) -> tuple[bool, list[str]]:
    d = report["drift"]
    de = [v for v in d["color_de2000"] + d["color_de2000_background"] if v is not None]
    rel = [v for v in d["cpbd_relative"] if v is not None]
    lines = [f"windows: {len(d['window_start_s'])} of {d['window_s']:g} s",
             f"colour ΔE2000 face: max {max(d['color_de2000']):.3f}, "
             f"mean {sum(d['color_de2000']) / len(d['color_de2000']):.3f}",
             f"colour ΔE2000 background: max {max(d['color_de2000_background']):.3f}",
             f"CPBD: first window {d['cpbd'][0]:.4f}, relative min {min(rel):.4f} max {max(rel):.4f}",
             f"geometry (IOD): min {min(d['geometry']):.4f} max {max(d['geometry']):.4f}",
             f"background change frame-to-frame {report['background']['mad_mean']:.4f}/255, "
             f"vs frame 0 mean {report['background']['mad_vs_first_mean']:.4f}/255",
             f"lip sync ncc {report['lipsync']['ncc']:.3f} at lag {report['lipsync']['lag_frames']} frames",
             f"jitter accel energy {report['jitter']['accel_energy']}, max jump {report['jitter']['max_jump']}"]
    ok = max(de) < MAX_DE and min(rel) >= 1 - MAX_SHARPNESS_LOSS and max(rel) <= 1 + MAX_SHARPNESS_LOSS
    return ok, lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="length of the render (default 10)")
    parser.add_argument("--size", type=int, default=512, help="short side in pixels (default 512)")
    parser.add_argument("--video", type=Path, help="evaluate this video instead of rendering one")
    parser.add_argument("--keep", type=Path, help="keep the render here")
    parser.add_argument("--json", type=Path, help="write the evaluation JSON here")
    parser.add_argument("--plot", type=Path, help="write the evaluation plot here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        video = args.video
        if video is None:
            video = Path(tmp) / "drift.mp4"
            seconds = render(args.minutes, args.size, video, Path(tmp))
            print(f"rendered {args.minutes:g} min at {args.size}px in {seconds:.0f} s "
                  f"({args.minutes * 60 / seconds:.2f} s of video per s)", flush=True)
            if args.keep:
                shutil.copyfile(video, args.keep)
        start = time.perf_counter()
        report = evaluation.evaluate_video(video, evaluation.EvaluateOptions(image=IMAGE))
        print(f"evaluated {report['frames_measured']} frames in {time.perf_counter() - start:.0f} s", flush=True)
        if args.json:
            evaluation.write_json([report], args.json)
        if args.plot:
            evaluation.plot_reports([report], args.plot)
    ok, lines = verdict(report)
    print("\n".join(lines))
    print("targets met: colour ΔE < 1, CPBD within 5 %" if ok else "TARGETS MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
