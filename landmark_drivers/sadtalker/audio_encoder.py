"""Wav2Lip-style audio encoder: one 0.2 s mel window -> a 512-d embedding.

SadTalker's two audio networks (audio2exp and audio2pose) each hold their own copy of this encoder
(same architecture, separate weights). State-dict keys of one copy: `{i}.conv_block.0.{weight,bias}`
(Conv2d) and `{i}.conv_block.1.*` (BatchNorm2d), i = 0..12.
"""

from __future__ import annotations

import torch
from torch import nn

# (in, out, kernel, stride, padding, residual) of the 13 blocks; 80x16 mel -> 27x16 -> 9x6 -> 3x3 -> 1x1.
_BLOCKS: tuple[tuple[int, int, int, int | tuple[int, int], int, bool], ...] = (
    (1, 32, 3, 1, 1, False),
    (32, 32, 3, 1, 1, True),
    (32, 32, 3, 1, 1, True),
    (32, 64, 3, (3, 1), 1, False),
    (64, 64, 3, 1, 1, True),
    (64, 64, 3, 1, 1, True),
    (64, 128, 3, 3, 1, False),
    (128, 128, 3, 1, 1, True),
    (128, 128, 3, 1, 1, True),
    (128, 256, 3, (3, 2), 1, False),
    (256, 256, 3, 1, 1, True),
    (256, 512, 3, 1, 0, False),
    (512, 512, 1, 1, 0, False),
)
EMBED_DIM = 512
MEL_BANDS, MEL_STEPS = 80, 16


class ConvBlock(nn.Module):
    """Conv2d + BatchNorm2d (+ identity when `residual`) then ReLU."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int | tuple[int, int], padding: int,
                 residual: bool = False) -> None:
        super().__init__()
        self.conv_block = nn.Sequential(nn.Conv2d(cin, cout, kernel, stride, padding), nn.BatchNorm2d(cout))
        self.residual = residual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv_block(x)
        if self.residual:
            out = out + x
        return torch.relu(out)


class AudioEncoder(nn.Sequential):
    """The 13 conv blocks; an `nn.Sequential` so its keys are `{i}.conv_block.*` like the published file."""

    def __init__(self) -> None:
        super().__init__(*(ConvBlock(*spec) for spec in _BLOCKS))

    def forward(self, mels: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        """mels: float32 [B, 1, 80, 16], normalised log-mel in [-4, 4] (see `mel.py`).

        Returns float32 [B, 512] (post-ReLU, >= 0).
        """
        if mels.ndim != 4 or tuple(mels.shape[1:]) != (1, MEL_BANDS, MEL_STEPS):
            raise ValueError(f"mels must be [B, 1, {MEL_BANDS}, {MEL_STEPS}], got {tuple(mels.shape)}")
        out = super().forward(mels)  # [B, 512, 1, 1]
        return out.flatten(1)  # [B, 512, 1, 1] -> [B, 512]
