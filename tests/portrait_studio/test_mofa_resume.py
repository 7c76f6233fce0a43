"""A killed mofa render resumes from its denoising checkpoint (tiny tree, CPU, through the CLI).

The checkpoint sits beside the output (`<out>.resume.safetensors`), holds tensors and strings only
(safetensors), and is removed once the video is written or the render is cancelled.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from safetensors import safe_open

from portrait_studio import MofaOptions, RenderCancelled, RenderOptions, Studio
from tests.conftest import ROOT

from .media_utils import read_frames
from .test_mofa_app import SIZE, photo, render, speech, tree  # noqa: F401 (fixtures)

pytestmark = pytest.mark.slow

ARGS = ("--steps", "8", "--checkpoint-every", "2", "--seed", "7")


def saved_step(path) -> int:
    with safe_open(str(path), framework="pt") as handle:
        return int(handle.metadata()["step"])


def kill_after_first_checkpoint(tmp_path, tree, photo, audio, out):  # noqa: F811
    """Run the render in a subprocess and SIGKILL it as soon as a checkpoint is on disk."""
    state = out.with_name(out.name + ".resume.safetensors")
    cmd = [sys.executable, "-m", "portrait_studio", "render", "--image", str(photo), "--audio", str(audio),
           "-o", str(out), "--engine", "mofa", "--ckpt-dir", str(tree), "--device", "cpu", "--size", str(SIZE),
           "--window", "14", *ARGS]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 300
        while not state.exists():
            if proc.poll() is not None:
                pytest.fail(f"the render ended before its first checkpoint: {proc.stderr.read().decode()[-500:]}")
            assert time.monotonic() < deadline, "no checkpoint within 300 s"
            time.sleep(0.02)
        proc.kill()
    finally:
        proc.kill()
        proc.wait()
        proc.stderr.close()
    return state


def test_killed_render_resumes_to_the_same_frames(tmp_path, tree, photo, speech):  # noqa: F811
    code, reference = render(tmp_path, tree, photo, speech[0.8], *ARGS, name="reference.mp4")
    assert code == 0 and not (tmp_path / "reference.mp4.resume.safetensors").exists()

    out = tmp_path / "out.mp4"
    state = kill_after_first_checkpoint(tmp_path, tree, photo, speech[0.8], out)
    assert not out.exists() and state.exists()
    step = saved_step(state)
    assert 2 <= step <= 8 and step % 2 == 0

    code, _ = render(tmp_path, tree, photo, speech[0.8], *ARGS, "--resume", name="out.mp4")
    assert code == 0
    np.testing.assert_array_equal(read_frames(out), read_frames(reference))
    assert not state.exists()  # removed once the video is written
    # the killed process's half-written temporaries went too; nothing else is left
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mp4", "reference.mp4"]


def test_resume_refuses_a_checkpoint_of_other_options_and_cancel_removes_it(tmp_path, capsys, tree, photo,  # noqa: F811
                                                                           speech):  # noqa: F811
    out = tmp_path / "out.mp4"
    state = kill_after_first_checkpoint(tmp_path, tree, photo, speech[0.4], out)
    code, _ = render(tmp_path, tree, photo, speech[0.4], *ARGS[:4], "--seed", "8", "--resume", name="out.mp4")
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and err[-1].startswith("error: --resume: checkpoint out.mp4.resume.safetensors was written "
                                            "for other inputs or settings")
    assert state.exists() and not out.exists()  # the user decides what to do with it

    # cancelling a resumed render leaves nothing beside the output, the checkpoint included
    cancel = threading.Event()
    options = RenderOptions(engine="mofa", size=SIZE, ckpt_dir=tree, seed=7,
                            mofa=MofaOptions(steps=8, checkpoint_every=2, window=14, device="cpu", resume=True))

    def progress(stage, done, total):
        if stage in ("denoise", "render"):
            cancel.set()

    with Studio(options) as studio, pytest.raises(RenderCancelled):
        studio.render(photo, speech[0.4], out, progress=progress, cancel=cancel)
    leftovers = {p.name for p in tmp_path.iterdir()} - {"out.mp4"}
    assert not out.exists() and not state.exists()
    assert not any(name.startswith(".out.mp4.resume") for name in leftovers)
