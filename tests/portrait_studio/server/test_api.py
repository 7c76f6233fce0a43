"""The job API against a live uvicorn on 127.0.0.1: submit, poll, download, cancel, restart, bad uploads."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest

from portrait_studio import cli

from ..batch_utils import FAST, batch_env
from ..media_utils import probe_video

pytestmark = pytest.mark.slow


BILLION_LAUGHS = ("l0: &l0 [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]\n" + "".join(
    f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 10)}]\n" for i in range(1, 9)) + "keyframes: [*l8]\n").encode()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`python -m portrait_studio serve` in a subprocess; stop() ends it and every process it started."""

    def __init__(self, data: Path, *args: str) -> None:
        self.data, self.args = data, args
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None

    def start(self) -> "Server":
        cmd = [sys.executable, "-m", "portrait_studio", "serve", "--data", str(self.data), "--port", str(self.port),
               *self.args]
        self.proc = subprocess.Popen(cmd, env=batch_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 60
        while True:
            assert self.proc.poll() is None, self.proc.stderr.read().decode()
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.2)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        children = psutil.Process(self.proc.pid).children(recursive=True)
        self.proc.send_signal(sig)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        _, alive = psutil.wait_procs(children, timeout=20)
        for p in alive:
            p.kill()
        assert not alive, "worker processes outlived the server"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = Server(tmp_path_factory.mktemp("api"), "--workers", "1", "--max-upload-mb", "3").start()
    yield srv
    srv.stop()


def submit(srv, clips, audio="talk1.wav", options=None, files=None):
    parts = {"image": ("face.png", (clips / "face.png").read_bytes(), "image/png")}
    if audio:
        parts["audio"] = (audio, (clips / audio).read_bytes(), "audio/wav")
    parts.update(files or {})
    return httpx.post(f"{srv.url}/jobs", files=parts, data={"options": json.dumps(options or FAST)}, timeout=30)


def wait_for(srv, job_id, statuses, timeout=180, check=None):
    deadline = time.monotonic() + timeout
    while True:
        body = httpx.get(f"{srv.url}/jobs/{job_id}", timeout=10).json()
        if body["status"] in statuses and (check is None or check(body)):
            return body
        assert time.monotonic() < deadline, body
        time.sleep(0.1)


def test_submit_poll_download(server, clips, tmp_path):
    r = submit(server, clips)
    assert r.status_code == 202, r.text
    job_id = r.json()["id"]
    body = wait_for(server, job_id, ("done", "failed"))
    assert body == {"id": job_id, "status": "done", "stage": "mux", "progress": 1.0, "error": ""}
    video = httpx.get(f"{server.url}/jobs/{job_id}/video", timeout=30)
    assert video.status_code == 200 and video.headers["content-type"] == "video/mp4"
    (tmp_path / "v.mp4").write_bytes(video.content)
    probe = probe_video(tmp_path / "v.mp4")
    assert (probe.frames, probe.width, probe.audio_codec) == (18, 224, "aac")
    assert job_id in [j["id"] for j in httpx.get(f"{server.url}/jobs").json()]
    assert not list((server.data / "work").iterdir())


@pytest.mark.parametrize("kind, make, status, message", [
    ("image", lambda c: {"image": ("x.png", b"not an image at all", "image/png")}, 415, "image upload is not an image"),
    ("audio", lambda c: {"audio": ("x.wav", b"#EXTM3U\nfile:///etc/passwd\n", "audio/wav")}, 415,
     "not a recognised media file"),
    ("audio", lambda c: {"audio": ("x.wav", (c / "face.png").read_bytes(), "audio/wav")}, 415,
     "not a recognised media file"),
    ("expression", lambda c: {"expression": ("e.yaml", BILLION_LAUGHS, "text/yaml")}, 415,
     "expression upload: more than 200,000 values (document nodes)"),
    ("size", lambda c: {"audio": ("x.wav", b"RIFF" + bytes(4 * 2**20), "audio/wav")}, 413, "MiB upload limit"),
])
def test_bad_uploads_are_refused(server, clips, kind, make, status, message):
    jobs_before = set((server.data / "jobs").iterdir())
    files = make(clips)
    audio = None if "audio" in files else "talk1.wav"
    r = submit(server, clips, audio=audio, files=files)
    assert r.status_code == status and message in r.json()["detail"], r.text
    assert set((server.data / "jobs").iterdir()) == jobs_before  # nothing of a refused job is kept


@pytest.mark.parametrize("options, message", [
    ({"colour": "red"}, "unknown option 'colour'"),
    ({"trajectory": "/etc/passwd"}, "names a file on the server"),
    ({"fps": 1000}, "--fps must be between 1 and 120"),
    ({"head_motion": "lots"}, "--head-motion takes float, got 'lots'"),
    ([1, 2], "options must be a JSON object"),
])
def test_bad_options_are_refused(server, clips, options, message):
    r = submit(server, clips, options=options)
    assert r.status_code == 422 and message in r.json()["detail"], r.text


def test_missing_driver_unknown_job_and_unfinished_video(server, clips):
    r = submit(server, clips, audio=None)
    assert r.status_code == 422 and "send audio, driving_video or expression" in r.json()["detail"]
    assert httpx.get(f"{server.url}/jobs/nope").status_code == 404
    assert httpx.get(f"{server.url}/jobs/nope/video").status_code == 404
    assert httpx.delete(f"{server.url}/jobs/nope").status_code == 404


def test_cancel_running_and_queued_jobs(server, clips):
    slow = dict(FAST, size=320, fps=25)
    running = submit(server, clips, audio="talk_long.wav", options=slow).json()["id"]
    queued = submit(server, clips, audio="talk2.wav").json()["id"]
    wait_for(server, running, ("running",), check=lambda b: b["stage"] == "render" and b["progress"] < 0.6)
    assert httpx.get(f"{server.url}/jobs/{queued}").json()["status"] == "queued"
    r = httpx.delete(f"{server.url}/jobs/{queued}")
    assert r.status_code == 202 and r.json()["status"] == "cancelled"
    assert httpx.delete(f"{server.url}/jobs/{running}").status_code == 202
    body = wait_for(server, running, ("cancelled", "done", "failed"))
    assert body["status"] == "cancelled"
    assert httpx.get(f"{server.url}/jobs/{running}/video").status_code == 409
    assert httpx.delete(f"{server.url}/jobs/{running}").status_code == 409
    assert not list((server.data / "work").iterdir())
    assert not (server.data / "jobs" / running / "video.mp4").exists()


def test_openapi_documents_every_field(server):
    spec = httpx.get(f"{server.url}/openapi.json").json()
    body_ref = spec["paths"]["/jobs"]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]["$ref"]
    body = spec["components"]["schemas"][body_ref.rsplit("/", 1)[1]]
    assert set(body["properties"]) == {"image", "audio", "driving_video", "expression", "options"}
    assert all(p.get("description") for p in body["properties"].values())
    assert "head_motion" in body["properties"]["options"]["description"]
    status = spec["components"]["schemas"]["JobStatus"]["properties"]
    assert set(status) == {"id", "status", "stage", "progress", "error"}
    assert all(p.get("description") for p in status.values())
    params = [p for ops in spec["paths"].values() for op in ops.values() for p in op.get("parameters", [])]
    assert params and all(p.get("description") for p in params)


def test_restart_resumes_queued_and_interrupted_jobs(tmp_path, clips):
    srv = Server(tmp_path / "data", "--workers", "1").start()
    try:
        slow = dict(FAST, size=320, fps=25)
        first = submit(srv, clips, audio="talk_long.wav", options=slow).json()["id"]
        second = submit(srv, clips, audio="talk2.wav").json()["id"]
        wait_for(srv, first, ("running",), check=lambda b: b["stage"] == "render" and b["progress"] < 0.6)
        srv.stop(signal.SIGKILL)  # no clean-up code runs in the server
        srv.start()
        assert httpx.get(f"{srv.url}/jobs/{second}").json()["status"] in ("queued", "running", "done")
        for job_id in (first, second):
            assert wait_for(srv, job_id, ("done", "failed"))["status"] == "done"
            assert httpx.get(f"{srv.url}/jobs/{job_id}/video").status_code == 200
        assert not list((srv.data / "work").iterdir())
    finally:
        srv.stop()


def test_token_required_off_loopback_and_enforced(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("PORTRAIT_STUDIO_TOKEN", raising=False)
    code = cli.main(["serve", "--host", "0.0.0.0", "--data", str(tmp_path / "d")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("error: binding 0.0.0.0 (not loopback) needs a bearer")
    srv = Server(tmp_path / "data", "--token", "s3cret").start()
    try:
        assert httpx.get(f"{srv.url}/jobs").status_code == 401
        assert httpx.get(f"{srv.url}/jobs", headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert httpx.get(f"{srv.url}/jobs", headers={"Authorization": "Bearer s3cret"}).status_code == 200
        assert httpx.get(f"{srv.url}/health").status_code == 200
    finally:
        srv.stop()
    assert os.path.isdir(tmp_path / "data" / "jobs")
