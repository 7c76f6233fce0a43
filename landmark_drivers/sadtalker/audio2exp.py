"""SadTalker ExpNet (`SimpleWrapperV2`, prefix `audio2exp.`): audio + source expression + blink -> expression.

Per frame: the mel window is encoded to 512-d, concatenated with the source's 64 BFM expression
coefficients and the blink ratio, and mapped linearly to 64 expression coefficients (absolute, not a
residual). Frames are independent; the reference runs them in chunks of 10 (`EXP_CHUNK`).
"""

from __future__ import annotations

import random

import numpy as np
import torch
from torch import nn

from .audio_encoder import EMBED_DIM, AudioEncoder

EXP_DIM = 64
EXP_CHUNK = 10  # frames per forward pass, as in the reference
BLINK_SHAPE = (0.5, 0.9, 1.0, 0.9, 0.5)  # eyelid-closure ratio over the 5 frames of one blink


class Audio2Exp(nn.Module):
    """Keys: `audio_encoder.{0..12}.conv_block.*`, `mapping1.{weight,bias}` [64, 577]."""

    def __init__(self) -> None:
        super().__init__()
        self.audio_encoder = AudioEncoder()
        self.mapping1 = nn.Linear(EMBED_DIM + EXP_DIM + 1, EXP_DIM)

    def forward(self, mels: torch.Tensor, ref_exp: torch.Tensor, blink: torch.Tensor) -> torch.Tensor:
        """mels: float32 [B, 1, 80, 16] in [-4, 4]; ref_exp: float32 [B, 64] source expression coefficients;
        blink: float32 [B, 1] eyelid-closure ratio in [0, 1]. Returns float32 [B, 64] expression coefficients.
        """
        audio = self.audio_encoder(mels)  # [B, 512]
        return self.mapping1(torch.cat([audio, ref_exp, blink], dim=1))  # [B, 577] -> [B, 64]

    @torch.no_grad()
    def predict(self, mels: torch.Tensor, ref_exp: torch.Tensor, blink: torch.Tensor) -> torch.Tensor:
        """Expression for every frame, `EXP_CHUNK` frames at a time.

        mels: float32 [N, 1, 80, 16]; ref_exp: float32 [64]; blink: float32 [N] in [0, 1].
        Returns float32 [N, 64].
        """
        n = mels.shape[0]
        if blink.shape != (n,) or ref_exp.shape != (EXP_DIM,):
            raise ValueError(f"expected blink [{n}] and ref_exp [{EXP_DIM}], got {tuple(blink.shape)} and "
                             f"{tuple(ref_exp.shape)}")
        out = []
        for start in range(0, n, EXP_CHUNK):
            chunk = mels[start:start + EXP_CHUNK]
            b = chunk.shape[0]
            out.append(self(chunk, ref_exp.expand(b, EXP_DIM), blink[start:start + EXP_CHUNK, None]))
        return torch.cat(out, dim=0) if out else mels.new_zeros((0, EXP_DIM))


def blink_sequence(num_frames: int, rng: random.Random) -> np.ndarray:
    """The reference's random blink track: float32 [num_frames] eyelid-closure ratios in [0, 1].

    5-frame bumps `BLINK_SHAPE`, each starting a random gap after the previous one ends; the gap is
    drawn with `rng.choice(range(min(10, N), min(N // 2, 70)))`; a blink that would not end before the
    last frame stops the sequence. None at all when N <= 20. With `random.Random(42)` this draws the same
    numbers as the reference's `random.seed(42)` (if nothing else consumed the global generator first).
    """
    ratio = np.zeros(num_frames, np.float32)
    if num_frames <= 20:
        return ratio
    frame = 0
    while frame < num_frames:
        gap = rng.choice(range(min(10, num_frames), min(int(num_frames / 2), 70)))
        if frame + gap + len(BLINK_SHAPE) > num_frames - 1:
            break
        ratio[frame + gap:frame + gap + len(BLINK_SHAPE)] = BLINK_SHAPE
        frame += gap + len(BLINK_SHAPE)
    return ratio
