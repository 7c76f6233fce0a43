"""MOFA-Video motion-field adapters: ControlNet-like encoders that steer a frozen SVD-xt UNet.

Two published networks share one design (the reference class is `FlowControlNet`):

* `TrajectoryAdapter` - `ckpts/mofa/traj_controlnet` (drag / trajectory flows);
* `LandmarkAdapter` - `ckpts/mofa/ldmk_controlnet` (facial-landmark flows + pose images, with an
  occlusion head per level).

Both copy the SVD UNet's encoder half (diffusers' spatio-temporal down/mid blocks), encode the first
frame into a 4-level feature pyramid (1/8 .. 1/64), forward-splat that pyramid along the dense flow
of every later frame, add it into the encoder at fixed points, and emit 12 skip residuals + 1 mid
residual through 1x1 convs (spec section 4.3). That shared network is `MotionFieldAdapter`
(`motion_field_adapter.py`); this module holds the two published configurations of it.

Configuration (how `config.json` maps to the architecture):

* The published `config.json` (`_class_name: "FlowControlNet"`) holds diffusers' ControlNet-SDV
  default set. Every key of it is an `__init__` argument here, so `from_pretrained(folder)` loads it
  unchanged and without "unexpected key" warnings; the class name in the file is ignored.
* The reference built its encoder with the base-class defaults whatever the config said; in
  particular its attention heads are always (5, 10, 10, 20) (note: down block 2 has 10 heads of 128,
  unlike the SVD UNet's 20 of 64). `num_attention_heads` is therefore recorded but **never used**.
  Heads come from `encoder_attention_heads`, a key the published file lacks: `None` (the default)
  means (5, 10, 10, 20). Only tiny test models set it.
* Channel and layer keys (`block_out_channels`, `layers_per_block`, `cross_attention_dim`, ...)
  are used as given; the published values equal the reference defaults (and the SVD UNet's), so the
  published config builds the published network, while tests shrink the network with small values
  (see `tests/mofa_engine/tiny_configs.py`).
* `landmark_embedding_out_channels` and `occlusion_block_expansion` (landmark adapter only) are
  likewise absent from the published file and default to the published sizes.
"""

from __future__ import annotations

import torch
from diffusers.configuration_utils import register_to_config
from diffusers.models.controlnets.controlnet import ControlNetConditioningEmbedding, zero_module
from torch import nn

from .motion_field_adapter import (
    REFERENCE_ATTENTION_HEADS,
    MotionFieldAdapter,
    MotionFieldAdapterOutput,
    downsample_flow,
)
from .occlusion import ForegroundMatting

__all__ = [
    "REFERENCE_ATTENTION_HEADS",
    "LandmarkAdapter",
    "MotionFieldAdapter",
    "MotionFieldAdapterOutput",
    "TrajectoryAdapter",
    "downsample_flow",
]

_DOWN_BLOCKS = (
    "CrossAttnDownBlockSpatioTemporal",
    "CrossAttnDownBlockSpatioTemporal",
    "CrossAttnDownBlockSpatioTemporal",
    "DownBlockSpatioTemporal",
)
_UP_BLOCKS = (
    "UpBlockSpatioTemporal",
    "CrossAttnUpBlockSpatioTemporal",
    "CrossAttnUpBlockSpatioTemporal",
    "CrossAttnUpBlockSpatioTemporal",
)


class TrajectoryAdapter(MotionFieldAdapter):
    """The trajectory (drag) adapter, `ckpts/mofa/traj_controlnet` (683 keys, 694,314,017 parameters).

    Arguments marked *informational* are accepted so the published `config.json` loads, and are
    otherwise unused. Defaults build the published network.

    Args:
        sample_size: informational.
        in_channels: latent channels of `sample` (noisy 4 + image 4).
        out_channels: informational (the UNet's output channels).
        down_block_types: diffusers spatio-temporal down blocks (4).
        up_block_types: informational.
        block_out_channels: channels of the 4 down blocks; the last two must be equal.
        addition_time_embed_dim: sinusoid size per added time id.
        projection_class_embeddings_input_dim: 3 * addition_time_embed_dim.
        layers_per_block: resnet/attention pairs per down block.
        cross_attention_dim: CLIP embedding size.
        transformer_layers_per_block: transformer depth in each attention.
        num_attention_heads: informational: **ignored**, as in the reference (see module docstring).
        num_frames: informational.
        conditioning_channels: channels of the first-frame image.
        conditioning_embedding_out_channels: widths of the first-frame image encoder.
        encoder_attention_heads: heads of the 4 down blocks (mid block uses the last); None means
            the reference's (5, 10, 10, 20). Set only for shrunken test models.
    """

    _flow_encoder_zero_convs = True

    @register_to_config
    def __init__(
        self,
        sample_size: int | None = None,
        in_channels: int = 8,
        out_channels: int = 4,
        down_block_types: tuple[str, ...] = _DOWN_BLOCKS,
        up_block_types: tuple[str, ...] = _UP_BLOCKS,
        block_out_channels: tuple[int, ...] = (320, 640, 1280, 1280),
        addition_time_embed_dim: int = 256,
        projection_class_embeddings_input_dim: int = 768,
        layers_per_block: int = 2,
        cross_attention_dim: int = 1024,
        transformer_layers_per_block: int = 1,
        num_attention_heads: tuple[int, ...] = REFERENCE_ATTENTION_HEADS,
        num_frames: int = 25,
        conditioning_channels: int = 3,
        conditioning_embedding_out_channels: tuple[int, ...] = (16, 32, 96, 256),
        encoder_attention_heads: tuple[int, ...] | None = None,
    ):
        super().__init__()
        self._build_encoder(
            in_channels, down_block_types, block_out_channels, addition_time_embed_dim,
            projection_class_embeddings_input_dim, layers_per_block, cross_attention_dim,
            transformer_layers_per_block, conditioning_channels, conditioning_embedding_out_channels,
            encoder_attention_heads,
        )  # fmt: skip

    def _embed_landmarks(self, landmarks: torch.Tensor | None, dtype: torch.dtype) -> None:
        if landmarks is not None:
            raise ValueError("TrajectoryAdapter takes no landmarks (pose images); pass landmarks=None")
        return None


class LandmarkAdapter(MotionFieldAdapter):
    """The facial-landmark adapter, `ckpts/mofa/ldmk_controlnet` (765 keys, 722,453,685 parameters).

    Same arguments as `TrajectoryAdapter`, plus:

    Args:
        landmark_embedding_out_channels: widths of the pose-image encoder (16, 32, 64, 128).
        occlusion_block_expansion: width of each level's occlusion hourglass (64: 128/256/512).
    """

    @register_to_config
    def __init__(
        self,
        sample_size: int | None = None,
        in_channels: int = 8,
        out_channels: int = 4,
        down_block_types: tuple[str, ...] = _DOWN_BLOCKS,
        up_block_types: tuple[str, ...] = _UP_BLOCKS,
        block_out_channels: tuple[int, ...] = (320, 640, 1280, 1280),
        addition_time_embed_dim: int = 256,
        projection_class_embeddings_input_dim: int = 768,
        layers_per_block: int = 2,
        cross_attention_dim: int = 1024,
        transformer_layers_per_block: int = 1,
        num_attention_heads: tuple[int, ...] = REFERENCE_ATTENTION_HEADS,
        num_frames: int = 25,
        conditioning_channels: int = 3,
        conditioning_embedding_out_channels: tuple[int, ...] = (16, 32, 96, 256),
        encoder_attention_heads: tuple[int, ...] | None = None,
        landmark_embedding_out_channels: tuple[int, ...] = (16, 32, 64, 128),
        occlusion_block_expansion: int = 64,
    ):
        super().__init__()
        self._build_encoder(
            in_channels, down_block_types, block_out_channels, addition_time_embed_dim,
            projection_class_embeddings_input_dim, layers_per_block, cross_attention_dim,
            transformer_layers_per_block, conditioning_channels, conditioning_embedding_out_channels,
            encoder_attention_heads,
        )  # fmt: skip
        self.controlnet_ldmk_embedding = ControlNetConditioningEmbedding(
            conditioning_embedding_channels=block_out_channels[0],
            conditioning_channels=3,
            block_out_channels=tuple(landmark_embedding_out_channels),
        )
        scales = (8, 16, 32, 64)
        levels = list(zip(scales, self.level_channels, strict=True))
        self.zero_outs = nn.ModuleDict({str(s): zero_module(nn.Conv2d(c, c, kernel_size=1)) for s, c in levels})
        self.occlusions = nn.ModuleDict({str(s): ForegroundMatting(c, occlusion_block_expansion) for s, c in levels})

    def _embed_landmarks(self, landmarks: torch.Tensor | None, dtype: torch.dtype) -> torch.Tensor:
        if landmarks is None:
            raise ValueError("LandmarkAdapter needs landmarks: pose images [B,T,3,H,W] in [0,1]")
        # [B,T,3,H,W] -> [B*T,3,H,W] -> [B*T,C0,h,w]
        return self.controlnet_ldmk_embedding(landmarks.flatten(0, 1).to(dtype))

    def _refine_warped(
        self, scale: int, reference: torch.Tensor, flow: torch.Tensor, warped: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        key = str(scale)
        warped, mask = self.occlusions[key](reference, flow, warped)
        return self.zero_outs[key](warped), mask
