"""Which batch row's CLIP context each temporal transformer reads: the published demo's layout or the fixed one.

SVD's spatio-temporal transformers (diffusers `TransformerSpatioTemporalModel`) give their temporal
blocks a one-token cross-attention context per spatial position: the CLIP embedding of the video's
first frame, repeated `h*w` times. The temporal blocks lay their hidden states out as `(b h w)`
rows of `num_frames` tokens.

* `"trained"`: the context rows are built in the same `(b h w)` order, so every row reads its own
  video's embedding. This is what current diffusers computes (fixed upstream in diffusers PR #7268),
  what Stability's SVD code computes, and what MOFA's training saw (batch 1, where both layouts agree).
* `"reference"`: diffusers 0.24, which the published MOFA-Video demo ran, built the rows in `(h w b)`
  order. Under classifier-free guidance (batch `[uncond, cond]`) every temporal block of the UNet
  and of both adapters then hands the zero (uncond) embedding to the even flattened rows and the
  CLIP embedding to the odd ones, in both halves of the batch. With batch 1 nothing changes. The
  published demo videos were made this way (spec §6.3b): this is the layout that reproduces them.

The layout is switched on a built model with `set_temporal_context_layout(model, layout)`: every
`TemporalBasicTransformerBlock` in it becomes a `ReferenceContextTemporalBlock` (a subclass whose
`forward` reorders the context rows and defers to diffusers' own block) or goes back to the diffusers
class. Parameters, state-dict keys, device and dtype are untouched; the switch costs one walk over
the modules, so it can change from one call to the next.
"""

from __future__ import annotations

from typing import Literal, get_args

import torch
from diffusers.models.attention import TemporalBasicTransformerBlock
from torch import nn

__all__ = [
    "ReferenceContextTemporalBlock",
    "TemporalContextLayout",
    "reference_context_rows",
    "set_temporal_context_layout",
    "temporal_context_layout",
]

TemporalContextLayout = Literal["reference", "trained"]
LAYOUTS: tuple[str, ...] = get_args(TemporalContextLayout)


def reference_context_rows(context: torch.Tensor, batch_size: int) -> torch.Tensor:
    """Reorder temporal-block context rows from `(b h w)` to diffusers 0.24's `(h w b)`.

    Args:
        context: float `[B*h*w, n, C]`, row `b*h*w + p` holding video b's context (what current
            diffusers passes to a temporal block).
        batch_size: B, the number of videos in the batch.

    Returns:
        float `[B*h*w, n, C]` whose row `r` holds video `r % B`'s context (row `p*B + b` = video b), i.e.
        `first[None].broadcast_to(h*w, B, n, C).reshape(h*w*B, n, C)` as diffusers 0.24 built it.
    """
    rows = context.shape[0]
    if batch_size < 1 or rows % batch_size:
        raise ValueError(f"{rows} context rows do not split into a batch of {batch_size}")
    # [B*hw,n,C] -> [B,hw,n,C] -> [hw,B,n,C] -> [hw*B,n,C]
    by_video = context.reshape(batch_size, rows // batch_size, *context.shape[1:])
    return by_video.transpose(0, 1).reshape(context.shape)


class ReferenceContextTemporalBlock(TemporalBasicTransformerBlock):
    """diffusers' temporal transformer block fed the diffusers-0.24 context layout (see the module doc).

    Adds no parameters: instances are made by switching the class of a built block
    (`set_temporal_context_layout`), never constructed with new weights.
    """

    def forward(
        self, hidden_states: torch.Tensor, num_frames: int, encoder_hidden_states: torch.Tensor | None = None
    ) -> torch.Tensor:
        """hidden_states float `[B*F, h*w, C]`; encoder_hidden_states `[B*h*w, n, C']` in `(b h w)` order."""
        if encoder_hidden_states is not None:
            batch_size = hidden_states.shape[0] // num_frames
            encoder_hidden_states = reference_context_rows(encoder_hidden_states, batch_size)
        return super().forward(hidden_states, num_frames, encoder_hidden_states)


_BLOCK_CLASS = {"reference": ReferenceContextTemporalBlock, "trained": TemporalBasicTransformerBlock}


def _temporal_blocks(model: nn.Module) -> list[nn.Module]:
    return [m for m in model.modules() if type(m) in (TemporalBasicTransformerBlock, ReferenceContextTemporalBlock)]


def set_temporal_context_layout(model: nn.Module, layout: TemporalContextLayout) -> int:
    """Give every temporal transformer block in `model` the context `layout`; return how many blocks.

    Works on any module tree built from diffusers' spatio-temporal blocks (the MOFA UNet, both
    adapters). Switching back and forth is exact; weights and keys are not touched.
    """
    if layout not in LAYOUTS:
        raise ValueError(f"temporal context layout must be one of {LAYOUTS}, got {layout!r}")
    blocks = _temporal_blocks(model)
    for block in blocks:
        block.__class__ = _BLOCK_CLASS[layout]
    return len(blocks)


def temporal_context_layout(model: nn.Module) -> TemporalContextLayout | None:
    """The layout of `model`'s temporal blocks; None when it has none. Raises ValueError when mixed."""
    kinds = {type(block) for block in _temporal_blocks(model)}
    if not kinds:
        return None
    if len(kinds) > 1:
        raise ValueError("the model's temporal blocks use both context layouts")
    return "reference" if kinds == {ReferenceContextTemporalBlock} else "trained"
