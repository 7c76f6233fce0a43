"""Engine selection: which engine a render uses, and why.

`auto` picks `mofa` when its checkpoints verify and a GPU is present, otherwise `warp`, and says which.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from ..ckpts import check_ckpts
from ..errors import MissingCheckpointsError
from ..options import RenderOptions
from .base import Engine, ModelCache

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


def choose_engine(requested: str, ckpt_dir: Path | None) -> EngineChoice:
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


def select_engine(options: RenderOptions, cache: ModelCache | None = None) -> Engine:
    """The engine a render with `options` uses (nothing loaded yet); its `reason` says why, in one line.

    Raises MissingCheckpointsError for an explicit `mofa` without checkpoints and InputError for a
    device torch does not know.
    """
    choice = choose_engine(options.engine, options.ckpt_dir)
    if choice.name == "mofa":
        from .mofa import MofaEngine  # torch + diffusers: imported only when the mofa engine runs

        engine: Engine = MofaEngine(options, cache)
    else:
        from .warp import WarpEngine

        engine = WarpEngine()
    engine.reason = choice.reason
    return engine
