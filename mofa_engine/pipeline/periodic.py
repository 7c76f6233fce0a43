"""Periodic sampling for videos of any length (MOFA paper §3.3, spec §7).

A clip of N frames is denoised as overlapping windows of `window_size` frames: every window is
frame 0 (the source portrait, the anchor) plus `window_size - 1` consecutive frames, with stride
`window_size // 2`. At every denoising step each window predicts its frames and the predictions of
the frames shared by several windows are averaged (plain mean); all windows use the same sigma.

The reference (`svdxt_pipeline_ctrlnet_loop.py`) plans windows as
`[(1 + s*i, s*i + W) for i < (N - W)//s + 1] + [(N - W + 1, N)]` (half-open ranges of the frames
after frame 0). We keep that plan exactly and fix its unhandled cases:
* N < W: the reference produces windows with negative starts; we use one shorter window (1, N).
* the last window is always appended, so it can duplicate the previous one (N = W, or
  (N - W) % s == 0); we drop the duplicate, which would only run the same window twice and give it
  double weight in the mean.
The tail is always covered: the last window ends at N.

Aggregation (spec §7): the first window contributes all its frames including frame 0; every later
window contributes only its frames after the anchor (its copy of frame 0 is discarded), so frame 0
comes from the first window alone. The mean is taken per frame over the windows covering it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Window:
    """One window: frame 0 plus frames `start .. end-1` of the clip."""

    start: int  # first frame after the anchor, >= 1
    end: int  # exclusive end, <= num_frames
    anchor_counts: bool  # whether this window's frame 0 enters the mean (first window only)

    @property
    def num_frames(self) -> int:
        """Frames the window processes, anchor included."""
        return 1 + self.end - self.start

    def frame_indices(self) -> list[int]:
        """Clip frame index of every window position: [0, start, ..., end-1]."""
        return [0, *range(self.start, self.end)]


def plan_windows(num_frames: int, window_size: int = 25, stride: int | None = None) -> list[Window]:
    """Windows covering a clip of `num_frames` frames (frame 0 included).

    Args:
        num_frames: N >= 2, frames of the clip including the source frame 0.
        window_size: W >= 2, frames per window including the anchor (MOFA: 25; 14 also works).
        stride: window step; default `window_size // 2` (the reference's 12 for W = 25).

    Returns:
        Windows in order; N <= W gives the single window (1, N).
    """
    if num_frames < 2:
        raise ValueError(f"num_frames must be >= 2 (frame 0 plus at least one), got {num_frames}")
    if window_size < 2:
        raise ValueError(f"window_size must be >= 2, got {window_size}")
    stride = window_size // 2 if stride is None else stride
    if stride < 1:
        raise ValueError(f"stride must be >= 1, got {stride}")
    if num_frames <= window_size:
        return [Window(1, num_frames, anchor_counts=True)]
    count = (num_frames - window_size) // stride + 1
    spans = [(1 + stride * i, stride * i + window_size) for i in range(count)]
    tail = (num_frames - window_size + 1, num_frames)
    if spans[-1] != tail:
        spans.append(tail)
    return [Window(s, e, anchor_counts=(i == 0)) for i, (s, e) in enumerate(spans)]


def coverage(windows: list[Window], num_frames: int) -> torch.Tensor:
    """How many windows contribute to each frame: long `[num_frames]`, every entry >= 1 for a valid plan."""
    counts = torch.zeros(num_frames, dtype=torch.long)
    for window in windows:
        counts[window.start : window.end] += 1
        counts[0] += int(window.anchor_counts)
    return counts


class WindowMean:
    """Per-step running sum of window predictions, averaged per frame (spec §7 aggregation).

    `like` fixes shape `[B, N, ...]`, device and dtype of the sum; the sum lives in float32.
    """

    def __init__(self, windows: list[Window], like: torch.Tensor):
        self.windows = windows
        num_frames = like.shape[1]
        counts = coverage(windows, num_frames)
        if bool((counts == 0).any()):
            raise ValueError(f"frames {torch.nonzero(counts == 0).flatten().tolist()} are in no window")
        shape = [1, num_frames] + [1] * (like.ndim - 2)
        self._inv_counts = (1.0 / counts.to(torch.float32)).reshape(shape).to(like.device)
        self._sum = torch.zeros(like.shape, dtype=torch.float32, device=like.device)

    def reset(self) -> None:
        self._sum.zero_()

    def add(self, window: Window, value: torch.Tensor) -> None:
        """Add one window's prediction `value [B, window.num_frames, ...]` (anchor first)."""
        index = torch.arange(window.start, window.end, device=value.device)
        self._sum.index_add_(1, index, value[:, 1:].to(torch.float32))
        if window.anchor_counts:
            self._sum[:, 0] += value[:, 0].to(torch.float32)

    def mean(self) -> torch.Tensor:
        """Per-frame mean `[B, N, ...]` float32 over the windows added since the last reset."""
        return self._sum * self._inv_counts
