"""MofaUNet: stock SVD UNet numerics without residuals, MOFA's skip multipliers with them (spec §5)."""

from __future__ import annotations

import pytest
import torch
from diffusers import UNetSpatioTemporalConditionModel

from mofa_engine.models.unet import SKIP_MULTIPLIERS, MofaUNet, skip_multipliers
from tests.mofa_engine.tiny_configs import TINY_SHARED_UNET_KWARGS

TINY_UNET = {**TINY_SHARED_UNET_KWARGS, "num_attention_heads": (2, 4, 4, 4), "sample_size": 8, "num_frames": 3}


@pytest.fixture(scope="module")
def unet() -> MofaUNet:
    torch.manual_seed(0)
    return MofaUNet(**TINY_UNET).eval()


def _inputs(unet: MofaUNet, batch: int = 2, frames: int = 3, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return (
        torch.randn(batch, frames, 8, 8, 8, generator=g),
        torch.tensor(0.7),
        torch.randn(batch, 1, unet.config.cross_attention_dim, generator=g),
        torch.tensor([[6.0, 128.0, 0.02]]).repeat(batch, 1),
    )


def _capture_skips(unet: MofaUNet) -> tuple[list, list]:
    """Hook every up block; record the skips it receives (in skip order, conv_in first) and its input."""
    skips_by_block, inputs = [], []

    def hook(module, args, kwargs):
        skips_by_block.append(tuple(kwargs["res_hidden_states_tuple"]))
        inputs.append(kwargs["hidden_states"])

    handles = [block.register_forward_pre_hook(hook, with_kwargs=True) for block in unet.up_blocks]
    return skips_by_block, inputs, handles


def _skips_in_order(skips_by_block: list) -> list[torch.Tensor]:
    # up block 0 consumes the deepest skips; reverse the blocks to get conv_in first
    return [skip for block in reversed(skips_by_block) for skip in block]


def _residuals(skips: list[torch.Tensor], seed: int = 1) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(s.shape, generator=g) for s in skips]


def test_skip_multipliers_are_mofas():
    assert skip_multipliers((3, 3, 3, 2)) == list(SKIP_MULTIPLIERS) == [4, 4, 4, 4, 3, 3, 3, 2, 2, 2, 1, 1]
    assert skip_multipliers((2, 2, 2, 1)) == [4, 4, 4, 3, 3, 2, 2, 1]


def test_skips_per_block_of_svd_layout(unet):
    assert unet._skips_per_block() == [3, 3, 3, 2]


def test_without_residuals_equals_stock_unet(unet):
    stock = UNetSpatioTemporalConditionModel(**TINY_UNET).eval()
    stock.load_state_dict(unet.state_dict())
    with torch.no_grad():
        ours = unet(*_inputs(unet)).sample
        theirs = stock(*_inputs(unet)).sample
    assert ours.shape == (2, 3, 4, 8, 8)
    torch.testing.assert_close(ours, theirs, rtol=0, atol=0)


def _reference_skips(base: list[torch.Tensor], residuals: list[torch.Tensor], per_block=(3, 3, 3, 2)):
    """MOFA's literal procedure: after every down block, add the residual to every skip collected so far."""
    skips = [base[0].clone()]
    position = 1
    for count in per_block:
        skips += [b.clone() for b in base[position : position + count]]
        position += count
        for i in range(len(skips)):
            skips[i] = skips[i] + residuals[i]
    return skips


def test_skip_residuals_hand_computed(unet):
    inputs = _inputs(unet)
    skips_by_block, up_inputs, handles = _capture_skips(unet)
    try:
        with torch.no_grad():
            unet(*inputs)
            base = _skips_in_order(skips_by_block)
            base_mid = up_inputs[0]
            skips_by_block.clear()
            up_inputs.clear()
            residuals = _residuals(base)
            mid = torch.randn(base_mid.shape, generator=torch.Generator().manual_seed(2))
            unet(*inputs, down_block_additional_residuals=residuals, mid_block_additional_residual=mid)
            got = _skips_in_order(skips_by_block)
    finally:
        for handle in handles:
            handle.remove()

    assert len(base) == len(got) == 12
    expected_reference = _reference_skips(base, residuals)
    for i, (b, r, g, ref) in enumerate(zip(base, residuals, got, expected_reference, strict=True)):
        torch.testing.assert_close(g, b + SKIP_MULTIPLIERS[i] * r, msg=f"skip {i}")
        torch.testing.assert_close(g, ref, msg=f"skip {i} vs the in-loop reference")
    # the mid residual is added once to the mid-block output (the first up block's input)
    torch.testing.assert_close(up_inputs[0], base_mid + mid)


def test_residuals_change_the_prediction_and_count_is_checked(unet):
    inputs = _inputs(unet)
    with torch.no_grad():
        base = unet(*inputs).sample
        skips_by_block, _, handles = _capture_skips(unet)
        unet(*inputs)
        for h in handles:
            h.remove()
        residuals = _residuals(_skips_in_order(skips_by_block))
        shifted = unet(*inputs, down_block_additional_residuals=residuals).sample
        assert not torch.allclose(base, shifted)
        with pytest.raises(ValueError, match="expected 12 down-block residuals, got 11"):
            unet(*inputs, down_block_additional_residuals=residuals[:-1])


def test_loads_a_stock_svd_unet_folder_unchanged(tmp_path, unet):
    stock = UNetSpatioTemporalConditionModel(**TINY_UNET)
    stock.save_pretrained(tmp_path)
    loaded = MofaUNet.from_pretrained(tmp_path)
    assert isinstance(loaded, MofaUNet)
    assert list(loaded.config.num_attention_heads) == [2, 4, 4, 4]  # architecture follows its config
    ours, theirs = loaded.state_dict(), stock.state_dict()
    assert list(ours) == list(theirs)
    for key, value in theirs.items():
        assert torch.equal(ours[key], value), key


def test_attention_runs_on_sdpa(unet):
    from diffusers.models.attention_processor import AttnProcessor2_0

    processors = unet.attn_processors
    assert processors and all(isinstance(p, AttnProcessor2_0) for p in processors.values())
