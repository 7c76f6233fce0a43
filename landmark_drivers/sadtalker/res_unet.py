"""ResUnet over a [B, 1, 32, 6] pose sequence (time x pose channel), used by both halves of the pose CVAE.

Three residual down blocks halve the time axis only (stride (2, 1)): 32 -> 16 -> 8 -> 4; three
transposed convolutions bring it back, each followed by a residual block on `[upsampled, skip]`.
The output is a sigmoid in (0, 1), shape [B, 1, 32, 6].
"""

from __future__ import annotations

import torch
from torch import nn

FILTERS = (32, 64, 128, 256)


class ResidualConv(nn.Module):
    """Pre-activation residual block: `conv_block` (BN, ReLU, conv(stride), BN, ReLU, conv) + `conv_skip`."""

    def __init__(self, cin: int, cout: int, stride: int | tuple[int, int]) -> None:
        super().__init__()
        self.conv_block = nn.Sequential(
            nn.BatchNorm2d(cin), nn.ReLU(), nn.Conv2d(cin, cout, 3, stride, 1),
            nn.BatchNorm2d(cout), nn.ReLU(), nn.Conv2d(cout, cout, 3, 1, 1))
        self.conv_skip = nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv_block(x) + self.conv_skip(x)


class Upsample(nn.Module):
    """Transposed conv doubling the time axis (kernel = stride = (2, 1))."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.upsample = nn.ConvTranspose2d(cin, cout, kernel_size=(2, 1), stride=(2, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.upsample(x)


class ResUnet(nn.Module):
    """Keys: input_layer.{0,1,3}, input_skip.0, residual_conv_{1,2}, bridge, upsample_{1,2,3},
    up_residual_conv{1,2,3}, output_layer.0."""

    def __init__(self, channels: int = 1) -> None:
        super().__init__()
        f0, f1, f2, f3 = FILTERS
        self.input_layer = nn.Sequential(
            nn.Conv2d(channels, f0, 3, 1, 1), nn.BatchNorm2d(f0), nn.ReLU(), nn.Conv2d(f0, f0, 3, 1, 1))
        self.input_skip = nn.Sequential(nn.Conv2d(channels, f0, 3, 1, 1))
        self.residual_conv_1 = ResidualConv(f0, f1, (2, 1))
        self.residual_conv_2 = ResidualConv(f1, f2, (2, 1))
        self.bridge = ResidualConv(f2, f3, (2, 1))
        self.upsample_1 = Upsample(f3, f3)
        self.up_residual_conv1 = ResidualConv(f3 + f2, f2, 1)
        self.upsample_2 = Upsample(f2, f2)
        self.up_residual_conv2 = ResidualConv(f2 + f1, f1, 1)
        self.upsample_3 = Upsample(f1, f1)
        self.up_residual_conv3 = ResidualConv(f1 + f0, f0, 1)
        self.output_layer = nn.Sequential(nn.Conv2d(f0, 1, 1, 1), nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: float32 [B, 1, T, 6] with T divisible by 8 (32 here). Returns float32 [B, 1, T, 6] in (0, 1)."""
        x1 = self.input_layer(x) + self.input_skip(x)  # [B, 32, T, 6]
        x2 = self.residual_conv_1(x1)  # [B, 64, T/2, 6]
        x3 = self.residual_conv_2(x2)  # [B, 128, T/4, 6]
        x4 = self.bridge(x3)  # [B, 256, T/8, 6]
        x6 = self.up_residual_conv1(torch.cat([self.upsample_1(x4), x3], dim=1))  # [B, 128, T/4, 6]
        x8 = self.up_residual_conv2(torch.cat([self.upsample_2(x6), x2], dim=1))  # [B, 64, T/2, 6]
        x10 = self.up_residual_conv3(torch.cat([self.upsample_3(x8), x1], dim=1))  # [B, 32, T, 6]
        return self.output_layer(x10)
