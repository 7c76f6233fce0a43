"""The interface both engines implement, and the cache that keeps their models between renders."""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Hashable, Protocol

import numpy as np
from landmark_drivers import LandmarkTrack

from ..controls import MotionControls
from ..errors import RenderCancelled
from ..portrait import Portrait
from ..progress import ProgressFn

logger = logging.getLogger(__name__)


class Engine(Protocol):
    """A way to turn a portrait and a landmark track into frames.

    `load` is called once before any frames (it may be slow: checkpoints), and again for every render
    (it must then return at once when nothing it depends on changed); `frames` yields uint8
    `[H, W, 3]` RGB frames one at a time, checking `cancel` at least once per frame (warp) or per
    denoising step (mofa) and raising `RenderCancelled` when it is set. `state_path` (beside the
    output) is where an engine may keep resumable progress (mofa: its denoising checkpoint); the
    Studio removes that file once the video is written or the render is cancelled.
    """

    name: str  # "warp" or "mofa"
    multiple: int  # both sides of the frame must be multiples of this many pixels
    threads: int | None  # torch/OpenCV/BLAS threads this engine runs best with; None = leave as they are
    reason: str  # why this engine was selected, one line for the user (set by `select_engine`)

    def load(self, progress: ProgressFn) -> None: ...

    def frames(self, portrait: Portrait, track: LandmarkTrack, controls: MotionControls, progress: ProgressFn,
               cancel: threading.Event | None, state_path: Path | None = None) -> Iterator[np.ndarray]: ...


def check_cancel(cancel: threading.Event | None) -> None:
    """Raise RenderCancelled when `cancel` is set."""
    if cancel is not None and cancel.is_set():
        raise RenderCancelled("the render was cancelled")


class ModelCache:
    """Loaded models by kind ("face", "mofa", "sadtalker"), each with the key of what it depends on.

    `get(kind, key, load)` returns the cached model when `key` equals the one it was loaded with;
    otherwise it releases the old model of that kind (so two MOFA pipelines never share memory) and
    loads anew. Models with a `close()` method are closed when released.
    """

    def __init__(self) -> None:
        self._models: dict[str, tuple[Hashable, Any]] = {}
        self._lock = threading.Lock()
        self.loads: dict[str, int] = {}  # how often each kind was loaded (for tests and benchmarks)

    def get(self, kind: str, key: Hashable, load: Callable[[], Any]) -> Any:
        with self._lock:
            entry = self._models.get(kind)
            if entry is not None and entry[0] == key:
                return entry[1]
            if entry is not None:
                logger.info("reloading %s (%r -> %r)", kind, entry[0], key)
                self._release(self._models.pop(kind)[1])
            model = load()
            self._models[kind] = (key, model)
            self.loads[kind] = self.loads.get(kind, 0) + 1
            return model

    def __contains__(self, kind: str) -> bool:
        return kind in self._models

    def close(self) -> None:
        """Release every model (idempotent)."""
        with self._lock:
            while self._models:
                _, (_, model) = self._models.popitem()
                self._release(model)

    @staticmethod
    def _release(model: Any) -> None:
        close = getattr(model, "close", None)
        if callable(close):
            with contextlib.suppress(Exception):
                close()
