"""ForegroundMatting: the landmark adapter's occlusion/inpainting head (MOFA-Video, spec section 4.2).

After the first-frame features of one level have been forward-splatted to frame t, an hourglass
looks at `[reference features, flow, warped features]` and predicts a soft mask m (sigmoid) and
fill-in features M; the result is `warped * m + M * (1 - m)`. The hourglass keeps the spatial size
throughout (3x3 convs + ReLU, no pooling or up-sampling); its decoder concatenates
`[encoder skip, decoder output]`.

Key layout (per level): `hourglass.encoder.down_blocks.{0,1,2}.conv`,
`hourglass.decoder.up_blocks.{0,1,2}.conv`, `matting_mask`, `matting`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["ForegroundMatting", "Hourglass"]


class _ConvReLU(nn.Module):
    """conv3x3 (padding 1) + ReLU; the attribute name `conv` is part of the checkpoint keys."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.conv(x))


class _Encoder(nn.Module):
    def __init__(self, in_channels: int, block_expansion: int, num_blocks: int, max_features: int):
        super().__init__()
        channels = [in_channels] + [
            min(max_features, block_expansion * 2 ** (i + 1)) for i in range(num_blocks)
        ]
        self.down_blocks = nn.ModuleList(
            _ConvReLU(channels[i], channels[i + 1]) for i in range(num_blocks)
        )

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Return the encoder features `[e1, ..., e_num_blocks]`, all at the input resolution."""
        features = []
        for block in self.down_blocks:
            x = block(x)
            features.append(x)
        return features


class _Decoder(nn.Module):
    def __init__(self, block_expansion: int, num_blocks: int, max_features: int):
        super().__init__()
        blocks = []
        for i in reversed(range(num_blocks)):
            in_channels = (1 if i == num_blocks - 1 else 2) * min(max_features, block_expansion * 2 ** (i + 1))
            out_channels = min(max_features, block_expansion * 2**i)
            blocks.append(_ConvReLU(in_channels, out_channels))
        self.up_blocks = nn.ModuleList(blocks)
        self.out_channels = min(max_features, block_expansion)

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        skips = list(features)
        x = self.up_blocks[0](skips.pop())
        for block in self.up_blocks[1:]:
            x = block(torch.cat([skips.pop(), x], dim=1))  # order: [encoder skip, decoder output]
        return x


class Hourglass(nn.Module):
    """Resolution-preserving U-shaped conv net: (2C+2) -> 128 -> 256 -> 512 -> 256 -> 128 -> 64 at full size."""

    def __init__(self, in_channels: int, block_expansion: int = 64, num_blocks: int = 3, max_features: int = 512):
        super().__init__()
        self.encoder = _Encoder(in_channels, block_expansion, num_blocks, max_features)
        self.decoder = _Decoder(block_expansion, num_blocks, max_features)
        self.out_channels = self.decoder.out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))


class ForegroundMatting(nn.Module):
    """Blend splatted features with predicted fill-in features through a predicted soft mask.

    Args:
        channels: feature channels C of this level (320, 320, 640, 1280 at full size).
        block_expansion: width of the hourglass (64 at full size: 128/256/512 encoder channels);
            smaller values only for tiny test models.
    """

    def __init__(self, channels: int, block_expansion: int = 64):
        super().__init__()
        self.hourglass = Hourglass(2 * channels + 2, block_expansion=block_expansion)
        self.matting_mask = nn.Conv2d(self.hourglass.out_channels, 1, kernel_size=7, padding=3)
        self.matting = nn.Conv2d(self.hourglass.out_channels, channels, kernel_size=7, padding=3)

    def forward(
        self, reference: torch.Tensor, flow: torch.Tensor, warped: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """
        Args:
            reference: `[N, C, h, w]` first-frame features of this level (unwarped).
            flow: `[N, 2, h, w]` the flow that warped them, in pixels of this level's grid.
            warped: `[N, C, h, w]` forward-splatted features.

        Returns:
            `(blended [N, C, h, w], mask [N, 1, h, w] in (0, 1))` with
            `blended = warped * mask + fill * (1 - mask)`.
        """
        x = torch.cat([reference, flow.to(reference.dtype), warped], dim=1)  # [N, 2C+2, h, w]
        x = self.hourglass(x)
        mask = torch.sigmoid(self.matting_mask(x))
        fill = self.matting(x)
        return warped * mask + fill * (1.0 - mask), mask
