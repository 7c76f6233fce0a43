"""The same batch on Ray actors: a local Ray with 2 CPUs, shut down (with every process it started) after."""

import json
import shutil
import tempfile

import psutil
import pytest
import yaml

from portrait_studio.batch import load_jobs, run_batch
from portrait_studio.batch.ray_executor import RayExecutor, local_runtime_env

from ..batch_utils import FAST, tree
from ..media_utils import probe_video

pytestmark = pytest.mark.slow


@pytest.fixture
def local_ray():
    ray = pytest.importorskip("ray")
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    # Ray's session files and logs go to a folder of the test's own (short: Ray's socket paths are limited)
    temp_dir = tempfile.mkdtemp(prefix="ray-", dir="/tmp")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, runtime_env=local_runtime_env(),
             _temp_dir=temp_dir)
    started = [p for p in psutil.Process().children(recursive=True) if p.pid not in before]
    try:
        yield ray
    finally:
        ray.shutdown()
        started += [p for p in psutil.Process().children(recursive=True) if p.pid not in before]
        _, alive = psutil.wait_procs(started, timeout=30)
        for p in alive:
            p.kill()
        shutil.rmtree(temp_dir, ignore_errors=True)
        assert not alive, f"Ray processes outlived the test: {[p.pid for p in alive]}"


def test_ray_batch_with_a_failure_and_resume(local_ray, clips, tmp_path):
    out = tmp_path / "out"
    jobs_path = clips / "ray.yaml"
    rows = [("talk1.wav", "r1.mp4", "warp"), ("talk2.wav", "r2.mp4", "warp"), ("corrupt.wav", "r3.mp4", "warp"),
            ("talk1.wav", "r4.mp4", "mofa")]
    jobs_path.write_text(yaml.safe_dump([{**FAST, "image": "face.png", "audio": audio, "output": output,
                                          "engine": engine} for audio, output, engine in rows]))
    jobs = load_jobs(jobs_path, out)
    with RayExecutor(workers=2) as executor:
        summary = run_batch(jobs, out, executor)
        assert [j.status for j in summary.jobs] == ["done", "done", "failed", "failed"]
        assert "needs a GPU and the Ray cluster has none" in summary.jobs[3].error  # mofa jobs ask for num_gpus=1
        assert executor._count["cpu"] == 2  # two actors, each with its own Studio
        again = run_batch(jobs, out, executor)
    assert [j.status for j in again.jobs] == ["skipped", "skipped", "failed", "failed"]
    assert local_ray.is_initialized()  # a Ray the executor did not start is left to its owner
    assert tree(out) == ["r1.mp4", "r2.mp4", "summary.csv", "summary.json"]
    assert probe_video(out / "r1.mp4").frames == 18 and probe_video(out / "r2.mp4").frames == 15
    assert json.loads((out / "summary.json").read_text())["counts"]["failed"] == 2
