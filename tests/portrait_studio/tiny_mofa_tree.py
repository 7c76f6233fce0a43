"""A tiny random-weight MOFA checkpoint tree in the published layout (see reference/ckpt_tree.md).

`write_tiny_tree(root)` writes what `git clone MyNiuuu/MOFA-Video-Hybrid` holds, with every network
shrunk so the whole MOFA engine runs on a CPU in seconds:

    root/ckpts/mofa/stable-video-diffusion-img2vid-xt-1-1/
        model_index.json, scheduler/scheduler_config.json, feature_extractor/preprocessor_config.json,
        unet/, vae/, image_encoder/         fp16 variant files (`*.fp16.safetensors`), fp16 weights
    root/ckpts/mofa/traj_controlnet/, ldmk_controlnet/    config.json (`FlowControlNet`) + fp32 weights
    root/models/cmp/.../checkpoints/ckpt_iter_42000.pth.tar    {'step', 'state_dict' ('module.'...), 'optimizer'}

Sizes: the adapters and UNet share `TINY_SHARED_UNET_KWARGS` (widths 32..64); the VAE has 4 levels
(latents 1/8 of the image, so sides must be multiples of 64); CMP is a 1-block-per-stage ResNet with
a narrow decoder and 9 flow bins, which `CMP.from_checkpoint` infers from the state-dict shapes.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from diffusers import AutoencoderKLTemporalDecoder, EulerDiscreteScheduler, UNetSpatioTemporalConditionModel
from diffusers.utils import logging as diffusers_logging
from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

from mofa_engine.models.cmp import CMP
from portrait_studio.ckpts import CMP_CKPT, SVD
from tests.conftest import FIXTURES
from tests.mofa_engine.tiny_configs import (TINY_CMP, TINY_SHARED_UNET_KWARGS, tiny_cmp,  # noqa: F401 (re-exported)
                                           tiny_landmark_adapter, tiny_trajectory_adapter)

TINY_UNET = {**TINY_SHARED_UNET_KWARGS, "num_attention_heads": (2, 4, 4, 4), "sample_size": 8, "num_frames": 14}
TINY_VAE = {"block_out_channels": [32, 32, 32, 32], "down_block_types": ["DownEncoderBlock2D"] * 4,
            "latent_channels": 4}
TINY_CLIP = {"hidden_size": 32, "projection_dim": TINY_SHARED_UNET_KWARGS["cross_attention_dim"],
             "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 37, "image_size": 224,
             "patch_size": 32}

# The published feature_extractor/preprocessor_config.json (CLIP's; MOFA never uses it, spec §6.1).
PREPROCESSOR = {
    "crop_size": {"height": 224, "width": 224}, "do_center_crop": True, "do_convert_rgb": True,
    "do_normalize": True, "do_rescale": True, "do_resize": True, "feature_extractor_type": "CLIPFeatureExtractor",
    "image_mean": [0.48145466, 0.4578275, 0.40821073], "image_processor_type": "CLIPImageProcessor",
    "image_std": [0.26862954, 0.26130258, 0.27577711], "resample": 3, "rescale_factor": 0.00392156862745098,
    "size": {"shortest_edge": 224},
}

# What the published SVD-xt-1-1 model_index.json names (diffusers' own SVD pipeline classes).
MODEL_INDEX = {
    "_class_name": "StableVideoDiffusionPipeline",
    "_diffusers_version": "0.24.0",
    "feature_extractor": ["transformers", "CLIPImageProcessor"],
    "image_encoder": ["transformers", "CLIPVisionModelWithProjection"],
    "scheduler": ["diffusers", "EulerDiscreteScheduler"],
    "unet": ["diffusers", "UNetSpatioTemporalConditionModel"],
    "vae": ["diffusers", "AutoencoderKLTemporalDecoder"],
}


def save_cmp_checkpoint(model: CMP, path: Path) -> Path:
    """Save as the published training checkpoint: {'step', 'state_dict' with 'module.' keys, 'optimizer'}."""
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {"module." + k: v.clone() for k, v in model.state_dict().items()}
    torch.save({"step": 42000, "state_dict": state, "optimizer": {"state": {}, "param_groups": []}}, path)
    return path


def write_tiny_tree(root: str | Path, seed: int = 0) -> Path:
    """Write the tiny tree under `root` (created if needed) and return `root`.

    The SVD components are saved with `variant="fp16"` in fp16 (as published); the adapters in fp32
    with `_class_name` set to the reference's `FlowControlNet`; CMP as a `.pth.tar` training checkpoint.
    """
    root = Path(root)
    svd = root / SVD
    svd.mkdir(parents=True, exist_ok=True)
    (svd / "model_index.json").write_text(json.dumps(MODEL_INDEX, indent=2))

    config = json.loads((FIXTURES / "scheduler_svd_25steps_assumed.json").read_text())["config"]
    EulerDiscreteScheduler.from_config(config).save_pretrained(svd / "scheduler")
    (svd / "feature_extractor").mkdir(exist_ok=True)
    (svd / "feature_extractor" / "preprocessor_config.json").write_text(json.dumps(PREPROCESSOR, indent=2))

    torch.manual_seed(seed)
    vae = AutoencoderKLTemporalDecoder(**TINY_VAE)
    torch.manual_seed(seed)
    clip = CLIPVisionModelWithProjection(CLIPVisionConfig(**TINY_CLIP))
    torch.manual_seed(seed)
    unet = UNetSpatioTemporalConditionModel(**TINY_UNET)
    verbosity = diffusers_logging.get_verbosity()
    diffusers_logging.set_verbosity_error()  # no "cast with to()" advice: fp16 files are what we want
    try:
        for name, model in (("vae", vae), ("image_encoder", clip), ("unet", unet)):
            model.to(torch.float16).save_pretrained(svd / name, variant="fp16")
    finally:
        diffusers_logging.set_verbosity(verbosity)

    for name, model in (("ldmk_controlnet", tiny_landmark_adapter(seed)),
                        ("traj_controlnet", tiny_trajectory_adapter(seed + 1))):
        folder = root / "ckpts" / "mofa" / name
        model.save_pretrained(folder)
        cfg = json.loads((folder / "config.json").read_text())
        cfg["_class_name"] = "FlowControlNet"  # what the published config.json says (ignored on load)
        (folder / "config.json").write_text(json.dumps(cfg, indent=2))

    save_cmp_checkpoint(tiny_cmp(seed), root / CMP_CKPT)
    return root
