"""Batch throughput: jobs per minute with 1 and with 2 local workers on short clips (warp engine).

Each run renders the same `--jobs` jobs (the bundled portrait speaking `--seconds` s cuts of the
bundled speech, a different seed per job) into a fresh folder through `run_batch` and a
`LocalExecutor`, and prints the wall time (worker start-up included) and jobs per minute. Runs
alternate between the worker counts, `--repeats` times; the median is reported.

    python benchmarks/batch_throughput.py                       # 8 jobs of 2 s at 256 px, 1 vs 2 workers
    python benchmarks/batch_throughput.py --jobs 12 --workers 1 2 4 --repeats 3
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

os.environ.setdefault("OMP_NUM_THREADS", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from portrait_studio.batch import LocalExecutor, load_jobs, run_batch  # noqa: E402 - after sys.path
from portrait_studio.media import ffmpeg_exe  # noqa: E402


def make_inputs(folder: Path, jobs: int, seconds: float, size: int) -> Path:
    """Audio cuts and a job file in `folder`; returns the job file."""
    speech = ROOT / "examples" / "speech.wav"
    lines = []
    for i in range(jobs):
        clip = folder / f"cut{i}.wav"
        start = (i * 0.7) % 4.5
        subprocess.run([ffmpeg_exe(), "-v", "error", "-y", "-ss", f"{start:.2f}", "-i", str(speech), "-t",
                        str(seconds), str(clip)], check=True)
        lines.append(f"  - {{audio: {clip.name}, seed: {i}, output: clip{i}.mp4}}")
    job_file = folder / "jobs.yaml"
    job_file.write_text(f"defaults: {{image: {ROOT / 'examples' / 'portrait.png'}, engine: warp, size: {size}, "
                        "language: acoustic}\njobs:\n" + "\n".join(lines) + "\n")
    return job_file


def one_run(job_file: Path, workers: int) -> tuple[float, float]:
    """(wall seconds of one batch with fresh workers and a fresh output folder, mean seconds per job)."""
    with tempfile.TemporaryDirectory(prefix="bench-batch-") as out:
        jobs = load_jobs(job_file, out)
        start = time.perf_counter()
        with LocalExecutor(workers=workers) as executor:
            summary = run_batch(jobs, out, executor)
        seconds = time.perf_counter() - start
        if not summary.ok:
            raise SystemExit(f"batch failed: {[j.error for j in summary.jobs if j.error]}")
    return seconds, sum(j.seconds for j in summary.jobs) / len(summary.jobs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=8, help="jobs per batch (default 8)")
    ap.add_argument("--seconds", type=float, default=2.0, help="clip length in seconds (default 2)")
    ap.add_argument("--size", type=int, default=256, help="output size in pixels (default 256)")
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="worker counts to compare")
    ap.add_argument("--repeats", type=int, default=1, help="runs per worker count (median reported)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-inputs-") as tmp:
        job_file = make_inputs(Path(tmp), args.jobs, args.seconds, args.size)
        times: dict[int, list[float]] = {w: [] for w in args.workers}
        per_job: dict[int, list[float]] = {w: [] for w in args.workers}
        for _ in range(args.repeats):
            for w in args.workers:
                wall, job_seconds = one_run(job_file, w)
                times[w].append(wall)
                per_job[w].append(job_seconds)
    print(f"{args.jobs} jobs of {args.seconds:g} s at {args.size} px (warp), os.cpu_count()={os.cpu_count()}, "
          f"OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}, load average {os.getloadavg()[0]:.1f}")
    base = None
    for w in args.workers:
        wall = statistics.median(times[w])
        rate = args.jobs / wall * 60
        base = base or rate
        print(f"workers {w}: {wall:6.1f} s wall (start-up included), {rate:5.1f} jobs/min, x{rate / base:.2f}; "
              f"{statistics.median(per_job[w]):.2f} s per job inside a worker")


if __name__ == "__main__":
    main()
