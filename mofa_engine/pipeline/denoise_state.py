"""The denoising state of a MOFA clip, saved every few steps so a killed render can resume.

Periodic sampling denoises every window of the clip together, so the whole state after step k is
one tensor: the clip latents `[1, N, 4, h, w]` (float32) plus k. `MofaPipeline(resume_from=...)`
continues from it and, with the same inputs and seed, ends with the same latents as an
uninterrupted run (the Euler sampler draws no noise after the initial latents).

Files are safetensors (tensors + string metadata only, nothing executable): the latents, the step
reached, the total steps and a fingerprint of everything that decides the result, so a checkpoint is
never applied to a different render. Writes go to a temporary file beside the target and are
renamed onto it, so a kill during a save leaves the previous checkpoint intact.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

__all__ = ["DenoiseCheckpoint", "DenoiseState", "StaleCheckpointError", "fingerprint"]

FORMAT = "mofa-denoise-state/1"


@dataclass(frozen=True)
class DenoiseState:
    """Latents after `step` of `total_steps` denoising steps."""

    step: int  # steps completed (0 = the initial noise, total_steps = ready to decode)
    total_steps: int  # num_inference_steps of the run
    latents: torch.Tensor  # float32 [1, N, 4, h, w], the scheduler's sample after `step` steps


class StaleCheckpointError(ValueError):
    """A checkpoint file exists but belongs to another render (or cannot be read)."""


def fingerprint(*parts: object) -> str:
    """SHA-256 hex digest of arrays, tensors and plain values (their bytes, shapes and dtypes, in order)."""
    digest = hashlib.sha256()
    for part in parts:
        if isinstance(part, torch.Tensor):
            part = part.detach().cpu().contiguous().numpy()
        if isinstance(part, np.ndarray):
            digest.update(f"{part.dtype}{part.shape}".encode())
            digest.update(np.ascontiguousarray(part).tobytes())
        else:
            digest.update(repr(part).encode())
        digest.update(b"\x00")
    return digest.hexdigest()


class DenoiseCheckpoint:
    """A denoising checkpoint file for one render, written every `every` steps.

    Args:
        path: the file (conventionally beside the output video).
        key: `fingerprint(...)` of the render's inputs and settings; a file with another key is stale.
        every: save after every `every`-th step and after the last one.
    """

    def __init__(self, path: str | Path, key: str, every: int = 5) -> None:
        if every < 1:
            raise ValueError(f"every must be >= 1, got {every}")
        self.path, self.key, self.every = Path(path), key, every

    def due(self, step: int, total_steps: int) -> bool:
        """Whether the state after `step` completed steps is to be saved."""
        return step % self.every == 0 or step == total_steps

    def save(self, state: DenoiseState) -> None:
        """Write `state` atomically (temporary file + rename)."""
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        metadata = {"format": FORMAT, "key": self.key, "step": str(state.step), "total_steps": str(state.total_steps)}
        try:
            save_file({"latents": state.latents.detach().to("cpu", torch.float32).contiguous()}, str(tmp), metadata)
            os.replace(tmp, self.path)
        finally:
            tmp.unlink(missing_ok=True)

    def load(self) -> DenoiseState | None:
        """The saved state, or None when there is no file.

        Raises:
            StaleCheckpointError: the file is unreadable or was written for other inputs or settings.
        """
        if not self.path.is_file():
            return None
        try:
            with safe_open(str(self.path), framework="pt") as handle:
                metadata = handle.metadata() or {}
            tensors = load_file(str(self.path))
        except (SafetensorError, OSError, ValueError) as exc:
            raise StaleCheckpointError(f"checkpoint {self.path.name} is unreadable ({type(exc).__name__})") from None
        if metadata.get("format") != FORMAT or metadata.get("key") != self.key or set(tensors) != {"latents"}:
            raise StaleCheckpointError(f"checkpoint {self.path.name} was written for other inputs or settings")
        try:
            step, total = int(metadata["step"]), int(metadata["total_steps"])
        except (KeyError, ValueError):
            raise StaleCheckpointError(f"checkpoint {self.path.name} has no valid step") from None
        if not 0 <= step <= total:
            raise StaleCheckpointError(f"checkpoint {self.path.name} has no valid step")
        return DenoiseState(step=step, total_steps=total, latents=tensors["latents"])

    def remove(self) -> None:
        """Delete the file (after the video is written) and any temporary file a killed save left beside it."""
        self.path.unlink(missing_ok=True)
        for stale in self.path.parent.glob(f".{self.path.name}.*.tmp"):
            stale.unlink(missing_ok=True)
