"""Shared test set-up: one torch thread (tiny ops are ~50x slower oversubscribed), fixture paths."""

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.fixture(scope="session", autouse=True)
def _one_torch_thread():
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a hard dependency
        return
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def fixtures() -> Path:
    return FIXTURES


@pytest.fixture(scope="session")
def portrait_path() -> Path:
    return ROOT / "examples" / "portrait.png"


@pytest.fixture(scope="session")
def speech_path() -> Path:
    return ROOT / "examples" / "speech.wav"
