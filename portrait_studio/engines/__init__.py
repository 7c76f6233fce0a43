"""Engines behind one interface (`Engine`): `warp` (CPU, no weights) and `mofa` (MOFA-Video on SVD-xt).

`select_engine(options, cache)` resolves `--engine auto|warp|mofa` into an engine object; the Studio
calls its `load` (cached models are reused) and then `frames`.
"""

from .base import Engine, ModelCache, check_cancel
from .select import EngineChoice, choose_engine, cuda_available, select_engine

__all__ = ["Engine", "EngineChoice", "ModelCache", "check_cancel", "choose_engine", "cuda_available",
           "select_engine"]
