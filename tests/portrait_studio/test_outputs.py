"""Output files: never an input, atomic, the mode a new file gets, stale temporaries of killed renders."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from portrait_studio import media
from portrait_studio.errors import InputError
from portrait_studio.limits import LIMITS
from portrait_studio.outputs import (
    atomic_output,
    remove_stale_temporaries,
    same_file,
    temporary_path,
)


def test_check_output_path_refuses_every_kind_of_same_file(tmp_path):
    video = tmp_path / "drive.mp4"
    video.write_bytes(b"driving video")
    link = tmp_path / "link.mp4"
    link.symlink_to(video)
    hard = tmp_path / "hard.mp4"
    os.link(video, hard)
    dotted = tmp_path / "sub" / ".." / "drive.mp4"
    (tmp_path / "sub").mkdir()
    for out in (video, link, hard, dotted):
        with pytest.raises(InputError, match="same file as the input"):
            media.check_output_path(out, inputs=(tmp_path / "face.png", video))
    # the input given through a link is caught too
    with pytest.raises(InputError, match="same file"):
        media.check_output_path(video, inputs=(link,))
    assert media.check_output_path(tmp_path / "new.mp4", inputs=(video, None)) == tmp_path / "new.mp4"
    assert video.read_bytes() == b"driving video"


def test_check_output_path_extensions_and_kinds(tmp_path):
    with pytest.raises(InputError, match="extension"):
        media.check_output_path(tmp_path / "a.png", extensions=(".npz",), what="--save-landmarks")
    (tmp_path / "d.mp4").mkdir()
    with pytest.raises(InputError, match="is a directory"):
        media.check_output_path(tmp_path / "d.mp4")
    os.mkfifo(tmp_path / "f.mp4")
    with pytest.raises(InputError, match="not a regular file"):
        media.check_output_path(tmp_path / "f.mp4")


def test_same_file():
    assert same_file("/tmp/../tmp/x", "/tmp/x")
    assert not same_file("/tmp/x", "/tmp/y")


def _mode(path) -> int:
    return os.stat(path).st_mode & 0o777


def test_new_output_gets_the_umask_mode_and_a_replaced_one_keeps_its_mode(tmp_path):
    old = os.umask(0o022)
    try:
        out = tmp_path / "out.mp4"
        with atomic_output(out) as tmp:
            tmp.write_bytes(b"one")
        assert _mode(out) == 0o644
        os.chmod(out, 0o640)
        with atomic_output(out) as tmp:
            tmp.write_bytes(b"two")
        assert _mode(out) == 0o640 and out.read_bytes() == b"two"
        os.umask(0o077)
        with atomic_output(tmp_path / "private.mp4") as tmp:
            tmp.write_bytes(b"x")
        assert _mode(tmp_path / "private.mp4") == 0o600
    finally:
        os.umask(old)


def test_failure_keeps_the_old_output_and_leaves_nothing(tmp_path):
    out = tmp_path / "out.mp4"
    out.write_bytes(b"old")
    with pytest.raises(KeyboardInterrupt):
        with atomic_output(out) as tmp, temporary_path(out, "video") as video:
            tmp.write_bytes(b"half")
            video.write_bytes(b"half")
            raise KeyboardInterrupt
    assert out.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mp4"]


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_stale_temporaries_removed_only_when_provably_ours(tmp_path):
    out = tmp_path / "out.mp4"
    dead, old = _dead_pid(), time.time() - LIMITS.stale_temp_age.value - 60
    stale = [tmp_path / f".out.mp4.ps{dead}-abcd1234.part.mp4", tmp_path / f".out.mp4.ps{dead}-zz_9zz00.video.mp4",
             tmp_path / f".out.mp4.ps{dead}-qqqqqqqq.audio.wav"]
    kept = {
        "young": tmp_path / f".out.mp4.ps{dead}-young000.part.mp4",
        "alive": tmp_path / f".out.mp4.ps{os.getppid()}-alive000.part.mp4",
        "other output": tmp_path / f".other.mp4.ps{dead}-abcd1234.part.mp4",
        "not our pattern": tmp_path / f".out.mp4.{dead}-abcd1234.part.mp4",
        "user file": tmp_path / "out.mp4.part.mp4",
    }
    for path in [*stale, *kept.values()]:
        path.write_bytes(b"x")
        if "young" not in path.name:
            os.utime(path, (old, old))
    removed = remove_stale_temporaries(out)
    assert sorted(removed) == sorted(stale)
    assert all(p.exists() for p in kept.values())
    # atomic_output runs the clean-up itself before writing
    for path in stale:
        path.write_bytes(b"x")
        os.utime(path, (old, old))
    with atomic_output(out) as tmp:
        tmp.write_bytes(b"new")
    assert not any(p.exists() for p in stale) and all(p.exists() for p in kept.values())


def test_temporary_names_match_the_stale_pattern(tmp_path):
    out = tmp_path / "clip.mkv"
    with atomic_output(out) as part, temporary_path(out, "video") as video, temporary_path(out, "audio", ".wav") as wav:
        names = [part.name, video.name, wav.name]
    prefix = f".clip.mkv.ps{os.getpid()}-"
    assert all(n.startswith(prefix) for n in names)
    assert names[0].endswith(".part.mkv") and names[1].endswith(".video.mkv") and names[2].endswith(".audio.wav")
