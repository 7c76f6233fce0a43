"""Dilated ResNet-50 image encoder of CMP (Conditional Motion Propagation, Zhan et al. CVPR 2019).

A torchvision-style ResNet (Bottleneck, stride on the 3x3 conv, no fc) whose last two stages are
dilated instead of strided (output stride 8), followed by a 1x1 `conv5` to the encoder width.
Attribute names follow the published checkpoint (`image_encoder.conv1.weight`, `layer3.0.downsample.0`,
`conv5.bias`, ...). See reference/mofa_inference_spec.md §3.
"""

from __future__ import annotations

from typing import NamedTuple, Sequence

import torch
from torch import nn

EXPANSION = 4  # Bottleneck output channels = planes * 4


class Bottleneck(nn.Module):
    """1x1 reduce -> 3x3 (stride, dilation) -> 1x1 expand, BN after each conv, identity/projection skip."""

    def __init__(self, inplanes: int, planes: int, stride: int = 1, dilation: int = 1) -> None:
        super().__init__()
        out = planes * EXPANSION
        self.conv1 = nn.Conv2d(inplanes, planes, kernel_size=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(
            planes, planes, kernel_size=3, stride=stride, padding=dilation, dilation=dilation, bias=False
        )
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, out, kernel_size=1, bias=False)
        self.bn3 = nn.BatchNorm2d(out)
        self.relu = nn.ReLU(inplace=True)
        self.downsample: nn.Module | None = None
        if stride != 1 or inplanes != out:
            self.downsample = nn.Sequential(
                nn.Conv2d(inplanes, out, kernel_size=1, stride=stride, bias=False), nn.BatchNorm2d(out)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        return self.relu(y + identity)


class ImageFeatures(NamedTuple):
    """What the CMP decoder needs from the image: the encoding and the two skip features."""

    enc: torch.Tensor  # [B, out_dim, H/8, W/8] after conv5
    c1: torch.Tensor  # [B, base_width, H/2, W/2] after conv1/bn1/relu (before the max-pool)
    l1: torch.Tensor  # [B, 4*base_width, H/4, W/4] output of layer1


class DilatedResNet(nn.Module):
    """ResNet-50 with layer3/layer4 dilated (2 and 4) instead of strided: output stride 8.

    Args:
        layers: Bottleneck blocks per stage; (3, 4, 6, 3) is ResNet-50.
        base_width: channels of conv1 and planes of layer1 (64 published); stage k has
            base_width * 2**k planes and 4x that many output channels.
        out_dim: channels of the final 1x1 `conv5` (256 published, `img_enc_dim`).
    """

    def __init__(self, layers: Sequence[int] = (3, 4, 6, 3), base_width: int = 64, out_dim: int = 256) -> None:
        super().__init__()
        if len(layers) != 4 or min(layers) < 1:
            raise ValueError(f"layers must be 4 positive block counts, got {tuple(layers)}")
        self.conv1 = nn.Conv2d(3, base_width, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(base_width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self._inplanes = base_width
        self.layer1 = self._make_layer(base_width, layers[0], stride=1, dilation=1)
        self.layer2 = self._make_layer(base_width * 2, layers[1], stride=2, dilation=1)
        # The reference builds strided layer3/4 and then edits every block's conv2 to stride 1 with
        # dilation = padding = 2 / 4 and the projection to stride 1; building them that way is equal.
        self.layer3 = self._make_layer(base_width * 4, layers[2], stride=1, dilation=2)
        self.layer4 = self._make_layer(base_width * 8, layers[3], stride=1, dilation=4)
        self.conv5 = nn.Conv2d(base_width * 8 * EXPANSION, out_dim, kernel_size=1, bias=True)

    def _make_layer(self, planes: int, blocks: int, stride: int, dilation: int) -> nn.Sequential:
        mods = [Bottleneck(self._inplanes, planes, stride=stride, dilation=dilation)]
        self._inplanes = planes * EXPANSION
        mods += [Bottleneck(self._inplanes, planes, dilation=dilation) for _ in range(blocks - 1)]
        return nn.Sequential(*mods)

    def forward(self, image: torch.Tensor) -> ImageFeatures:
        """image: [B,3,H,W] float, already normalised to [-1, 1] (CMP's `image*2-1`)."""
        c1 = self.relu(self.bn1(self.conv1(image)))  # [B,C,H/2,W/2]
        l1 = self.layer1(self.maxpool(c1))  # [B,4C,H/4,W/4]
        x = self.layer4(self.layer3(self.layer2(l1)))  # [B,32C,H/8,W/8]
        return ImageFeatures(enc=self.conv5(x), c1=c1, l1=l1)
