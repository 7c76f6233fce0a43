"""One long-lived Studio (issue #7): model start-up paid once, and threads decided by the app.

Part 1, in this process: two renders of the same clip through one `Studio`. Prints each render's
model start-up (what `ModelCache` loads: the face landmarker for the warp engine) and wall time; the
second render must skip the start-up.

Part 2, in child processes: the same CLI render from a plain environment (no OMP_NUM_THREADS) and
with OMP_NUM_THREADS=1, alternating, median of `--repeats`. The app sets its own thread counts per
engine, so the ratio must be about 1.

    python benchmarks/studio_startup.py                   # 10 s clip, 3 repeats
    python benchmarks/studio_startup.py --seconds 29 --repeats 3
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from render_speed import looped_speech  # noqa: E402

from portrait_studio import RenderOptions, Studio  # noqa: E402
from portrait_studio.engines import ModelCache  # noqa: E402

IMAGE = ROOT / "examples" / "portrait.png"


class TimedCache(ModelCache):
    """A ModelCache that adds up the seconds spent loading models."""

    def __init__(self) -> None:
        super().__init__()
        self.load_seconds = 0.0

    def get(self, kind, key, load):
        def timed():
            start = time.perf_counter()
            try:
                return load()
            finally:
                self.load_seconds += time.perf_counter() - start

        return super().get(kind, key, timed)


def in_process(audio: Path, out_dir: Path) -> None:
    studio = Studio(RenderOptions(engine="warp"))
    studio.models = TimedCache()
    with studio:
        for i in (1, 2):
            before, start = studio.models.load_seconds, time.perf_counter()
            studio.render(IMAGE, audio, out_dir / f"render{i}.mp4")
            wall = time.perf_counter() - start
            print(f"render {i}: model start-up {studio.models.load_seconds - before:6.3f} s, wall {wall:6.2f} s")


def cli_seconds(audio: Path, out: Path, env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "portrait_studio", "render", "--image", str(IMAGE), "--audio", str(audio),
                    "-o", str(out), "--engine", "warp"], check=True, env=env, cwd=ROOT,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def threads(audio: Path, out_dir: Path, repeats: int) -> None:
    plain = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    one = {**plain, "OMP_NUM_THREADS": "1"}
    times: dict[str, list[float]] = {"plain shell": [], "OMP_NUM_THREADS=1": []}
    for _ in range(repeats):
        times["plain shell"].append(cli_seconds(audio, out_dir / "plain.mp4", plain))
        times["OMP_NUM_THREADS=1"].append(cli_seconds(audio, out_dir / "one.mp4", one))
    medians = {k: statistics.median(v) for k, v in times.items()}
    for name, value in medians.items():
        print(f"CLI render, {name:<18}: median {value:6.2f} s of {repeats} ({', '.join(f'{t:.2f}' for t in times[name])})")
    print(f"plain / OMP_NUM_THREADS=1 = {medians['plain shell'] / medians['OMP_NUM_THREADS=1']:.2f} (target ~1.0)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="clip length (the bundled speech, looped)")
    parser.add_argument("--repeats", type=int, default=3, help="CLI renders per environment")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        audio = looped_speech(args.seconds, tmp_path / "speech.wav")
        in_process(audio, tmp_path)
        threads(audio, tmp_path, args.repeats)


if __name__ == "__main__":
    main()
