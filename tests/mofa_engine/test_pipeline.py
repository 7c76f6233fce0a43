"""MofaPipeline on tiny random-weight components: conditioning, hybrid blending, CFG, outputs, streaming."""

from __future__ import annotations

import json

import numpy as np
import PIL.Image
import pytest
import torch
from diffusers import AutoencoderKLTemporalDecoder, EulerDiscreteScheduler
from diffusers.pipelines.stable_video_diffusion.pipeline_stable_video_diffusion import _resize_with_antialiasing
from torch import nn
from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

from mofa_engine.models.cmp import CMP
from mofa_engine.pipeline.conditioning import MOFA_ADDED_TIME_IDS, added_time_ids, guidance_ramp, resize_mask
from mofa_engine.pipeline.periodic import plan_windows
from mofa_engine.sparse_flow import keypoint_sparse_flow_384
from mofa_engine.pipeline.pipeline import MofaPipeline, MofaPipelineOutput
from mofa_engine.models.unet import MofaUNet
from mofa_engine.models.temporal_context import temporal_context_layout
from tests.conftest import FIXTURES
from tests.mofa_engine.tiny_configs import TINY_SHARED_UNET_KWARGS, tiny_landmark_adapter, tiny_trajectory_adapter

SIZE = 64  # smallest image the adapters accept (multiple of 64); latents 8x8
TINY_UNET = {**TINY_SHARED_UNET_KWARGS, "num_attention_heads": (2, 4, 4, 4), "sample_size": 8, "num_frames": 4}


# ---------------------------------------------------------------- tiny components (get_dummy_components)
def svd_scheduler() -> EulerDiscreteScheduler:
    config = json.loads((FIXTURES / "scheduler_svd_25steps_assumed.json").read_text())["config"]
    return EulerDiscreteScheduler.from_config(config)


def tiny_components(trajectory: bool = True, unet: nn.Module | None = None) -> dict:
    torch.manual_seed(0)
    vae = AutoencoderKLTemporalDecoder(
        block_out_channels=[32, 32, 32, 32], down_block_types=["DownEncoderBlock2D"] * 4, latent_channels=4
    )
    torch.manual_seed(0)
    clip = CLIPVisionModelWithProjection(
        CLIPVisionConfig(
            hidden_size=32, projection_dim=TINY_UNET["cross_attention_dim"], num_hidden_layers=1,
            num_attention_heads=2, intermediate_size=37, image_size=224, patch_size=32,
        )
    )
    torch.manual_seed(0)
    return {
        "vae": vae.eval(),
        "image_encoder": clip.eval(),
        "unet": unet if unet is not None else MofaUNet(**TINY_UNET).eval(),
        "scheduler": svd_scheduler(),
        "landmark_adapter": tiny_landmark_adapter(seed=0),
        "trajectory_adapter": tiny_trajectory_adapter(seed=1) if trajectory else None,
    }


def tiny_pipeline(trajectory: bool = True, unet: nn.Module | None = None) -> MofaPipeline:
    return MofaPipeline(**tiny_components(trajectory, unet))


def tiny_inputs(num_frames: int, seed: int = 0, latent_grid: bool = False) -> dict:
    """Image, flows and pose images whose values encode the frame index (row j of a flow = frame j+1)."""
    g = torch.Generator().manual_seed(seed)
    grid = SIZE // 8 if latent_grid else SIZE
    frame_of_flow = torch.arange(1, num_frames, dtype=torch.float32).reshape(1, -1, 1, 1, 1)
    flow = torch.randn(1, num_frames - 1, 2, grid, grid, generator=g) + frame_of_flow
    flow[..., 0, 0] = frame_of_flow[..., 0, 0]  # exact frame tag at pixel (0, 0) (read by tests)
    pose = torch.rand(1, num_frames, 3, SIZE, SIZE, generator=g)
    pose[..., 0, 0] = torch.arange(num_frames, dtype=torch.float32).reshape(1, -1, 1) / 100
    return {
        "image": torch.rand(1, 3, SIZE, SIZE, generator=g),
        "landmark_flow": flow,
        "pose_images": pose,
        "num_inference_steps": 1,
        "window_size": 4,
        "generator": torch.Generator().manual_seed(seed),
    }


def face_mask() -> torch.Tensor:
    mask = torch.zeros(1, 1, SIZE, SIZE)
    mask[..., 16:40, 20:44] = 1
    return mask


class RecordingUNet(nn.Module):
    """Stands in for the SVD UNet: v = 0 for the unconditional half, 1 for the conditional one."""

    def __init__(self):
        super().__init__()
        self.anchor = nn.Parameter(torch.zeros(1))
        self.calls: list[dict] = []

    @property
    def dtype(self) -> torch.dtype:
        return self.anchor.dtype

    @property
    def device(self) -> torch.device:
        return self.anchor.device

    def forward(self, sample, timestep, encoder_hidden_states, added_time_ids,
                down_block_additional_residuals=None, mid_block_additional_residual=None, return_dict=True):
        self.calls.append({
            "sample": sample, "ids": added_time_ids, "ehs": encoder_hidden_states,
            "down": down_block_additional_residuals, "mid": mid_block_additional_residual,
        })
        v = torch.zeros(sample.shape[0], sample.shape[1], 4, *sample.shape[-2:])
        v[v.shape[0] // 2 :] = 1.0
        return (v,)


def record_calls(module: nn.Module) -> list[dict]:
    """Record the kwargs (and outputs) of every call of `module`."""
    calls: list[dict] = []
    module.register_forward_hook(
        lambda m, args, kwargs, out: calls.append({"args": args, "kwargs": kwargs, "out": out}), with_kwargs=True
    )
    return calls


def capture_model_output(pipe: MofaPipeline) -> list[torch.Tensor]:
    """Record the (window-averaged, CFG-mixed) prediction handed to each scheduler step."""
    seen, step = [], pipe.scheduler.step

    def wrapped(model_output, timestep, sample, **kwargs):
        seen.append(model_output.clone())
        return step(model_output, timestep, sample, **kwargs)

    pipe.scheduler.step = wrapped
    return seen


@pytest.fixture(scope="module")
def pipe() -> MofaPipeline:
    return tiny_pipeline()


# ---------------------------------------------------------------- sampler constants
def test_scheduler_sigmas_match_the_assumed_svd_table():
    table = json.loads((FIXTURES / "scheduler_svd_25steps_assumed.json").read_text())
    scheduler = svd_scheduler()
    scheduler.set_timesteps(25)
    np.testing.assert_allclose(scheduler.sigmas.numpy(), table["sigmas"], rtol=1e-5)
    np.testing.assert_allclose(scheduler.timesteps.numpy(), table["timesteps"], rtol=1e-5, atol=1e-6)
    assert float(scheduler.init_noise_sigma) == pytest.approx(table["init_noise_sigma"], rel=1e-6)
    np.testing.assert_allclose(scheduler.timesteps.numpy(), 0.25 * np.log(table["sigmas"][:-1]), rtol=1e-5)


def test_guidance_ramp_and_added_time_ids():
    ramp = guidance_ramp(1.0, 3.0, 25)
    assert ramp.shape == (1, 25, 1, 1, 1)
    torch.testing.assert_close(ramp.flatten(), torch.linspace(1, 3, 25))
    ids = added_time_ids(2, torch.float32, "cpu")
    torch.testing.assert_close(ids, torch.tensor([[6.0, 128.0, 0.02]] * 2))
    assert MOFA_ADDED_TIME_IDS == (6.0, 128.0, 0.02)


def test_cfg_ramp_time_ids_and_unnormalised_clip_input_reach_the_models():
    pipe = tiny_pipeline(trajectory=False, unet=RecordingUNet())
    outputs = capture_model_output(pipe)
    clip_calls = record_calls(pipe.image_encoder)
    inputs = dict(tiny_inputs(5), window_size=25)
    pipe(**inputs, output_type="latent")
    # v_uncond = 0, v_cond = 1 -> the CFG-mixed prediction is the per-frame scale linspace(1, 3, T)
    torch.testing.assert_close(outputs[0][0, :, 0, 0, 0], torch.linspace(1, 3, 5))
    call = pipe.unet.calls[0]
    torch.testing.assert_close(call["ids"], torch.tensor([[6.0, 128.0, 0.02]] * 2))
    assert call["sample"].shape == (2, 5, 8, 8, 8)  # [uncond, cond] in one batch; latents ++ image latents
    assert not call["ehs"][0].any() and call["ehs"][1].any()  # unconditional CLIP embedding = zeros
    assert not call["sample"][0, :, 4:].any()  # unconditional image latents = zeros
    # CLIP sees the anti-aliased 224 resize of the [0,1] image, without mean/std normalisation
    pixels = clip_calls[0]["args"][0]
    torch.testing.assert_close(pixels, _resize_with_antialiasing(inputs["image"], (224, 224)))


def test_cfg_off_runs_a_batch_of_one():
    pipe = tiny_pipeline(trajectory=False, unet=RecordingUNet())
    pipe(**tiny_inputs(3), max_guidance_scale=1.0, output_type="latent")
    assert pipe.unet.calls[0]["sample"].shape[0] == 1


def test_temporal_context_layout_reaches_the_unet_and_both_adapters(pipe):
    """CFG (batch 2): `reference` (default) and `trained` give different latents and set every network;
    without CFG (batch 1) they agree exactly."""
    def latents(layout=None, **extra):
        kwargs = {} if layout is None else {"temporal_context": layout}
        return pipe(**tiny_inputs(3), landmark_mask=face_mask(), output_type="latent", **kwargs, **extra).frames

    trained = latents("trained")
    for model in (pipe.unet, pipe.landmark_adapter, pipe.trajectory_adapter):
        assert temporal_context_layout(model) == "trained"
    default = latents()
    for model in (pipe.unet, pipe.landmark_adapter, pipe.trajectory_adapter):
        assert temporal_context_layout(model) == "reference"
    torch.testing.assert_close(latents("reference"), default, rtol=0, atol=0)
    assert float((default - trained).norm() / trained.norm()) > 1e-3
    assert torch.equal(latents("reference", max_guidance_scale=1.0), latents("trained", max_guidance_scale=1.0))
    with pytest.raises(ValueError, match="temporal_context"):
        latents("fixed")


# ---------------------------------------------------------------- hybrid control
def test_landmark_inside_trajectory_outside_the_mask():
    pipe = tiny_pipeline(trajectory=True, unet=RecordingUNet())
    ldmk_calls, traj_calls = record_calls(pipe.landmark_adapter), record_calls(pipe.trajectory_adapter)
    inputs, mask = tiny_inputs(3), face_mask()
    trajectory_flow = torch.randn(1, 2, 2, SIZE, SIZE)
    pipe(**inputs, landmark_mask=mask, trajectory_flow=trajectory_flow, landmark_scale=1.0,
         trajectory_scale=0.6, output_type="latent")
    assert len(ldmk_calls) == len(traj_calls) == 1
    inside, outside = ldmk_calls[0]["out"], traj_calls[0]["out"]
    assert ldmk_calls[0]["kwargs"]["conditioning_scale"] == 1.0
    assert traj_calls[0]["kwargs"]["conditioning_scale"] == 0.6
    torch.testing.assert_close(traj_calls[0]["kwargs"]["controlnet_flow"][1], trajectory_flow[0])
    received = pipe.unet.calls[0]
    assert len(received["down"]) == 12
    for level, got in enumerate(received["down"]):
        m = resize_mask(mask, got.shape[-2:])
        torch.testing.assert_close(got, inside[0][level] * m + outside[0][level] * (1 - m))
        if got.shape[-1] >= 4:  # the mask really splits these levels (1x1 and 2x2 fall outside it)
            assert m.any() and not m.all()
    m = resize_mask(mask, received["mid"].shape[-2:])
    torch.testing.assert_close(received["mid"], inside[1] * m + outside[1] * (1 - m))


def test_mask_decides_which_adapters_run():
    pipe = tiny_pipeline(trajectory=True, unet=RecordingUNet())
    ldmk_calls, traj_calls = record_calls(pipe.landmark_adapter), record_calls(pipe.trajectory_adapter)
    inputs = tiny_inputs(3)
    pipe(**inputs, output_type="latent")  # no mask: landmark adapter everywhere (Keypoint mode)
    assert (len(ldmk_calls), len(traj_calls)) == (1, 0)
    pipe(**tiny_inputs(3), landmark_mask=torch.zeros(1, 1, SIZE, SIZE), output_type="latent")
    assert (len(ldmk_calls), len(traj_calls)) == (1, 1)
    # no trajectory given: the trajectory adapter still runs, on zero flow ("keep still")
    assert not traj_calls[0]["kwargs"]["controlnet_flow"].any()
    pipe(**tiny_inputs(3), landmark_mask=face_mask(), output_type="latent")
    assert (len(ldmk_calls), len(traj_calls)) == (2, 2)


def test_flows_on_the_latent_grid_and_frame_sources_give_identical_results(pipe):
    full = tiny_inputs(6)
    reference = pipe(**full, landmark_mask=face_mask(), output_type="latent").frames
    compact = dict(full, landmark_flow=full["landmark_flow"][..., ::8, ::8].clone(),
                   generator=torch.Generator().manual_seed(0))
    same = pipe(**compact, landmark_mask=face_mask(), output_type="latent").frames
    torch.testing.assert_close(same, reference, rtol=0, atol=0)
    flow, pose = full["landmark_flow"], full["pose_images"]
    sourced = dict(
        full, landmark_flow=lambda frames: flow[0, frames - 1], pose_images=lambda frames: pose[0, frames],
        num_frames=6, generator=torch.Generator().manual_seed(0),
    )
    same = pipe(**sourced, landmark_mask=face_mask(), output_type="latent").frames
    torch.testing.assert_close(same, reference, rtol=0, atol=0)


# ---------------------------------------------------------------- outputs, streaming, progress
def test_outputs_streaming_decode_and_callback(pipe):
    steps = []

    def on_step_end(p, i, t, kwargs):
        steps.append((i, float(t), kwargs["latents"].shape))
        return {"latents": kwargs["latents"]}

    inputs = dict(tiny_inputs(5), num_inference_steps=2)
    out = pipe(**inputs, decode_chunk_size=2, output_type="latent", callback_on_step_end=on_step_end)
    assert isinstance(out, MofaPipelineOutput) and out.windows == [(1, 4), (2, 5)]
    assert out.frames.shape == (1, 5, 4, 8, 8) and torch.isfinite(out.frames).all()
    assert [s[0] for s in steps] == [0, 1] and steps[0][2] == (1, 5, 4, 8, 8)

    chunks = list(pipe.decode_latents_iter(out.frames, decode_chunk_size=2))
    assert [c.shape for c in chunks] == [(2, SIZE, SIZE, 3), (2, SIZE, SIZE, 3), (1, SIZE, SIZE, 3)]
    assert all(c.dtype == np.uint8 for c in chunks)

    inputs["generator"] = torch.Generator().manual_seed(0)
    video = pipe(**inputs, decode_chunk_size=2, output_type="np").frames
    assert video.shape == (1, 5, SIZE, SIZE, 3) and video.dtype == np.float32
    assert 0 <= video.min() and video.max() <= 1
    np.testing.assert_array_equal(np.concatenate(chunks), np.round(video[0] * 255).astype(np.uint8))


def test_pil_input_and_output(pipe):
    inputs = tiny_inputs(2)
    image = PIL.Image.fromarray((inputs.pop("image")[0].permute(1, 2, 0).numpy() * 255).astype(np.uint8))
    frames, windows = pipe(image, **inputs, output_type="pil", return_dict=False)
    assert windows == [(1, 2)] and len(frames) == 1 and len(frames[0]) == 2
    assert frames[0][0].size == (SIZE, SIZE)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"height": 96}, "multiples of 64"),
        ({"landmark_flow": torch.zeros(1, 3, 2, SIZE, SIZE)}, r"flow.*\[1,2,2,64,64\].*got \(1, 3, 2, 64, 64\)"),
        ({"latents": torch.zeros(1, 4, 4, 8, 8)}, r"latents.*\[1, 3, 4, 8, 8\], got \[1, 4, 4, 8, 8\]"),
        ({"pose_images": torch.zeros(1, 3, 3, 32, 32)}, r"pose_images.*got \(1, 3, 3, 32, 32\)"),
        ({"landmark_mask": torch.full((1, 1, SIZE, SIZE), 2.0)}, r"\[0,1\], got \[2, 2\]"),
        ({"landmark_mask": torch.ones(1, 1, 32, 32)}, r"landmark_mask.*got \(1, 1, 32, 32\)"),
        ({"output_type": "gif"}, "'gif'"),
        ({"window_size": 1}, "got 1"),
        ({"trajectory_flow": torch.zeros(1, 2, 2, SIZE, SIZE)}, "pass `landmark_mask`"),
    ],
)
def test_check_inputs_names_the_offending_value(pipe, change, message):
    inputs = dict(tiny_inputs(3), output_type="latent")
    inputs.update(change)
    with pytest.raises(ValueError, match=message):
        pipe(**inputs)


def test_trajectory_flow_without_trajectory_adapter_is_refused():
    pipe = tiny_pipeline(trajectory=False, unet=RecordingUNet())
    with pytest.raises(ValueError, match="no `trajectory_adapter`"):
        pipe(**tiny_inputs(3), landmark_mask=face_mask(), trajectory_flow=torch.zeros(1, 2, 2, SIZE, SIZE))


def test_window_plan_is_reported(pipe):
    assert [(w.start, w.end) for w in plan_windows(60, 25)] == [(1, 25), (13, 37), (25, 49), (36, 60)]


def test_landmark_flow_through_cmp_chunk_by_chunk():
    torch.manual_seed(0)
    cmp = CMP(layers=(1, 1, 1, 1), base_width=8, img_enc_dim=16, sparse_enc_dim=8, decoder_width=16).eval()
    pipe = MofaPipeline(**tiny_components(trajectory=False, unet=RecordingUNet()), cmp=cmp)
    g = torch.Generator().manual_seed(0)
    image = torch.rand(1, 3, SIZE, SIZE, generator=g)
    track = torch.rand(7, 68, 2, generator=g) * (SIZE - 1)
    grid = 64  # tiny CMP grid instead of 384
    full = pipe.prepare_landmark_flow(image, track.numpy(), chunk_size=4, latent_grid=False, grid_size=grid)
    sparse, mask = keypoint_sparse_flow_384(track, SIZE, SIZE, size=grid)
    expected = cmp.densify(image, sparse, mask, (SIZE, SIZE)).unsqueeze(0)
    assert full.shape == (1, 6, 2, SIZE, SIZE)
    torch.testing.assert_close(full, expected)
    compact = pipe.prepare_landmark_flow(image, track, chunk_size=3, grid_size=grid)
    torch.testing.assert_close(compact, expected[..., ::8, ::8])
    from_sparse = pipe.prepare_dense_flow(image, sparse.unsqueeze(0), mask.unsqueeze(0), 7, chunk_size=5)
    torch.testing.assert_close(from_sparse, expected[..., ::8, ::8])


def test_from_svd_loads_an_svd_folder_layout(tmp_path):
    components = tiny_components(trajectory=False)
    for name in ("vae", "unet", "image_encoder", "scheduler"):
        components[name].save_pretrained(tmp_path / name)
    pipe = MofaPipeline.from_svd(tmp_path, components["landmark_adapter"], torch_dtype=torch.float16)
    assert isinstance(pipe.unet, MofaUNet) and pipe.trajectory_adapter is None and pipe.cmp is None
    assert pipe.unet.dtype == pipe.vae.dtype == pipe.image_encoder.dtype == torch.float16
    assert pipe.scheduler.config.prediction_type == "v_prediction"
