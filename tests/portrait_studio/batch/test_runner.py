"""Batches end to end: failure isolation, resume without re-rendering, SIGKILL mid-batch, summaries."""

import json
import os
import signal
import subprocess
import time

import psutil
import pytest
import yaml

from ..batch_utils import FAST, batch_cmd, batch_env, tree
from ..media_utils import probe_video

pytestmark = pytest.mark.slow


def job_file(folder, jobs, name="jobs.yaml"):
    path = folder / name
    path.write_text(yaml.safe_dump({"defaults": {"image": "face.png", **FAST}, "jobs": jobs}))
    return path


def run(*args, timeout=300):
    return subprocess.run(batch_cmd(*args), check=False, capture_output=True, text=True, timeout=timeout, env=batch_env())


def mtimes(out, names):
    return {n: (out / n).stat().st_mtime_ns for n in names}


def test_one_corrupt_input_fails_alone_and_reruns_skip(clips, tmp_path):
    jobs = [{"audio": "talk1.wav", "output": "c1.mp4"}, {"audio": "talk2.wav", "output": "c2.mp4", "seed": 3},
            {"audio": "corrupt.wav", "output": "c3.mp4"}, {"audio": "talk1.wav", "output": "sub/c4.mp4", "head_motion": 0},
            {"audio": "talk2.wav", "output": "c5.mkv"}]
    jobs_path = job_file(clips, jobs, "five.yaml")
    out = tmp_path / "out"
    first = run(jobs_path, "--out", out, "--workers", "2")
    assert first.returncode == 1, first.stderr
    assert "failed: row 3 (c3.mp4):" in first.stderr and "4 done, 1 failed" in first.stdout
    good = ["c1.mp4", "c2.mp4", "sub/c4.mp4", "c5.mkv"]
    assert tree(out) == sorted(good + ["summary.csv", "summary.json"])  # no partial or temporary file
    for name, seconds in zip(good, (1.2, 1.0, 1.2, 1.0), strict=True):
        probe = probe_video(out / name)
        assert (probe.width, probe.height, probe.audio_codec) == (224, 224, "aac")
        assert probe.frames == round(seconds * 15)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["counts"] == {"done": 4, "skipped": 0, "failed": 1, "cancelled": 0, "pending": 0}
    rows = {r["row"]: r for r in summary["jobs"]}
    assert rows[3]["status"] == "failed" and "corrupt.wav" in rows[3]["error"]
    assert all(rows[r]["status"] == "done" and rows[r]["seconds"] > 0 and rows[r]["engine"] == "warp"
               for r in (1, 2, 4, 5))
    csv_lines = (out / "summary.csv").read_text().splitlines()
    assert csv_lines[0].startswith("row,output,status,seconds") and len(csv_lines) == 6
    before = mtimes(out, good)

    second = run(jobs_path, "--out", out, "--workers", "2")
    assert second.returncode == 1 and "4 skipped, 1 failed" in second.stdout
    assert mtimes(out, good) == before  # nothing finished was rendered again
    assert [r["status"] for r in json.loads((out / "summary.json").read_text())["jobs"]] == \
        ["skipped", "skipped", "failed", "skipped", "skipped"]

    jobs[1]["seed"] = 4  # a changed option re-renders that job only
    jobs[2]["audio"] = "talk1.wav"  # the fixed input renders
    dry = run(job_file(clips, jobs, "five.yaml"), "--out", out, "--dry-run")
    assert "2 to run, 3 up to date" in dry.stdout
    third = run(jobs_path, "--out", out, "--workers", "1")
    assert third.returncode == 0 and "2 done, 3 skipped" in third.stdout
    after = mtimes(out, good)
    assert after["c2.mp4"] != before["c2.mp4"]
    assert {k: v for k, v in after.items() if k != "c2.mp4"} == {k: v for k, v in before.items() if k != "c2.mp4"}


def test_sigkill_mid_batch_loses_nothing(clips, tmp_path):
    names = [f"k{i}.mp4" for i in range(4)]
    jobs_path = job_file(clips, [{"audio": "talk1.wav" if i % 2 else "talk2.wav", "output": n, "seed": i}
                                 for i, n in enumerate(names)], "kill.yaml")
    out = tmp_path / "out"
    proc = subprocess.Popen(batch_cmd(jobs_path, "--out", out, "--workers", "1"), env=batch_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 240
        while not any((out / n).exists() for n in names):
            assert proc.poll() is None and time.monotonic() < deadline, "no output appeared"
            time.sleep(0.05)
        children = psutil.Process(proc.pid).children(recursive=True)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    _, alive = psutil.wait_procs(children, timeout=20)
    assert not alive, "worker processes outlived the killed batch"
    finished = [n for n in names if (out / n).exists()]
    assert 1 <= len(finished) < len(names)
    before = mtimes(out, finished)

    rerun = run(jobs_path, "--out", out, "--workers", "1")
    assert rerun.returncode == 0, rerun.stderr
    assert tree(out) == sorted(names + ["summary.csv", "summary.json"])  # each output once, no leftovers
    assert mtimes(out, finished) == before  # finished outputs were not rendered again
    statuses = {r["output"]: r["status"] for r in json.loads((out / "summary.json").read_text())["jobs"]}
    assert statuses == {n: "skipped" if n in finished else "done" for n in names}
    for n in names:
        assert probe_video(out / n).frames > 0


def test_sigterm_stops_cleanly_and_keeps_finished_outputs(clips, tmp_path):
    names = ["t0.mp4", "t1.mp4", "t2.mp4"]
    jobs_path = job_file(clips, [{"audio": "talk_long.wav" if i else "talk1.wav", "output": n, "seed": i,
                                  "size": 320, "fps": 25} for i, n in enumerate(names)], "term.yaml")
    out = tmp_path / "out"
    proc = subprocess.Popen(batch_cmd(jobs_path, "--out", out, "--workers", "1"), env=batch_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 240
        while not (out / names[0]).exists():
            assert proc.poll() is None and time.monotonic() < deadline, "no output appeared"
            time.sleep(0.05)
        children = psutil.Process(proc.pid).children(recursive=True)
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130
    assert stderr.strip().splitlines()[-1] == "error: interrupted; finished outputs are kept and a rerun resumes the batch"
    _, alive = psutil.wait_procs(children, timeout=20)
    assert not alive
    statuses = [r["status"] for r in json.loads((out / "summary.json").read_text())["jobs"]]
    assert statuses[0] == "done" and "cancelled" in statuses and "pending" not in statuses
    done = [n for n, s in zip(names, statuses, strict=True) if s == "done"]
    assert tree(out) == sorted(done + ["summary.csv", "summary.json"])
