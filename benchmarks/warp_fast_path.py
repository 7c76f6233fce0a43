"""The warp engine's per-frame cost (flow + render, 512x512) with and without the support-box fast path,
interleaved frame by frame in one process so that a shared machine's load hits both alike.

    python benchmarks/warp_fast_path.py              # the bundled portrait speaking the bundled speech
    python benchmarks/warp_fast_path.py --repeats 3

"whole image" is the previous computation (the field on every coarse node, the full map split into
map_x/map_y, the full remap); "support box" is what the engine runs now. Both give identical frames
(tests/mofa_engine/test_warp_fast_path.py); the script checks that too.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from landmark_drivers.audio.audio_driver import AudioDriverOptions, drive_from_audio  # noqa: E402
from landmark_drivers.rig import FaceRig  # noqa: E402
from mofa_engine.warp.analytic_flow import AnalyticFlow, AnalyticFlowOptions  # noqa: E402
from mofa_engine.warp.warp_renderer import WarpRenderer  # noqa: E402
from portrait_studio import media  # noqa: E402
from portrait_studio.options import RenderOptions  # noqa: E402
from portrait_studio.studio import Studio  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=1, help="passes over the clip (default 1)")
    args = parser.parse_args()
    with Studio(RenderOptions(engine="warp", size=512)) as studio:
        portrait = studio.prepare(ROOT / "examples" / "portrait.png")
    samples = media.load_audio(ROOT / "examples" / "speech.wav", 16000)
    track = FaceRig(portrait.face).track(drive_from_audio(samples, 16000, AudioDriverOptions(fps=25)))
    h, w = portrait.image.shape[:2]
    whole = AnalyticFlow(track.reference, h, w, options=AnalyticFlowOptions(support_only=False))
    box = AnalyticFlow(track.reference, h, w)
    old, new = WarpRenderer(portrait.image, track.reference, whole), WarpRenderer(portrait.image, track.reference, box)
    times = {"whole image": {"flow": [], "render": []}, "support box": {"flow": [], "render": []}}
    for _ in range(args.repeats):
        for points in track.points:
            t0 = time.perf_counter()
            map_x, map_y = whole.backward_map(points)
            t1 = time.perf_counter()
            a = old.finish(old.remap(map_x, map_y), points, map_x, map_y)
            t2 = time.perf_counter()
            fused, region = box.backward_map_box(points)
            t3 = time.perf_counter()
            b = new.finish(new.remap_box(fused, region), points, fused[..., 0], fused[..., 1])
            t4 = time.perf_counter()
            if not np.array_equal(a, b):
                raise SystemExit("error: the two paths gave different frames")
            for name, flow_s, render_s in (("whole image", t1 - t0, t2 - t1), ("support box", t3 - t2, t4 - t3)):
                times[name]["flow"].append(flow_s)
                times[name]["render"].append(render_s)
    print(f"{len(track.points) * args.repeats} frames at {w}x{h}, OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}, "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; identical frames")
    print(f"  {'path':<13}{'flow ms':>9}{'render ms':>11}{'total ms':>10}   (means per frame)")
    totals = {}
    for name, t in times.items():
        flow, render = 1000 * np.mean(t["flow"]), 1000 * np.mean(t["render"])
        totals[name] = flow + render
        print(f"  {name:<13}{flow:>9.2f}{render:>11.2f}{flow + render:>10.2f}")
    print(f"  speed-up {totals['whole image'] / totals['support box']:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
