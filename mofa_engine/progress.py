"""The progress callback the MOFA engine takes: `progress(stage, done, total)`.

The same contract as `portrait_studio.progress.ProgressFn` and `landmark_drivers.progress.ProgressFn`
(the libraries cannot import the app, so each names it once): `stage` is a short label ("flow",
"denoise", ...), `done` of `total` units are finished; `total` 0 means unknown.
"""

from __future__ import annotations

from collections.abc import Callable

ProgressFn = Callable[[str, int, int], None]


def no_progress(stage: str, done: int, total: int) -> None:
    """A ProgressFn that ignores everything."""
