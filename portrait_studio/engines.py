"""Engine selection and the warp engine's frame stream.

`auto` picks `mofa` when its checkpoints verify and a GPU is present, otherwise `warp`, and says which.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from .ckpts import check_ckpts
from .errors import InputError, MissingCheckpointsError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class EngineChoice:
    name: str  # "warp" or "mofa"
    reason: str  # one line for the user


def cuda_available() -> bool:
    try:
        import torch

        return bool(torch.cuda.is_available())
    except ImportError:  # pragma: no cover
        return False


def select_engine(requested: str, ckpt_dir: Path | None) -> EngineChoice:
    """Resolve `auto`; for an explicit `mofa`, fail naming the missing checkpoint files."""
    if requested == "warp":
        return EngineChoice("warp", "engine warp (requested)")
    report = check_ckpts(ckpt_dir, deep=False)
    if requested == "mofa":
        if not report.ok:
            missing = ", ".join(str(f.path) for f in report.problems[:3])
            more = f" and {len(report.problems) - 3} more" if len(report.problems) > 3 else ""
            raise MissingCheckpointsError(
                f"--engine mofa needs the MOFA-Video checkpoints in {report.root}; missing: {missing}{more} "
                "(run `python -m portrait_studio check-ckpts` for the full list, or `download`)")
        return EngineChoice("mofa", "engine mofa (requested)")
    if not report.ok:
        return EngineChoice("warp", f"engine warp (auto: MOFA checkpoints not found in {report.root})")
    if not cuda_available():
        return EngineChoice("warp", "engine warp (auto: MOFA checkpoints found but no GPU)")
    deep = check_ckpts(ckpt_dir, deep=True)  # keys and shapes from the headers: cheap next to a render
    if not deep.ok:
        bad = deep.problems[0]
        return EngineChoice("warp", f"engine warp (auto: MOFA checkpoints do not verify: {bad.spec.key} "
                                    f"{bad.status}; run `python -m portrait_studio check-ckpts`)")
    return EngineChoice("mofa", "engine mofa (auto: checkpoints verified and a GPU is present)")


def load_mask(path: Path, height: int, width: int) -> np.ndarray:
    """A user mask image resized to (height, width) as float32 [H, W] in [0, 1] (white = 1)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            gray = img.convert("L").resize((width, height), Image.BILINEAR)
    except (UnidentifiedImageError, OSError) as exc:
        raise InputError(f"mask {path} is not a readable image ({exc})") from None
    return np.asarray(gray, dtype=np.float32) / 255.0
