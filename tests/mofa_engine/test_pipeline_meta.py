"""Full-size proof without weights: the SVD-xt UNet's keys/shapes and one 512x512, 25-frame step on `meta`."""

from __future__ import annotations

import json

import pytest
import torch
from diffusers import AutoencoderKLTemporalDecoder
from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

from mofa_engine.models.cmp import CMP
from mofa_engine.models.flow_adapter import LandmarkAdapter, TrajectoryAdapter
from mofa_engine.pipeline.pipeline import MofaPipeline
from mofa_engine.models.unet import MofaUNet
from tests.conftest import FIXTURES
from tests.mofa_engine.test_pipeline import svd_scheduler

SIZE, FRAMES = 512, 25


def on_meta(build):
    """Build a module on `meta`; `.to("meta")` also moves the few tensors diffusers creates with the
    legacy `torch.Tensor([...])` constructor (the temporal `mix_factor`s), which ignores the device context."""
    with torch.device("meta"):
        module = build()
    return module.to("meta").eval()


@pytest.fixture(scope="module")
def meta_unet() -> MofaUNet:
    config = json.loads((FIXTURES / "config_svd_unet_assumed.json").read_text())
    return on_meta(lambda: MofaUNet.from_config(config))


def test_unet_state_dict_equals_the_svd_xt_manifest(meta_unet):
    manifest = json.loads((FIXTURES / "manifests" / "manifest_svd_unet.json").read_text())
    ours = {key: list(value.shape) for key, value in meta_unet.state_dict().items()}
    assert set(ours) == set(manifest)
    assert ours == manifest
    counts = json.loads((FIXTURES / "param_counts.json").read_text())
    assert sum(p.numel() for p in meta_unet.parameters()) == counts["svd_unet"]
    # the architecture follows the UNet's own config: 20 heads of 64 in down block 2 (not 10 of 128)
    for name, expected in counts["svd_unet_attn_heads_encoder"].items():
        assert meta_unet.get_submodule(name).heads == expected["heads"], name


def test_one_full_size_step_on_meta(meta_unet):
    vae = on_meta(lambda: AutoencoderKLTemporalDecoder(
        block_out_channels=[128, 256, 512, 512], down_block_types=["DownEncoderBlock2D"] * 4,
        layers_per_block=2, latent_channels=4, sample_size=768,
    ))
    clip = on_meta(lambda: CLIPVisionModelWithProjection(CLIPVisionConfig(  # ViT-H/14 as in SVD-xt
        hidden_size=1280, intermediate_size=5120, num_hidden_layers=32, num_attention_heads=16,
        patch_size=14, image_size=224, projection_dim=1024, hidden_act="gelu",
    )))
    pipe = MofaPipeline(
        vae=vae, image_encoder=clip, unet=meta_unet, scheduler=svd_scheduler(),
        landmark_adapter=on_meta(LandmarkAdapter), trajectory_adapter=on_meta(TrajectoryAdapter), cmp=on_meta(CMP),
    )
    received = {}

    def record(module, args):
        received["sample"], received["down"], received["mid"] = args[0].shape, args[4], args[5]

    handle = meta_unet.register_forward_pre_hook(record)
    try:
        with torch.device("meta"):
            image = torch.empty(1, 3, SIZE, SIZE)
            pose = torch.empty(1, FRAMES, 3, SIZE, SIZE)
            mask = torch.empty(1, 1, SIZE, SIZE)
            trajectory_flow = torch.empty(1, FRAMES - 1, 2, SIZE, SIZE)
        track = torch.rand(FRAMES, 68, 2) * (SIZE - 1)  # sparse flows are built on the CPU, CMP runs on meta
        landmark_flow = pipe.prepare_landmark_flow(image, track, chunk_size=24)
        assert landmark_flow.shape == (1, FRAMES - 1, 2, SIZE // 8, SIZE // 8)  # latent grid
        assert landmark_flow.is_meta
        out = pipe(image, landmark_flow, pose, landmark_mask=mask, trajectory_flow=trajectory_flow,
                   num_inference_steps=1, output_type="latent")
    finally:
        handle.remove()

    h = SIZE // 8
    assert out.frames.shape == (1, FRAMES, 4, h, h) and out.windows == [(1, FRAMES)]
    assert received["sample"] == (2, FRAMES, 8, h, h)  # [uncond, cond] x 25 frames x (noisy ++ image)
    expected = [(320, h)] * 3 + [(320, h // 2), (640, h // 2), (640, h // 2), (640, h // 4)]
    expected += [(1280, h // 4)] * 2 + [(1280, h // 8)] * 3
    assert [(r.shape[0], r.shape[1], r.shape[2], r.shape[3]) for r in received["down"]] == [
        (2 * FRAMES, c, s, s) for c, s in expected
    ]
    assert received["mid"].shape == (2 * FRAMES, 1280, h // 8, h // 8)
