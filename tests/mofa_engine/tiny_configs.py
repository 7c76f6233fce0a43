"""Tiny random-weight MOFA adapters and inputs for CPU tests (diffusers' `get_dummy_components` recipe).

The tiny adapters keep the published structure (4 down blocks, 2 layers each -> 12 residuals, 4
pyramid levels 1/8..1/64) with small widths. Channels stay multiples of 32 because the diffusers
spatio-temporal blocks use GroupNorm(32). A tiny SVD UNet that consumes these residuals must share
`TINY_SHARED_UNET_KWARGS` (same block widths, layers per block and cross-attention size).

Import from tests as `from tests.mofa_engine.tiny_configs import tiny_landmark_adapter, ...`.
"""

from __future__ import annotations

import torch
from torch import nn

from mofa_engine.models.cmp import CMP
from mofa_engine.models.flow_adapter import LandmarkAdapter, TrajectoryAdapter
from mofa_engine.models.motion_field_adapter import MotionFieldAdapter

# Keys a tiny SVD UNet must share with the tiny adapters so residual shapes and embeddings match.
TINY_SHARED_UNET_KWARGS: dict = {
    "in_channels": 8,
    "block_out_channels": (32, 64, 64, 64),
    "layers_per_block": 2,
    "cross_attention_dim": 32,
    "addition_time_embed_dim": 8,
    "projection_class_embeddings_input_dim": 24,
}

# Adapter-only keys. `num_attention_heads` keeps the published (5, 10, 10, 20) on purpose: the
# adapters ignore it (as the reference does) and take their heads from `encoder_attention_heads`.
TINY_ADAPTER_CONFIG: dict = {
    **TINY_SHARED_UNET_KWARGS,
    "num_attention_heads": (5, 10, 10, 20),
    "encoder_attention_heads": (2, 4, 4, 4),
    "conditioning_embedding_out_channels": (8, 8, 8, 16),
}

# A ~30 k parameter CMP: 1 block per ResNet stage, a narrow decoder, 9 flow bins.
TINY_CMP: dict = {"layers": (1, 1, 1, 1), "base_width": 8, "img_enc_dim": 16, "sparse_enc_dim": 8,
                  "decoder_width": 16, "nbins": 9}

# 68 iBUG points of a plausible frontal face, in units of the image side
FRONTAL_FACE_68: list[list[float]] = [
    [0.27, 0.36], [0.27, 0.43], [0.28, 0.50], [0.29, 0.57], [0.32, 0.63], [0.36, 0.68], [0.41, 0.72],
    [0.46, 0.75], [0.51, 0.76], [0.56, 0.75], [0.61, 0.72], [0.66, 0.68], [0.69, 0.63], [0.72, 0.57],
    [0.73, 0.50], [0.74, 0.43], [0.74, 0.36], [0.32, 0.31], [0.35, 0.29], [0.39, 0.29], [0.43, 0.30],
    [0.46, 0.31], [0.56, 0.31], [0.59, 0.30], [0.63, 0.29], [0.67, 0.29], [0.70, 0.31], [0.51, 0.36],
    [0.51, 0.41], [0.51, 0.45], [0.51, 0.49], [0.47, 0.52], [0.49, 0.53], [0.51, 0.54], [0.53, 0.53],
    [0.55, 0.52], [0.36, 0.37], [0.39, 0.35], [0.42, 0.35], [0.45, 0.37], [0.42, 0.38], [0.39, 0.38],
    [0.57, 0.37], [0.60, 0.35], [0.63, 0.35], [0.66, 0.37], [0.63, 0.38], [0.60, 0.38], [0.44, 0.61],
    [0.47, 0.59], [0.49, 0.58], [0.51, 0.59], [0.53, 0.58], [0.55, 0.59], [0.58, 0.61], [0.55, 0.63],
    [0.53, 0.64], [0.51, 0.64], [0.49, 0.64], [0.47, 0.63], [0.45, 0.61], [0.49, 0.60], [0.51, 0.60],
    [0.53, 0.60], [0.57, 0.61], [0.53, 0.62], [0.51, 0.62], [0.49, 0.62],
]

TINY_LANDMARK_EXTRA: dict = {
    "landmark_embedding_out_channels": (8, 8, 8, 16),
    "occlusion_block_expansion": 4,
}


def randomize_zero_convs_(model: nn.Module, seed: int = 0) -> nn.Module:
    """Re-initialise every all-zero conv (ControlNet zero convs) so tiny outputs are non-trivial."""
    generator_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.Conv2d) and not module.weight.any():
                module.reset_parameters()
    torch.random.set_rng_state(generator_state)
    return model


def tiny_trajectory_adapter(seed: int = 0) -> TrajectoryAdapter:
    """A ~2.6 M parameter `TrajectoryAdapter` with random (non-zero) weights, in eval mode."""
    torch.manual_seed(seed)
    model = TrajectoryAdapter(**TINY_ADAPTER_CONFIG)
    return randomize_zero_convs_(model, seed + 1).eval()


def tiny_landmark_adapter(seed: int = 0) -> LandmarkAdapter:
    """A ~2.7 M parameter `LandmarkAdapter` with random (non-zero) weights, in eval mode."""
    torch.manual_seed(seed)
    model = LandmarkAdapter(**TINY_ADAPTER_CONFIG, **TINY_LANDMARK_EXTRA)
    return randomize_zero_convs_(model, seed + 1).eval()


def tiny_adapter_inputs(
    model: MotionFieldAdapter,
    batch: int = 1,
    frames: int = 3,
    height: int = 64,
    width: int = 64,
    seed: int = 0,
    flow_scale: float = 3.0,
) -> dict:
    """Random forward kwargs for `model` (pose images included for a `LandmarkAdapter`).

    Image size H x W must be a multiple of 64; latents are H/8 x W/8.
    """
    generator = torch.Generator().manual_seed(seed)
    config = model.config
    inputs = {
        "sample": torch.randn(batch, frames, config.in_channels, height // 8, width // 8, generator=generator),
        "timestep": torch.tensor(0.5),
        "encoder_hidden_states": torch.randn(batch, 1, config.cross_attention_dim, generator=generator),
        "added_time_ids": torch.tensor([[6.0, 128.0, 0.02]]).repeat(batch, 1),
        "controlnet_cond": torch.rand(batch, 3, height, width, generator=generator) * 2 - 1,
        "controlnet_flow": torch.randn(batch, frames - 1, 2, height, width, generator=generator) * flow_scale,
    }
    if isinstance(model, LandmarkAdapter):
        inputs["landmarks"] = torch.rand(batch, frames, 3, height, width, generator=generator)
    return inputs


def randomize_batchnorm_(model: nn.Module, generator: torch.Generator) -> nn.Module:
    """Random BN affine parameters *and* running statistics, so eval-mode BN is not the identity."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.copy_(torch.rand(m.weight.shape, generator=generator) + 0.5)
                m.bias.copy_(torch.randn(m.bias.shape, generator=generator) * 0.1)
                m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=generator) * 0.1)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=generator) + 0.5)
                m.num_batches_tracked.fill_(7)
    return model


def tiny_cmp(seed: int = 0) -> CMP:
    """A ~30 k parameter CMP with random weights and BN statistics, in eval mode."""
    torch.manual_seed(seed)
    return randomize_batchnorm_(CMP(**TINY_CMP), torch.Generator().manual_seed(seed)).eval()
