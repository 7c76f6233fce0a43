"""The adapters' first-frame feature pyramid (MOFA-Video, spec section 4.2 `flow_encoder`).

The conditioning embedding turns the first frame into features at 1/8 of the image size; this
encoder derives three coarser levels from them (1/16, 1/32, 1/64) with stride-2 3x3 convs + SiLU.
The chain runs on the un-projected features; the trajectory adapter additionally passes each
*emitted* level through a zero-initialised 1x1 conv (`zeroconvs`), the landmark adapter does not.

Key layout: `encoders.{i}.conv_in` and (trajectory only) `zeroconvs.{i}`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from diffusers.models.controlnets.controlnet import zero_module
from torch import nn

__all__ = ["FlowEncoder"]


class _StridedConv(nn.Module):
    """conv3x3 stride 2 padding 1 + SiLU; `conv_in` is the checkpoint's attribute name."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv_in = nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=2, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.silu(self.conv_in(x))


class FlowEncoder(nn.Module):
    """Down-sample first-frame features into the coarser adapter levels.

    Args:
        in_channels: channels of the 1/8 features (320 at full size).
        level_channels: output channels of each coarser level, e.g. (320, 640, 1280).
        zero_convs: add the trajectory adapter's zero-initialised 1x1 output convs.
    """

    def __init__(self, in_channels: int, level_channels: tuple[int, ...], zero_convs: bool):
        super().__init__()
        chain = (in_channels, *level_channels)
        self.encoders = nn.ModuleList(
            _StridedConv(chain[i], chain[i + 1]) for i in range(len(level_channels))
        )
        if zero_convs:
            self.zeroconvs = nn.ModuleList(
                zero_module(nn.Conv2d(c, c, kernel_size=1)) for c in level_channels
            )
        else:
            self.zeroconvs = None

    def forward(self, features: torch.Tensor) -> list[torch.Tensor]:
        """
        Args:
            features: `[B, C0, h, w]` first-frame features at 1/8 of the image size.

        Returns:
            one `[B, C_l, h / 2**l, w / 2**l]` tensor per coarser level l = 1, 2, 3.
        """
        levels = []
        x = features
        for i, encoder in enumerate(self.encoders):
            x = encoder(x)
            levels.append(x if self.zeroconvs is None else self.zeroconvs[i](x))
        return levels
