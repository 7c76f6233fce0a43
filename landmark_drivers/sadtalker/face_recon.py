"""Deep3DFaceRecon network (prefix `face_3drecon.`): a 224x224 aligned face -> 257 BFM coefficients.

`backbone` is a ResNet-50 without its classifier (bottlenecks stride in the 3x3 conv, torchvision
layout: keys `conv1`, `bn1`, `layer{1..4}.{i}.{conv,bn}{1,2,3}`, `downsample.{0,1}`); its global-average
pooled [B, 2048, 1, 1] feature feeds seven 1x1 conv heads (`final_layers.{0..6}`) whose outputs are
concatenated in order: id 80 | exp 64 | tex 80 | angle 3 | gamma 27 | trans xy 2 | trans z 1.
"""

from __future__ import annotations

import torch
from torch import nn

# Heads in output order (name, size); `COEFF_SLICES` gives each name's span of the 257-vector.
HEADS: tuple[tuple[str, int], ...] = (
    ("id", 80), ("exp", 64), ("tex", 80), ("angle", 3), ("gamma", 27), ("trans_xy", 2), ("trans_z", 1))
NUM_COEFFS = sum(size for _, size in HEADS)  # 257
COEFF_SLICES = {"id": slice(0, 80), "exp": slice(80, 144), "tex": slice(144, 224), "angle": slice(224, 227),
                "gamma": slice(227, 254), "trans": slice(254, 257)}
INPUT_SIZE = 224
_STAGES = ((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2))  # (width, blocks, stride) of layer1..4
_EXPANSION = 4


class Bottleneck(nn.Module):
    """1x1 -> 3x3(stride) -> 1x1 (x4 channels), each with BatchNorm; identity or `downsample` shortcut."""

    def __init__(self, cin: int, width: int, stride: int) -> None:
        super().__init__()
        cout = width * _EXPANSION
        self.conv1 = nn.Conv2d(cin, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, cout, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        out = torch.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        shortcut = x if self.downsample is None else self.downsample(x)
        return torch.relu(out + shortcut)


class ResNet50Features(nn.Module):
    """ResNet-50 trunk + global average pool: [B, 3, H, W] -> [B, 2048, 1, 1]."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        cin = 64
        for index, (width, blocks, stride) in enumerate(_STAGES, start=1):
            layers = []
            for b in range(blocks):
                layers.append(Bottleneck(cin, width, stride if b == 0 else 1))
                cin = width * _EXPANSION
            setattr(self, f"layer{index}", nn.Sequential(*layers))
        self.avgpool = nn.AdaptiveAvgPool2d(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(torch.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.avgpool(x)


class FaceReconNet(nn.Module):
    """Keys: `backbone.*` (ResNet-50, no fc) and `final_layers.{0..6}.{weight,bias}`."""

    def __init__(self) -> None:
        super().__init__()
        self.backbone = ResNet50Features()
        self.final_layers = nn.ModuleList(nn.Conv2d(2048, size, 1) for _, size in HEADS)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """image: float32 [B, 3, 224, 224], RGB in [0, 1] (no mean/std normalisation), aligned by
        `align.align_for_recon`. Returns float32 [B, 257]: id | exp | tex | angle (rad) | gamma | trans.
        """
        if image.ndim != 4 or image.shape[1] != 3:
            raise ValueError(f"image must be [B, 3, H, W], got {tuple(image.shape)}")
        feature = self.backbone(image)  # [B, 2048, 1, 1]
        heads = torch.cat([layer(feature) for layer in self.final_layers], dim=1)  # [B, 257, 1, 1]
        return heads.flatten(1)  # [B, 257, 1, 1] -> [B, 257]
