"""Progress reporting: libraries call a `ProgressFn`; the CLI turns it into tqdm bars, the UI into a widget."""

from __future__ import annotations

from typing import Callable, Protocol


class ProgressFn(Protocol):
    def __call__(self, stage: str, done: int, total: int) -> None:
        """`stage` is a short label ("face", "driver", "render", ...); `done` of `total` units are finished."""


def no_progress(stage: str, done: int, total: int) -> None:
    """A ProgressFn that ignores everything."""


class TqdmProgress:
    """One tqdm bar per stage, on stderr; closes a stage's bar when it completes or the next begins.

    Bars appear once their stage has run for half a second.
    """

    def __init__(self, disable: bool = False) -> None:
        self._bars: dict[str, object] = {}
        self._disable = disable

    def __call__(self, stage: str, done: int, total: int) -> None:
        from tqdm import tqdm

        bar = self._bars.get(stage)
        if bar is None:
            for other in self._bars.values():
                other.close()
            # delay: a stage that ends (or fails) within half a second draws nothing, so a fast error
            # stays the only line on stderr
            bar = tqdm(total=total, desc=f"{stage:>8}", unit="f" if stage in ("render", "denoise") else "",
                       leave=True, disable=self._disable, dynamic_ncols=True, delay=0.5)
            self._bars = {stage: bar}
        if bar.total != total:
            bar.total = total
        bar.update(done - bar.n)  # tqdm rate-limits its redraws (mininterval)
        if done >= total:
            bar.close()

    def close(self) -> None:
        for bar in self._bars.values():
            bar.close()
        self._bars = {}


def scaled(progress: ProgressFn, stage: str) -> Callable[[int, int], None]:
    """Bind a stage name: returns f(done, total)."""
    return lambda done, total: progress(stage, done, total)
