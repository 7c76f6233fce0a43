"""MOFA motion-field adapters: published layout at full size (meta), loading, and tiny-model behaviour."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import save_file

from mofa_engine.models.flow_adapter import LandmarkAdapter, TrajectoryAdapter
from mofa_engine.models.motion_field_adapter import MotionFieldAdapterOutput, downsample_flow
from mofa_engine.models.softsplat import softsplat
from tests.mofa_engine.tiny_configs import (
    TINY_ADAPTER_CONFIG,
    TINY_LANDMARK_EXTRA,
    tiny_adapter_inputs,
    tiny_landmark_adapter,
    tiny_trajectory_adapter,
)

KINDS = {
    "traj": (TrajectoryAdapter, 694_314_017, 683),
    "ldmk": (LandmarkAdapter, 722_453_685, 765),
}


def _manifest(fixtures, kind: str) -> dict:
    return json.loads((fixtures / "manifests" / f"manifest_{kind}_controlnet.json").read_text())


def _published_config(fixtures, kind: str) -> dict:
    return json.loads((fixtures / f"config_{kind}_controlnet.json").read_text())


def _shapes(model: torch.nn.Module) -> dict:
    return {k: list(v.shape) for k, v in model.state_dict().items()}


def _heads(model) -> list[int]:
    blocks = [model.down_blocks[i].attentions[0] for i in range(3)] + [model.mid_block.attentions[0]]
    return [b.transformer_blocks[0].attn1.heads for b in blocks]


# -- full size, on the meta device -----------------------------------------------------------------


@pytest.mark.parametrize("kind", ["traj", "ldmk"])
def test_default_build_matches_manifest_exactly(fixtures, kind):
    cls, params, keys = KINDS[kind]
    with torch.device("meta"):
        model = cls()
    assert _shapes(model) == _manifest(fixtures, kind)
    assert len(model.state_dict()) == keys
    assert sum(p.numel() for p in model.parameters()) == params


@pytest.mark.parametrize("kind", ["traj", "ldmk"])
def test_published_config_builds_published_network(fixtures, kind):
    cls = KINDS[kind][0]
    config = _published_config(fixtures, kind)
    assert config["_class_name"] == "FlowControlNet"
    _, unused, _ = cls.extract_init_dict(dict(config))
    assert unused == {}  # every published key is understood (no "unexpected key" warning)
    with torch.device("meta"):
        model = cls.from_config(config)
    assert _shapes(model) == _manifest(fixtures, kind)


@pytest.mark.parametrize("kind", ["traj", "ldmk"])
def test_heads_are_fixed_whatever_the_config_says(fixtures, kind):
    cls = KINDS[kind][0]
    config = {**_published_config(fixtures, kind), "num_attention_heads": [5, 10, 20, 20]}  # the SVD UNet's
    with torch.device("meta"):
        model = cls.from_config(config)
    assert _heads(model) == [5, 10, 10, 20]
    attn = model.down_blocks[2].attentions[0].transformer_blocks[0].attn1
    assert attn.heads == 10 and attn.to_q.weight.shape == (1280, 1280)  # 10 heads of 128


def test_traj_has_zeroconvs_and_ldmk_has_pose_and_occlusion_modules(fixtures):
    traj, ldmk = _manifest(fixtures, "traj"), _manifest(fixtures, "ldmk")
    assert any(k.startswith("flow_encoder.zeroconvs.") for k in traj)
    assert not any(k.startswith("flow_encoder.zeroconvs.") for k in ldmk)
    with torch.device("meta"):
        model = LandmarkAdapter()
    assert list(model.zero_outs.keys()) == ["8", "16", "32", "64"]
    assert list(model.occlusions.keys()) == ["8", "16", "32", "64"]


# -- loading ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("factory", [tiny_trajectory_adapter, tiny_landmark_adapter])
def test_save_and_from_pretrained_round_trip(tmp_path, factory):
    model = factory()
    model.save_pretrained(tmp_path)
    loaded = type(model).from_pretrained(tmp_path).eval()
    assert loaded.config.encoder_attention_heads == list(TINY_ADAPTER_CONFIG["encoder_attention_heads"])
    loaded_state = loaded.state_dict()
    for key, value in model.state_dict().items():
        assert torch.equal(loaded_state[key], value), key
    inputs = tiny_adapter_inputs(model, seed=3)
    with torch.no_grad():
        a, b = model(**inputs), loaded(**inputs)
    # equal weights; safetensors-loaded storage may take a different BLAS path (1-ulp differences)
    torch.testing.assert_close(a.mid_block_res_sample, b.mid_block_res_sample, rtol=1e-4, atol=1e-4)


def test_loads_folder_written_as_flowcontrolnet(tmp_path, fixtures):
    """A folder like the published one: `_class_name: FlowControlNet`, the published key set, safetensors."""
    source = tiny_landmark_adapter(seed=5)
    config = _published_config(fixtures, "ldmk")
    config.update({k: list(v) if isinstance(v, tuple) else v for k, v in TINY_ADAPTER_CONFIG.items()})
    config.update({k: list(v) if isinstance(v, tuple) else v for k, v in TINY_LANDMARK_EXTRA.items()})
    (tmp_path / "config.json").write_text(json.dumps(config))
    save_file(source.state_dict(), str(tmp_path / "diffusion_pytorch_model.safetensors"))

    loaded = LandmarkAdapter.from_pretrained(tmp_path)
    assert isinstance(loaded, LandmarkAdapter)
    assert loaded.config.num_attention_heads == [5, 10, 10, 20]  # recorded, not used
    assert _heads(loaded) == [2, 4, 4, 4]
    loaded_state = loaded.state_dict()
    for key, value in source.state_dict().items():
        assert torch.equal(loaded_state[key], value), key


# -- flows and warping -----------------------------------------------------------------------------


@pytest.mark.parametrize("scale", [8, 16, 32, 64])
def test_downsample_flow_picks_strided_pixels_divided_by_scale(scale):
    flow = torch.randn(2, 3, 2, 128, 192)
    small = downsample_flow(flow, scale)
    assert small.shape == (2, 3, 2, 128 // scale, 192 // scale)
    i, j = 1, 2
    torch.testing.assert_close(small[..., i, j], flow[..., scale * i, scale * j] / scale)


def test_downsample_flow_rejects_non_multiple_size():
    with pytest.raises(ValueError, match="multiple"):
        downsample_flow(torch.zeros(1, 2, 60, 64), 8)


def test_zero_flow_warps_to_identity():
    model = tiny_trajectory_adapter()
    features = torch.randn(2, 32, 8, 8)
    stacked, mask = model.warp_level(features, torch.zeros(2, 3, 2, 64, 64))
    assert mask is None
    frames = stacked.unflatten(0, (2, 4))  # [B*T,C,h,w] -> [B,T,C,h,w]
    assert torch.equal(frames[:, 0], features)  # frame 0 unwarped
    for t in range(1, 4):
        torch.testing.assert_close(frames[:, t], features / (1 + 1e-7), rtol=1e-7, atol=1e-7)


def test_warp_level_uses_level_flow_and_landmark_occlusion():
    model = tiny_landmark_adapter()
    features = torch.randn(1, 32, 8, 8)
    flow = torch.zeros(1, 2, 2, 64, 64)
    flow[:, :, 0] = 8.0  # 8 image pixels right = 1 pixel at the 1/8 level
    with torch.no_grad():
        stacked, mask = model.warp_level(features, flow)
        reference = features.expand(2, -1, -1, -1)
        level_flow = torch.zeros(2, 2, 8, 8)
        level_flow[:, 0] = 1.0
        warped = softsplat(reference, level_flow)
        refined, expected_mask = model.occlusions["8"](reference, level_flow, warped)
        expected = model.zero_outs["8"](refined)
    assert torch.equal(stacked[0], features[0])  # frame 0: no occlusion, no zero_out
    torch.testing.assert_close(stacked[1:], expected)
    torch.testing.assert_close(mask[0], expected_mask)
    assert mask.shape == (1, 2, 1, 8, 8)


# -- forward ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("factory", [tiny_trajectory_adapter, tiny_landmark_adapter])
def test_forward_shapes(factory):
    model = factory()
    inputs = tiny_adapter_inputs(model, batch=2, frames=3)
    with torch.no_grad():
        out = model(**inputs)
    assert isinstance(out, MotionFieldAdapterOutput)
    down, mid, flow, masks = out  # unpacks like the reference tuple
    n = 2 * 3
    expected = [(32, 8)] * 3 + [(32, 4)] + [(64, 4)] * 2 + [(64, 2)] * 3 + [(64, 1)] * 3
    assert [tuple(d.shape) for d in down] == [(n, c, s, s) for c, s in expected]
    assert mid.shape == (n, 64, 1, 1)
    assert flow is inputs["controlnet_flow"]
    if isinstance(model, LandmarkAdapter):
        assert [tuple(m.shape) for m in masks] == [(2, 2, 1, 64 // s, 64 // s) for s in (8, 16, 32, 64)]
    else:
        assert masks is None


@pytest.mark.parametrize("factory", [tiny_trajectory_adapter, tiny_landmark_adapter])
def test_conditioning_scale_is_linear(factory):
    model = factory()
    inputs = tiny_adapter_inputs(model, seed=1)
    with torch.no_grad():
        full = model(**inputs, conditioning_scale=1.0)
        part = model(**inputs, conditioning_scale=0.6, return_dict=False)
    assert isinstance(part, tuple) and len(part) == 4
    for a, b in zip(full.down_block_res_samples, part[0], strict=True):
        assert a.abs().max() > 0
        torch.testing.assert_close(b, a * 0.6)
    torch.testing.assert_close(part[1], full.mid_block_res_sample * 0.6)


def _capture_block_io(model):
    """Record (input, output) of every down block and the mid block's input."""
    records: dict = {"in": [], "out": [], "mid_in": None}

    def on_block(module, args, kwargs, output):
        records["in"].append(kwargs["hidden_states"])
        records["out"].append(output)

    def on_mid(module, args, kwargs):
        records["mid_in"] = kwargs["hidden_states"]

    handles = [block.register_forward_hook(on_block, with_kwargs=True) for block in model.down_blocks]
    handles.append(model.mid_block.register_forward_pre_hook(on_mid, with_kwargs=True))
    return records, handles


@pytest.mark.parametrize("factory", [tiny_trajectory_adapter, tiny_landmark_adapter])
def test_injection_points(factory):
    """x += F0 (+P); after block 0 += F1 (+P/2); block 1 += F2; block 2 += F3; block 3 += F3; += F3 again."""
    model = factory()
    inputs = tiny_adapter_inputs(model, seed=2)
    records, handles = _capture_block_io(model)
    with torch.no_grad():
        out = model(**inputs)
        first = model.controlnet_cond_embedding(inputs["controlnet_cond"])
        levels = [model.warp_level(f, inputs["controlnet_flow"])[0] for f in [first, *model.flow_encoder(first)]]
        x0 = model.conv_in(inputs["sample"].flatten(0, 1)) + levels[0]
        pose = None
        if "landmarks" in inputs:
            pose = model.controlnet_ldmk_embedding(inputs["landmarks"].flatten(0, 1))
            x0 = x0 + pose
        skips = [x0] + [r for _, res in records["out"] for r in res]
        expected_down = [conv(s) for conv, s in zip(model.controlnet_down_blocks, skips, strict=True)]
    for h in handles:
        h.remove()

    torch.testing.assert_close(records["in"][0], x0)
    after0 = records["out"][0][0] + levels[1] + (pose[..., ::2, ::2] if pose is not None else 0)
    torch.testing.assert_close(records["in"][1], after0)
    torch.testing.assert_close(records["in"][2], records["out"][1][0] + levels[2])
    torch.testing.assert_close(records["in"][3], records["out"][2][0] + levels[3])
    torch.testing.assert_close(records["mid_in"], records["out"][3][0] + levels[3] + levels[3])
    # residuals are taken before the injections
    for got, want in zip(out.down_block_res_samples, expected_down, strict=True):
        torch.testing.assert_close(got, want)


def test_frame_zero_features_are_unwarped_in_forward():
    """With zero flow every frame's trajectory features equal frame 0's (identity splat)."""
    model = tiny_trajectory_adapter()
    inputs = tiny_adapter_inputs(model, frames=3)
    inputs["controlnet_flow"] = torch.zeros_like(inputs["controlnet_flow"])
    inputs["sample"] = inputs["sample"][:, :1].expand(-1, 3, -1, -1, -1).contiguous()
    with torch.no_grad():
        out = model(**inputs)
    first = out.down_block_res_samples[0]  # [B*T,...]: conv_in(sample) + F0, before any temporal mixing
    torch.testing.assert_close(first[1], first[0], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(first[2], first[0], rtol=1e-5, atol=1e-5)


def test_input_validation():
    traj, ldmk = tiny_trajectory_adapter(), tiny_landmark_adapter()
    inputs = tiny_adapter_inputs(ldmk)
    with pytest.raises(ValueError, match="TrajectoryAdapter takes no landmarks"):
        traj(**inputs)
    without = {k: v for k, v in inputs.items() if k != "landmarks"}
    with pytest.raises(ValueError, match="needs landmarks"):
        ldmk(**without)
    bad_flow = {**without, "controlnet_flow": without["controlnet_flow"][:, :1]}
    with pytest.raises(ValueError, match="controlnet_flow must be"):
        traj(**bad_flow)
    bad_size = tiny_adapter_inputs(traj, height=64, width=64)
    bad_size["sample"] = bad_size["sample"][..., :4]
    with pytest.raises(ValueError, match="multiple of 64"):
        traj(**bad_size)
    with pytest.raises(ValueError, match="landmarks must be"):
        ldmk(**{**inputs, "landmarks": inputs["landmarks"][:, :2]})


def test_rejects_unequal_last_block_widths():
    with pytest.raises(ValueError, match="block_out_channels"):
        TrajectoryAdapter(**{**TINY_ADAPTER_CONFIG, "block_out_channels": (32, 64, 64, 96)})


@pytest.mark.parametrize("kind", ["traj", "ldmk"])
def test_full_size_forward_on_meta_at_512(kind):
    """Shape plumbing of the published networks: 512x512, 25 frames, CFG batch 2 (no memory used)."""
    cls = KINDS[kind][0]
    with torch.device("meta"):
        model = cls()
    model.to("meta")  # diffusers' AlphaBlender builds mix_factor with torch.Tensor([...]), off the device context
    batch, frames, size = 2, 25, 512
    with torch.device("meta"):
        inputs = {
            "sample": torch.empty(batch, frames, 8, size // 8, size // 8),
            "timestep": torch.tensor(1.6),
            "encoder_hidden_states": torch.empty(batch, 1, 1024),
            "added_time_ids": torch.empty(batch, 3),
            "controlnet_cond": torch.empty(batch, 3, size, size),
            "controlnet_flow": torch.empty(batch, frames - 1, 2, size, size),
        }
        if kind == "ldmk":
            inputs["landmarks"] = torch.empty(batch, frames, 3, size, size)
    with torch.no_grad():
        down, mid, _, masks = model(**inputs)
    n = batch * frames
    expected = [(320, 64)] * 3 + [(320, 32)] + [(640, 32)] * 2 + [(640, 16)] + [(1280, 16)] * 2 + [(1280, 8)] * 3
    assert [tuple(d.shape) for d in down] == [(n, c, s, s) for c, s in expected]
    assert tuple(mid.shape) == (n, 1280, 8, 8)
    if kind == "ldmk":
        assert [tuple(m.shape) for m in masks] == [(batch, frames - 1, 1, s, s) for s in (64, 32, 16, 8)]
