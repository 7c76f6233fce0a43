"""The shared body of the MOFA motion-field adapters (reference class `FlowControlNet`, spec section 4.3).

Owns `MotionFieldAdapter`, the network both published adapters (`flow_adapter.py`) are: the SVD
UNet's encoder half (diffusers' spatio-temporal down/mid blocks) with its time and micro-conditioning
embeddings, the first-frame encoder and its 4-level feature pyramid (1/8 .. 1/64), the per-level
forward splatting of that pyramid along the dense flow (`warp_level`, `downsample_flow`), and the
12 + 1 zero-conv residual outputs (`MotionFieldAdapterOutput`). The two subclasses only add their
`@register_to_config` signatures and the hooks `_embed_landmarks` / `_refine_warped`.

Attribute names are the published checkpoints' state-dict keys: keep them.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from diffusers.configuration_utils import ConfigMixin
from diffusers.models.controlnets.controlnet import ControlNetConditioningEmbedding, zero_module
from diffusers.models.embeddings import TimestepEmbedding, Timesteps
from diffusers.models.modeling_utils import ModelMixin
from diffusers.models.unets.unet_3d_blocks import UNetMidBlockSpatioTemporal, get_down_block
from torch import nn

from .flow_encoder import FlowEncoder
from .softsplat import softsplat

__all__ = ["REFERENCE_ATTENTION_HEADS", "MotionFieldAdapter", "MotionFieldAdapterOutput", "downsample_flow"]

# Heads of the reference FlowControlNet encoder, fixed regardless of its config.json.
REFERENCE_ATTENTION_HEADS: tuple[int, ...] = (5, 10, 10, 20)


@dataclass
class MotionFieldAdapterOutput:
    """What an adapter returns; unpacks as `(down, mid, flow, occlusion_masks)` like the reference tuple.

    Attributes:
        down_block_res_samples: 12 residuals for the UNet skips, `[B*T, C, h/2^k, w/2^k]`, already
            multiplied by `conditioning_scale`.
        mid_block_res_sample: `[B*T, C_last, h/8, w/8]` residual for the mid-block output (scaled).
        controlnet_flow: the input flow `[B, T-1, 2, H, W]`, echoed.
        occlusion_masks: landmark adapter only: 4 masks `[B, T-1, 1, H/s, W/s]` in (0, 1) for the
            levels s = 8, 16, 32, 64; `None` for the trajectory adapter.
    """

    down_block_res_samples: tuple[torch.Tensor, ...]
    mid_block_res_sample: torch.Tensor
    controlnet_flow: torch.Tensor
    occlusion_masks: list[torch.Tensor] | None = None

    def to_tuple(self) -> tuple:
        return (self.down_block_res_samples, self.mid_block_res_sample, self.controlnet_flow, self.occlusion_masks)

    def __iter__(self):
        return iter(self.to_tuple())

    def __getitem__(self, index: int):
        return self.to_tuple()[index]

    def __len__(self) -> int:
        return 4


def downsample_flow(flow: torch.Tensor, scale: int) -> torch.Tensor:
    """Nearest 1/`scale` down-sampling of a flow field, re-expressed in pixels of the coarse grid.

    Args:
        flow: `[..., 2, H, W]` displacements in pixels, H and W multiples of `scale`.
        scale: integer level scale s (8, 16, 32 or 64 in the adapters).

    Returns:
        `[..., 2, H/s, W/s]` where element (i, j) is `flow[..., s*i, s*j] / s`.
    """
    if flow.shape[-1] % scale or flow.shape[-2] % scale:
        raise ValueError(f"flow size {tuple(flow.shape[-2:])} is not a multiple of the level scale {scale}")
    return flow[..., ::scale, ::scale] / scale


class MotionFieldAdapter(ModelMixin, ConfigMixin):
    """Shared body of the two adapters; instantiate `TrajectoryAdapter` or `LandmarkAdapter`."""

    _supports_gradient_checkpointing = True

    def _build_encoder(
        self,
        in_channels: int,
        down_block_types: tuple[str, ...],
        block_out_channels: tuple[int, ...],
        addition_time_embed_dim: int,
        projection_class_embeddings_input_dim: int,
        layers_per_block: int,
        cross_attention_dim: int,
        transformer_layers_per_block: int,
        conditioning_channels: int,
        conditioning_embedding_out_channels: tuple[int, ...],
        encoder_attention_heads: tuple[int, ...] | None,
    ) -> None:
        heads = tuple(encoder_attention_heads or REFERENCE_ATTENTION_HEADS)
        if len(down_block_types) != 4 or len(block_out_channels) != 4 or len(heads) != 4:
            raise ValueError(
                "the adapters have exactly 4 down blocks (levels 1/8..1/64); got "
                f"down_block_types={down_block_types}, block_out_channels={block_out_channels}, heads={heads}"
            )
        if block_out_channels[3] != block_out_channels[2]:
            raise ValueError(
                f"block_out_channels[3] must equal block_out_channels[2] (the 1/64 level is added after "
                f"blocks 2 and 3), got {block_out_channels}"
            )
        if not isinstance(layers_per_block, int):
            raise ValueError(f"layers_per_block must be an int, got {layers_per_block!r}")

        # Time and micro-conditioning embeddings (same as the SVD UNet).
        time_embed_dim = block_out_channels[0] * 4
        self.conv_in = nn.Conv2d(in_channels, block_out_channels[0], kernel_size=3, padding=1)
        self.time_proj = Timesteps(block_out_channels[0], True, downscale_freq_shift=0)
        self.time_embedding = TimestepEmbedding(block_out_channels[0], time_embed_dim)
        self.add_time_proj = Timesteps(addition_time_embed_dim, True, downscale_freq_shift=0)
        self.add_embedding = TimestepEmbedding(projection_class_embeddings_input_dim, time_embed_dim)

        # Encoder half of the SVD UNet, built from diffusers' blocks.
        self.down_blocks = nn.ModuleList()
        controlnet_down = [block_out_channels[0]]
        output_channel = block_out_channels[0]
        for i, block_type in enumerate(down_block_types):
            input_channel, output_channel = output_channel, block_out_channels[i]
            is_final = i == len(down_block_types) - 1
            self.down_blocks.append(
                get_down_block(
                    block_type,
                    num_layers=layers_per_block,
                    transformer_layers_per_block=transformer_layers_per_block,
                    in_channels=input_channel,
                    out_channels=output_channel,
                    temb_channels=time_embed_dim,
                    add_downsample=not is_final,
                    resnet_eps=1e-5,
                    cross_attention_dim=cross_attention_dim,
                    num_attention_heads=heads[i],
                    resnet_act_fn="silu",
                )
            )
            controlnet_down += [output_channel] * (layers_per_block + (0 if is_final else 1))
        self.controlnet_down_blocks = nn.ModuleList(
            zero_module(nn.Conv2d(c, c, kernel_size=1)) for c in controlnet_down
        )

        # First-frame encoder and its coarser levels.
        self.controlnet_cond_embedding = ControlNetConditioningEmbedding(
            conditioning_embedding_channels=block_out_channels[0],
            conditioning_channels=conditioning_channels,
            block_out_channels=tuple(conditioning_embedding_out_channels),
        )
        self.controlnet_mid_block = zero_module(nn.Conv2d(block_out_channels[-1], block_out_channels[-1], 1))
        self.mid_block = UNetMidBlockSpatioTemporal(
            block_out_channels[-1],
            temb_channels=time_embed_dim,
            transformer_layers_per_block=transformer_layers_per_block,
            cross_attention_dim=cross_attention_dim,
            num_attention_heads=heads[-1],
        )
        # Channels of the levels 1/8, 1/16, 1/32, 1/64 = channels of x where each is added.
        self.level_channels = (block_out_channels[0], *block_out_channels[:3])
        self.flow_encoder = FlowEncoder(
            block_out_channels[0], self.level_channels[1:], zero_convs=self._flow_encoder_zero_convs
        )

    # -- hooks the two adapters specialise -------------------------------------------------------
    _flow_encoder_zero_convs: bool = False

    def _embed_landmarks(self, landmarks: torch.Tensor | None, dtype: torch.dtype) -> torch.Tensor | None:
        """Pose-image features `[B*T, C0, h, w]`, or None for adapters without a landmark input."""
        raise NotImplementedError

    def _refine_warped(
        self, scale: int, reference: torch.Tensor, flow: torch.Tensor, warped: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Post-process splatted features of one level; returns (features, occlusion mask | None)."""
        return warped, None

    # -- forward ---------------------------------------------------------------------------------
    def _embeddings(
        self, timestep: torch.Tensor | float | int, added_time_ids: torch.Tensor, sample: torch.Tensor
    ) -> torch.Tensor:
        """Time + micro-conditioning embedding `[B, 4*C0]` (identical to the SVD UNet's)."""
        batch_size = sample.shape[0]
        timesteps = timestep
        if not torch.is_tensor(timesteps):
            if isinstance(timestep, float):
                dtype = torch.float32 if sample.device.type == "mps" else torch.float64
            else:
                dtype = torch.int32 if sample.device.type == "mps" else torch.int64
            timesteps = torch.tensor([timesteps], dtype=dtype, device=sample.device)
        elif timesteps.ndim == 0:
            timesteps = timesteps[None].to(sample.device)
        timesteps = timesteps.expand(batch_size)

        emb = self.time_embedding(self.time_proj(timesteps).to(dtype=sample.dtype))
        time_embeds = self.add_time_proj(added_time_ids.flatten())
        time_embeds = time_embeds.reshape(batch_size, -1).to(emb.dtype)  # [B*3, D] -> [B, 3*D]
        return emb + self.add_embedding(time_embeds)

    def warp_level(
        self, features: torch.Tensor, flow: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Splat one pyramid level to every frame.

        Args:
            features: `[B, C, H/s, W/s]` first-frame features of the level.
            flow: `[B, T-1, 2, H, W]` dense forward flow (pixels of the image grid).

        Returns:
            `[B*T, C, H/s, W/s]` with frame 0 unwarped (batch-major, frame-minor), and the
            occlusion mask `[B, T-1, 1, H/s, W/s]` or None.
        """
        batch, channels, height, width = features.shape
        scale = flow.shape[-2] // height
        flow_s = downsample_flow(flow, scale)  # [B,T-1,2,H,W] -> [B,T-1,2,H/s,W/s]
        frames = flow_s.shape[1]
        flow_s = flow_s.flatten(0, 1)  # [B,T-1,2,h,w] -> [B*(T-1),2,h,w]
        reference = features.unsqueeze(1).expand(batch, frames, channels, height, width)
        reference = reference.flatten(0, 1)  # [B,T-1,C,h,w] -> [B*(T-1),C,h,w]
        warped = softsplat(reference, flow_s)
        warped, mask = self._refine_warped(scale, reference, flow_s, warped)
        warped = warped.unflatten(0, (batch, frames))  # [B*(T-1),C,h,w] -> [B,T-1,C,h,w]
        stacked = torch.cat([features.unsqueeze(1), warped], dim=1)  # [B,T,C,h,w]
        if mask is not None:
            mask = mask.unflatten(0, (batch, frames))  # [B*(T-1),1,h,w] -> [B,T-1,1,h,w]
        return stacked.flatten(0, 1), mask  # [B,T,C,h,w] -> [B*T,C,h,w]

    def _check_inputs(
        self, sample, encoder_hidden_states, added_time_ids, controlnet_cond, controlnet_flow, landmarks
    ) -> None:
        if sample.ndim != 5:
            raise ValueError(f"sample must be [B,T,C,h,w], got {tuple(sample.shape)}")
        batch, frames, _, height, width = sample.shape
        image_size = (8 * height, 8 * width)
        if image_size[0] % 64 or image_size[1] % 64:
            raise ValueError(f"image size {image_size} (8 x latent size) must be a multiple of 64")
        if tuple(controlnet_cond.shape) != (batch, self.config.conditioning_channels, *image_size):
            raise ValueError(
                f"controlnet_cond must be {[batch, self.config.conditioning_channels, *image_size]}, "
                f"got {list(controlnet_cond.shape)}"
            )
        if tuple(controlnet_flow.shape) != (batch, frames - 1, 2, *image_size):
            raise ValueError(
                f"controlnet_flow must be {[batch, frames - 1, 2, *image_size]}, got {list(controlnet_flow.shape)}"
            )
        if encoder_hidden_states.shape[0] != batch or added_time_ids.shape[0] != batch:
            raise ValueError(
                f"batch {batch}: encoder_hidden_states {list(encoder_hidden_states.shape)}, "
                f"added_time_ids {list(added_time_ids.shape)}"
            )
        if landmarks is not None and tuple(landmarks.shape) != (batch, frames, 3, *image_size):
            raise ValueError(f"landmarks must be {[batch, frames, 3, *image_size]}, got {list(landmarks.shape)}")

    def forward(
        self,
        sample: torch.Tensor,
        timestep: torch.Tensor | float | int,
        encoder_hidden_states: torch.Tensor,
        added_time_ids: torch.Tensor,
        controlnet_cond: torch.Tensor,
        controlnet_flow: torch.Tensor,
        landmarks: torch.Tensor | None = None,
        conditioning_scale: float = 1.0,
        return_dict: bool = True,
    ) -> MotionFieldAdapterOutput | tuple:
        """Residuals for the SVD UNet's 12 skips and its mid block (spec section 4.3).

        Args:
            sample: `[B, T, 8, h, w]` scaled noisy latents concatenated with the image latents.
            timestep: scalar (tensor or number) continuous EDM timestep `0.25 * ln(sigma)`.
            encoder_hidden_states: `[B, 1, D]` CLIP image embedding.
            added_time_ids: `[B, 3]` (fps - 1, motion bucket, noise augmentation) = [6, 128, 0.02].
            controlnet_cond: `[B, 3, H, W]` first frame in [-1, 1], H = 8h, W = 8w multiples of 64.
            controlnet_flow: `[B, T-1, 2, H, W]` forward flow frame 0 -> t in pixels (dx, dy).
            landmarks: landmark adapter only: pose images `[B, T, 3, H, W]` in [0, 1].
            conditioning_scale: multiplies every residual.
            return_dict: return a `MotionFieldAdapterOutput` (True) or a plain 4-tuple.
        """
        self._check_inputs(
            sample, encoder_hidden_states, added_time_ids, controlnet_cond, controlnet_flow, landmarks
        )
        batch, frames = sample.shape[:2]

        # 1. embeddings, repeated per frame
        emb = self._embeddings(timestep, added_time_ids, sample)
        emb = emb.repeat_interleave(frames, dim=0)  # [B,D] -> [B*T,D]
        encoder_hidden_states = encoder_hidden_states.repeat_interleave(frames, dim=0)  # [B,L,D] -> [B*T,L,D]

        # 2. latents
        x = self.conv_in(sample.flatten(0, 1))  # [B,T,8,h,w] -> [B*T,8,h,w] -> [B*T,C0,h,w]

        # 3.-4. first-frame pyramid, splatted to every frame
        first = self.controlnet_cond_embedding(controlnet_cond.to(x.dtype))  # [B,C0,h,w]
        pyramid = [first, *self.flow_encoder(first)]
        levels, masks = [], []
        for features in pyramid:
            level, mask = self.warp_level(features, controlnet_flow)
            levels.append(level)
            masks.append(mask)

        # 5. pose-image features (landmark adapter)
        pose = self._embed_landmarks(landmarks, x.dtype)  # [B*T,C0,h,w] | None

        # 6.-8. encoder with the injections
        x = x + levels[0]
        if pose is not None:
            x = x + pose
        image_only_indicator = torch.zeros(batch, frames, dtype=x.dtype, device=x.device)
        skips = [x]
        for i, block in enumerate(self.down_blocks):
            if getattr(block, "has_cross_attention", False):
                x, residuals = block(
                    hidden_states=x,
                    temb=emb,
                    encoder_hidden_states=encoder_hidden_states,
                    image_only_indicator=image_only_indicator,
                )
            else:
                x, residuals = block(hidden_states=x, temb=emb, image_only_indicator=image_only_indicator)
            skips.extend(residuals)  # taken before the injections below
            x = x + levels[min(i + 1, 3)]
            if i == 0 and pose is not None:
                x = x + pose[..., ::2, ::2]  # nearest 1/2: [B*T,C0,h,w] -> [B*T,C0,h/2,w/2]
        x = x + levels[3]
        x = self.mid_block(
            hidden_states=x,
            temb=emb,
            encoder_hidden_states=encoder_hidden_states,
            image_only_indicator=image_only_indicator,
        )

        # 9. zero convs and scale
        down = tuple(conv(skip) * conditioning_scale
                     for conv, skip in zip(self.controlnet_down_blocks, skips, strict=True))
        mid = self.controlnet_mid_block(x) * conditioning_scale
        occlusion_masks = masks if masks[0] is not None else None
        output = MotionFieldAdapterOutput(down, mid, controlnet_flow, occlusion_masks)
        return output if return_dict else output.to_tuple()
