"""The SVD-xt UNet with MOFA's ControlNet injection (spec §5).

`MofaUNet` is diffusers' `UNetSpatioTemporalConditionModel` unchanged in its `__init__` (same state
dict, so SVD-xt-1-1 `unet/` loads with `from_pretrained` as is, and the architecture follows that
folder's own `config.json`); only `forward` differs: it accepts the 12 skip residuals and the mid
residual an adapter produces.

The reference UNet adds the residuals *inside* the down-block loop: after every down block, every
skip tensor collected so far receives its residual once more. Its net effect, verified in the spec
by hooking the up blocks, is `skip_i + k_i * residual_i` with `k = SKIP_MULTIPLIERS`, and the
encoder's main path stays untouched. We implement that net effect directly (one multiply-add per
skip, right before the up path) instead of re-adding in the loop; the numbers are the same.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from diffusers import UNetSpatioTemporalConditionModel
from diffusers.models.unets.unet_spatio_temporal_condition import UNetSpatioTemporalConditionOutput

# Skip i (i = 0 is the conv_in output) is collected before down block b(i) and re-added after each
# of the blocks b(i)..3: 4 times for conv_in and block 0's three skips, 3 for block 1's, 2 for
# block 2's, 1 for block 3's two skips.
SKIP_MULTIPLIERS: tuple[int, ...] = (4, 4, 4, 4, 3, 3, 3, 2, 2, 2, 1, 1)


def skip_multipliers(skips_per_block: Sequence[int]) -> list[int]:
    """Multiplier of each skip for a UNet whose down blocks emit `skips_per_block` skips each.

    `skips_per_block` excludes the conv_in skip; for SVD-xt it is (3, 3, 3, 2) -> SKIP_MULTIPLIERS.
    """
    n_blocks = len(skips_per_block)
    multipliers = [n_blocks]  # conv_in output: present before block 0, re-added after every block
    for block, count in enumerate(skips_per_block):
        multipliers += [n_blocks - block] * count
    return multipliers


def _cross(block: torch.nn.Module) -> bool:
    return bool(getattr(block, "has_cross_attention", False))


class MofaUNet(UNetSpatioTemporalConditionModel):
    """SVD UNet whose skips and mid-block output take ControlNet residuals (MOFA, spec §5)."""

    def _skips_per_block(self) -> list[int]:
        counts = []
        for block in self.down_blocks:
            has_down = getattr(block, "downsamplers", None) is not None
            counts.append(len(block.resnets) + int(has_down))
        return counts

    def forward(
        self,
        sample: torch.Tensor,
        timestep: torch.Tensor | float | int,
        encoder_hidden_states: torch.Tensor,
        added_time_ids: torch.Tensor,
        down_block_additional_residuals: Sequence[torch.Tensor] | None = None,
        mid_block_additional_residual: torch.Tensor | None = None,
        return_dict: bool = True,
    ) -> UNetSpatioTemporalConditionOutput | tuple:
        """Predict v for `sample`; residuals, when given, are injected as in MOFA.

        Args:
            sample: float `[B, T, C_in, h, w]` scaled noisy latents ++ image latents.
            timestep: scalar (tensor or number), SVD's continuous timestep `0.25 * ln(sigma)`.
            encoder_hidden_states: float `[B, 1, D]` CLIP image embeddings.
            added_time_ids: float `[B, 3]` micro-conditioning ids.
            down_block_additional_residuals: 12 tensors `[B*T, C_i, h_i, w_i]` (one per skip, conv_in
                first); skip i receives `k_i * residual_i`, `k = SKIP_MULTIPLIERS`. None: stock UNet.
            mid_block_additional_residual: `[B*T, C_mid, h/8, w/8]` added once to the mid-block output.
            return_dict: return a `UNetSpatioTemporalConditionOutput` instead of a tuple.

        Returns:
            `sample` float `[B, T, C_out, h, w]` (v-prediction for SVD).
        """
        # 1. time and micro-conditioning embeddings
        batch_size, num_frames = sample.shape[:2]
        sample_hw = sample.shape[-2:]
        timesteps = timestep
        if not torch.is_tensor(timesteps):
            timesteps = torch.tensor([timesteps], dtype=torch.float32, device=sample.device)
        elif timesteps.ndim == 0:
            timesteps = timesteps[None]
        timesteps = timesteps.to(sample.device).expand(batch_size)
        emb = self.time_embedding(self.time_proj(timesteps).to(dtype=sample.dtype))
        time_embeds = self.add_time_proj(added_time_ids.flatten())
        time_embeds = time_embeds.reshape((batch_size, -1)).to(emb.dtype)  # [B*3, d] -> [B, 3*d]
        emb = emb + self.add_embedding(time_embeds)

        # [B,T,C,h,w] -> [B*T,C,h,w]; per-video embeddings repeated per frame (batch-major)
        sample = sample.flatten(0, 1)
        emb = emb.repeat_interleave(num_frames, dim=0)
        encoder_hidden_states = encoder_hidden_states.repeat_interleave(num_frames, dim=0)
        image_only_indicator = torch.zeros(batch_size, num_frames, dtype=sample.dtype, device=sample.device)

        # 2. down path (the main path is never modified by the residuals)
        sample = self.conv_in(sample)
        skips: tuple[torch.Tensor, ...] = (sample,)
        for block in self.down_blocks:
            kwargs = {"encoder_hidden_states": encoder_hidden_states} if _cross(block) else {}
            sample, res = block(hidden_states=sample, temb=emb, image_only_indicator=image_only_indicator, **kwargs)
            skips += res

        # 3. skip residuals: net effect of MOFA's in-loop re-addition, skip_i + k_i * residual_i
        if down_block_additional_residuals is not None:
            multipliers = skip_multipliers(self._skips_per_block())
            if len(down_block_additional_residuals) != len(skips):
                raise ValueError(
                    f"expected {len(skips)} down-block residuals, got {len(down_block_additional_residuals)}"
                )
            skips = tuple(
                skip + k * res.to(skip.dtype)
                for skip, k, res in zip(skips, multipliers, down_block_additional_residuals, strict=True)
            )

        # 4. mid block, its residual added once
        sample = self.mid_block(
            hidden_states=sample,
            temb=emb,
            encoder_hidden_states=encoder_hidden_states,
            image_only_indicator=image_only_indicator,
        )
        if mid_block_additional_residual is not None:
            sample = sample + mid_block_additional_residual.to(sample.dtype)

        # 5. up path (stock); sizes are forced when h or w is not a multiple of 2**num_upsamplers
        force_size = any(s % 2**self.num_upsamplers != 0 for s in sample_hw)
        for i, block in enumerate(self.up_blocks):
            n = len(block.resnets)
            res, skips = skips[-n:], skips[:-n]
            kwargs = {"encoder_hidden_states": encoder_hidden_states} if _cross(block) else {}
            if force_size and i < len(self.up_blocks) - 1:
                kwargs["upsample_size"] = skips[-1].shape[2:]
            sample = block(
                hidden_states=sample,
                temb=emb,
                res_hidden_states_tuple=res,
                image_only_indicator=image_only_indicator,
                **kwargs,
            )

        # 6. post-process; [B*T,C,h,w] -> [B,T,C,h,w]
        sample = self.conv_out(self.conv_act(self.conv_norm_out(sample)))
        sample = sample.reshape(batch_size, num_frames, *sample.shape[1:])
        if not return_dict:
            return (sample,)
        return UNetSpatioTemporalConditionOutput(sample=sample)
