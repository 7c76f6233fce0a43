"""Temporal-context layouts under CFG (batch 2): `reference` (diffusers 0.24, the published demo) vs `trained`.

Spec §6.3b: diffusers 0.24 built the temporal blocks' one-token context in `(h w b)` order, so with
the CFG batch [uncond, cond] every even flattened row reads the uncond embedding and every odd row
the cond one. Batch 1 cannot tell the layouts apart, so every comparison here uses batch 2.
"""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from diffusers.models.attention import TemporalBasicTransformerBlock

from mofa_engine.models.temporal_context import (
    ReferenceContextTemporalBlock,
    reference_context_rows,
    set_temporal_context_layout,
    temporal_context_layout,
)
from mofa_engine.models.unet import MofaUNet
from tests.mofa_engine.tiny_configs import TINY_SHARED_UNET_KWARGS, tiny_adapter_inputs, tiny_landmark_adapter
from tests.mofa_engine.tiny_configs import tiny_trajectory_adapter

TINY_UNET = {**TINY_SHARED_UNET_KWARGS, "num_attention_heads": (2, 4, 4, 4), "sample_size": 8, "num_frames": 3}
FRAMES, LATENT = 3, 8


@pytest.fixture(scope="module")
def unet() -> MofaUNet:
    torch.manual_seed(0)
    return MofaUNet(**TINY_UNET).eval()


def cfg_inputs(batch: int = 2, seed: int = 0) -> dict:
    """UNet inputs; with batch 2 the context is [zeros (uncond), CLIP-like (cond)] as under CFG."""
    g = torch.Generator().manual_seed(seed)
    context = torch.randn(batch, 1, TINY_UNET["cross_attention_dim"], generator=g)
    if batch == 2:
        context[0] = 0
    return {
        "sample": torch.randn(batch, FRAMES, 8, LATENT, LATENT, generator=g),
        "timestep": torch.tensor(0.7),
        "encoder_hidden_states": context,
        "added_time_ids": torch.tensor([[6.0, 128.0, 0.02]]).repeat(batch, 1),
    }


def run(model, layout: str, inputs: dict) -> torch.Tensor:
    set_temporal_context_layout(model, layout)
    with torch.no_grad():
        return model(**inputs, return_dict=False)[0]


def relative(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm())


def first_temporal_attn2(model) -> torch.nn.Module:
    return next(m for m in model.modules() if isinstance(m, TemporalBasicTransformerBlock)).attn2


# ---------------------------------------------------------------- the row order itself
def test_reference_rows_put_video_r_mod_b_on_row_r():
    hw, channels = 6, 4
    context = torch.stack([torch.full((hw, 1, channels), float(b)) for b in range(3)]).flatten(0, 1)  # (b h w)
    rows = reference_context_rows(context, 3)
    assert rows.shape == context.shape
    assert rows[:, 0, 0].tolist() == [r % 3 for r in range(3 * hw)]
    with pytest.raises(ValueError, match="do not split"):
        reference_context_rows(context, 4)


@pytest.mark.parametrize("layout", ["reference", "trained"])
def test_each_row_reads_the_hand_computed_context(unet, layout):
    """The first temporal block's cross-attention, batch 2: which embedding reaches each row, and its
    output. One key per row, so the softmax is 1 and the output is `to_out(to_v(context_row))`."""
    inputs = cfg_inputs()
    seen = {}
    attn2 = first_temporal_attn2(unet)

    def hook(_module, args, kwargs, output):
        seen["query"], seen["context"], seen["out"] = args[0], kwargs["encoder_hidden_states"], output

    handle = attn2.register_forward_hook(hook, with_kwargs=True)
    try:
        run(unet, layout, inputs)
    finally:
        handle.remove()
    uncond, cond = inputs["encoder_hidden_states"][:, 0]  # [C] each
    rows = seen["query"].shape[0]  # B * h * w
    hw = rows // 2
    if layout == "reference":  # diffusers 0.24: (h w b) -> row r reads video r % 2, in both halves
        expected_video = [r % 2 for r in range(rows)]
    else:  # (b h w): the first h*w rows are video 0's
        expected_video = [r // hw for r in range(rows)]
    expected_context = torch.stack([(uncond, cond)[v] for v in expected_video])  # [rows, C]
    torch.testing.assert_close(seen["context"][:, 0], expected_context, rtol=0, atol=0)

    value = F.linear(expected_context, attn2.to_v.weight, attn2.to_v.bias)
    expected_out = F.linear(value, attn2.to_out[0].weight, attn2.to_out[0].bias)  # [rows, C_inner]
    torch.testing.assert_close(seen["out"], expected_out[:, None].expand_as(seen["out"]), rtol=1e-5, atol=1e-5)


# ---------------------------------------------------------------- whole networks, batch 2
def test_trained_layout_is_two_independent_videos(unet):
    """`trained`: a CFG batch gives exactly what the two videos give one at a time (float64, so batched
    and unbatched kernels agree to rounding)."""
    model = copy.deepcopy(unet).double()
    inputs = {k: v.double() for k, v in cfg_inputs().items()}
    both = run(model, "trained", inputs)
    alone = torch.cat([run(model, "trained", {k: v if k == "timestep" else v[i : i + 1] for k, v in inputs.items()})
                       for i in range(2)])
    torch.testing.assert_close(both, alone, rtol=1e-10, atol=1e-10)


def test_reference_layout_equals_the_diffusers_024_formula(unet):
    """`reference` equals a stock (trained-layout) UNet whose every temporal cross-attention is handed
    the context exactly as diffusers 0.24 built it (spec §6.3b):
    `first[None].broadcast_to(h*w, B, 1, C).reshape(h*w*B, 1, C)`, first = the UNet's [B,1,C] context."""
    inputs = cfg_inputs()
    first = inputs["encoder_hidden_states"]  # [B,1,C]
    batch, _, channels = first.shape

    def as_in_024(_module, args, kwargs):
        hw = args[0].shape[0] // batch
        kwargs["encoder_hidden_states"] = first[None].broadcast_to(hw, batch, 1, channels).reshape(hw * batch, 1, channels)
        return args, kwargs

    set_temporal_context_layout(unet, "trained")
    blocks = [m for m in unet.modules() if isinstance(m, TemporalBasicTransformerBlock)]
    handles = [b.attn2.register_forward_pre_hook(as_in_024, with_kwargs=True) for b in blocks]
    try:
        with torch.no_grad():
            expected = unet(**inputs, return_dict=False)[0]
    finally:
        for h in handles:
            h.remove()
    got = run(unet, "reference", inputs)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


def test_the_layouts_differ_under_cfg_and_agree_for_batch_1(unet):
    cfg = cfg_inputs()
    reference, trained = run(unet, "reference", cfg), run(unet, "trained", cfg)
    assert relative(reference, trained) > 0.01, relative(reference, trained)
    assert relative(reference[1], trained[1]) > 0.01  # the conditional branch moves too

    single = cfg_inputs(batch=1)
    stock = run(unet, "trained", single)
    assert torch.equal(run(unet, "reference", single), stock)


@pytest.mark.parametrize("make", [tiny_landmark_adapter, tiny_trajectory_adapter], ids=["landmark", "trajectory"])
def test_both_adapters_follow_the_layout(make):
    adapter = make()
    cfg = tiny_adapter_inputs(adapter, batch=2)
    cfg["encoder_hidden_states"][0] = 0  # uncond
    out_ref = run(adapter, "reference", cfg)
    out_trained = run(adapter, "trained", cfg)
    assert relative(out_ref[-1], out_trained[-1]) > 0.01  # a deep residual

    single = tiny_adapter_inputs(adapter, batch=1)
    for a, b in zip(run(adapter, "reference", single), run(adapter, "trained", single), strict=True):
        assert torch.equal(a, b)


# ---------------------------------------------------------------- switching
def test_switching_keeps_weights_keys_and_is_reversible(unet):
    keys = {k: v.clone() for k, v in unet.state_dict().items()}
    blocks = set_temporal_context_layout(unet, "reference")
    assert blocks == sum(isinstance(m, TemporalBasicTransformerBlock) for m in unet.modules()) > 0
    assert temporal_context_layout(unet) == "reference"
    assert all(type(m) is ReferenceContextTemporalBlock for m in unet.modules()
               if isinstance(m, TemporalBasicTransformerBlock))
    set_temporal_context_layout(unet, "trained")
    assert temporal_context_layout(unet) == "trained"
    state = unet.state_dict()
    assert state.keys() == keys.keys() and all(torch.equal(state[k], v) for k, v in keys.items())
    assert temporal_context_layout(torch.nn.Linear(2, 2)) is None
    with pytest.raises(ValueError, match="reference"):
        set_temporal_context_layout(unet, "fixed")
