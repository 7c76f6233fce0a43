"""One PNG that reads without the JSON: mouth vs loudness, drift per window, background change."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..media import atomic_output

LIPSYNC_SPAN_S = 20.0  # longer videos show their first this-many seconds of mouth vs loudness (else a blur)


def _norm(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float64)
    lo, hi = np.nanpercentile(x, 2), np.nanpercentile(x, 98)
    return np.clip((x - lo) / (hi - lo), 0, 1) if hi > lo else np.zeros_like(x)


def plot_reports(results: list[dict], path: str | Path) -> None:
    """Draw every video's curves into one PNG at `path` (matplotlib, Agg backend; written atomically)."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    n = len(results)
    fig, axes = plt.subplots(n + 3, 1, figsize=(12, 2.6 * (n + 3)), constrained_layout=True)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, r in enumerate(results):
        ax, s, name = axes[i], r["_series"], Path(r["video"]).name
        shown = s["times"] <= LIPSYNC_SPAN_S
        if not shown.all():
            name += f" (first {LIPSYNC_SPAN_S:g} s)"
        s = {k: np.asarray(v)[shown] for k, v in s.items() if k in ("times", "aperture", "loudness_db")}
        ax.plot(s["times"], _norm(s["aperture"]), color="tab:red", lw=1.2, label="mouth opening (inner lips / IOD)")
        if "loudness_db" in s:
            ax.plot(s["times"], _norm(s["loudness_db"]), color="tab:blue", lw=1.0, alpha=0.7,
                    label="audio loudness (dB per frame)")
            ls = r["lipsync"]
            ax.set_title(f"{name}: lip sync  ncc {ls['ncc']:.2f} at lag {ls['lag_frames']:+d} frames "
                         f"({ls['lag_ms']:+.0f} ms; > 0 = mouth late)", fontsize=10)
        else:
            ax.set_title(f"{name}: mouth opening (no audio)", fontsize=10)
        ax.set_ylabel("normalised")
        ax.set_xlabel("time (s)")
        ax.legend(loc="upper right", fontsize=8)
    ax_de, ax_sharp, ax_bg = axes[n], axes[n + 1], axes[n + 2]
    for i, r in enumerate(results):
        c, name, d = colours[i % len(colours)], Path(r["video"]).name, r["drift"]
        starts = np.asarray(d["window_start_s"]) + d["window_s"] / 2
        face = np.array([np.nan if v is None else v for v in d["color_de2000"]])
        back = np.array([np.nan if v is None else v for v in d["color_de2000_background"]])
        rel = np.array([np.nan if v is None else v for v in d["cpbd_relative"]])
        ax_de.plot(starts, face, "o-", color=c, label=f"{name}: face")
        ax_de.plot(starts, back, "s--", color=c, label=f"{name}: background")
        ax_sharp.plot(starts, rel, "o-", color=c, label=name)
        s = r["_series"]
        ax_bg.plot(s["times"], s["to_previous"], color=c, lw=0.8, label=f"{name}: frame to frame")
        ax_bg.plot(s["times"], s["to_first"], color=c, lw=0.8, ls="--", label=f"{name}: against frame 0")
    ax_de.axhline(1.0, color="grey", lw=0.8, ls=":")
    ax_de.set_title(f"colour drift: CIEDE2000 of each {results[0]['drift']['window_s']:g} s window's mean colour "
                    "against the first (1 = just noticeable)", fontsize=10)
    ax_de.set_ylabel("ΔE2000")
    ax_sharp.axhspan(0.95, 1.05, color="grey", alpha=0.15)
    ax_sharp.set_title("sharpness drift: CPBD of each window over the first (band: within 5 %)", fontsize=10)
    ax_sharp.set_ylabel("CPBD / first")
    ax_bg.set_title("background stillness: mean absolute change outside face, hair and neck", fontsize=10)
    ax_bg.set_ylabel("grey levels (0-255)")
    end = max(float(r["_series"]["times"][-1]) for r in results) + 1.0 / results[0]["file"]["fps"]
    for ax in (ax_de, ax_sharp, ax_bg):
        ax.set_xlim(0, end)
        ax.set_xlabel("time (s)")
        ax.legend(loc="upper right", fontsize=8)
    with atomic_output(path) as tmp:
        fig.savefig(tmp, format="png", dpi=90)
    plt.close(fig)
