"""The One Euro filter (Casiez, Roussel & Vogel, CHI 2012): causal smoothing for noisy live signals.

A first-order low-pass whose cutoff rises with the signal's speed: still signals are smoothed hard
(jitter goes away), fast ones lightly (little lag). Per channel, at irregular timestamps:

    alpha(fc, dt) = 1 / (1 + 1 / (2 pi fc dt))
    dx_hat = lowpass(dx / dt, d_cutoff)
    fc     = min_cutoff + beta * |dx_hat|
    x_hat  = lowpass(x, fc)

Unlike the offline drivers' zero-phase Gaussians it never looks at a future sample.
"""

from __future__ import annotations

import numpy as np


def _alpha(cutoff: np.ndarray | float, dt: float) -> np.ndarray | float:
    return 1.0 / (1.0 + 1.0 / (2.0 * np.pi * cutoff * dt))


class OneEuroFilter:
    """Smooths a vector signal sample by sample.

    min_cutoff: Hz, the cutoff of a still signal (lower = smoother, more lag when it starts moving).
    beta: how fast the cutoff rises with speed (units of the signal per second; 0 = a plain low-pass).
    d_cutoff: Hz, the cutoff of the speed estimate.
    """

    def __init__(self, min_cutoff: float = 1.0, beta: float = 0.0, d_cutoff: float = 1.0) -> None:
        for name, value in (("min_cutoff", min_cutoff), ("d_cutoff", d_cutoff)):
            if not (np.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be positive, got {value}")
        if not (np.isfinite(beta) and beta >= 0):
            raise ValueError(f"beta must be >= 0, got {beta}")
        self.min_cutoff, self.beta, self.d_cutoff = float(min_cutoff), float(beta), float(d_cutoff)
        self.reset()

    def reset(self) -> None:
        """Forget the past: the next sample passes through unchanged."""
        self._t: float | None = None
        self._x: np.ndarray | None = None
        self._dx: np.ndarray | None = None

    def __call__(self, x: np.ndarray, t: float) -> np.ndarray:
        """Filter sample `x` (float [C] or scalar) taken at time `t` seconds (strictly increasing).

        Returns the smoothed float64 sample, same shape. A `t` not after the previous one returns the
        previous output (a duplicate frame carries no new information).
        """
        x = np.asarray(x, dtype=np.float64)
        if self._t is None or self._x is None:
            self._t, self._x, self._dx = float(t), x.copy(), np.zeros_like(x)
            return x.copy()
        dt = float(t) - self._t
        if not dt > 0:
            return self._x.copy()
        dx = (x - self._x) / dt
        self._dx = self._dx + _alpha(self.d_cutoff, dt) * (dx - self._dx)
        cutoff = self.min_cutoff + self.beta * np.abs(self._dx)
        self._x = self._x + _alpha(cutoff, dt) * (x - self._x)
        self._t = float(t)
        return self._x.copy()
