"""Thread limits per render, and the warp engine's start-up without torch (portrait_studio/threads.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import cv2
import torch

from portrait_studio.threads import thread_limit

ROOT = Path(__file__).resolve().parents[2]


def test_thread_limit_sets_and_restores_torch_and_opencv():
    before_torch, before_cv2 = torch.get_num_threads(), cv2.getNumThreads()
    with thread_limit(1):
        assert torch.get_num_threads() == 1 and cv2.getNumThreads() == 1
    assert (torch.get_num_threads(), cv2.getNumThreads()) == (before_torch, before_cv2)
    with thread_limit(None):
        assert torch.get_num_threads() == before_torch


def test_a_warp_render_from_the_cli_never_loads_torch(tmp_path, portrait_path, speech_path):
    """torch costs about a second of start-up; the warp engine, the embedded drivers and the mux need none."""
    out = tmp_path / "out.mp4"
    code = (
        "import runpy, sys\n"
        f"sys.argv = ['portrait_studio', 'render', '--image', {str(portrait_path)!r}, '--audio', {str(speech_path)!r},"
        f" '-o', {str(out)!r}, '--duration', '1', '--size', '256', '--engine', 'warp']\n"
        "try:\n"
        "    runpy.run_module('portrait_studio', run_name='__main__')\n"
        "except SystemExit as exc:\n"
        "    assert exc.code in (0, None), exc.code\n"
        "print('torch loaded:', 'torch' in sys.modules)\n"
    )
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert out.stat().st_size > 0
    assert proc.stdout.strip().splitlines()[-1] == "torch loaded: False", proc.stdout
