"""SIGTERM and SIGHUP end a render like Ctrl-C; after SIGKILL the next render removes what was left."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import pytest

from portrait_studio import cli
from portrait_studio.limits import LIMITS

from .hardening_utils import ROOT, face_crop, short_audio

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGHUP"), reason="POSIX signals")


@pytest.fixture(scope="module")
def kit(tmp_path_factory):
    folder = tmp_path_factory.mktemp("signals")
    return {"image": face_crop(folder / "face.png"), "audio": short_audio(folder / "speech.wav", seconds=8.0)}


def _start(kit, out):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "portrait_studio", "render", "--image", str(kit["image"]), "--audio",
           str(kit["audio"]), "-o", str(out), "--size", "192", "--engine", "warp"]
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _wait_for_temporaries(proc, folder, timeout=240.0):
    """Block until the render writes frames (its temporary files exist beside the output)."""
    pattern = re.compile(rf"^\.out\.mp4\.ps{proc.pid}-")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"render ended before the signal: {proc.stderr.read().decode()}")
        if any(pattern.match(p.name) for p in folder.iterdir()):
            return
        time.sleep(0.05)
    proc.kill()
    pytest.fail("the render never started writing")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_sigterm_and_sighup_leave_the_old_output_and_nothing_else(tmp_path, kit, signum):
    out = tmp_path / "out.mp4"
    out.write_bytes(b"the previous render")
    proc = _start(kit, out)
    try:
        _wait_for_temporaries(proc, tmp_path)
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 128 + signum, err
    lines = [line for line in err.decode().splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: interrupted") and signal.Signals(signum).name in lines[0]
    assert out.read_bytes() == b"the previous render"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mp4"]


def test_after_sigkill_the_next_render_removes_only_its_own_stale_files(tmp_path, capsys, kit):
    out = tmp_path / "out.mp4"
    proc = _start(kit, out)
    try:
        _wait_for_temporaries(proc, tmp_path)
        proc.kill()
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    time.sleep(0.5)  # the orphaned ffmpeg sees its input close and exits
    left = [p for p in tmp_path.iterdir() if p.name.startswith(f".out.mp4.ps{proc.pid}-")]
    assert left, "SIGKILL runs no clean-up: its temporary files are still there"
    old = time.time() - LIMITS.stale_temp_age.value - 10
    for p in left:
        os.utime(p, (old, old))
    foreign = [tmp_path / ".out.mp4.mine.part.mp4", tmp_path / f".other.mp4.ps{proc.pid}-abcdefgh.part.mp4"]
    for p in foreign:
        p.write_bytes(b"not the studio's")
        os.utime(p, (old, old))
    young = tmp_path / f".out.mp4.ps{proc.pid}-young123.part.mp4"
    young.write_bytes(b"too young to prove stale")
    code = cli.main(["render", "--image", str(kit["image"]), "--audio", str(short_audio(tmp_path.parent / "s.wav", 0.4)),
                     "-o", str(out), "--size", "128", "--engine", "warp"])
    assert code == 0, capsys.readouterr().err
    assert not any(p.exists() for p in left)
    assert all(p.exists() for p in foreign) and young.exists()
