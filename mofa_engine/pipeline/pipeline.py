"""MOFA-Video sampling on a frozen SVD-xt: hybrid landmark/trajectory control, any length (spec §6, §7).

`MofaPipeline` holds no weights of its own: the SVD-xt components (VAE, CLIP image encoder, UNet,
Euler scheduler), the landmark adapter, optionally the trajectory adapter and CMP. One denoising step
(spec §6.4): both adapters read the same noisy window; the landmark adapter's residuals act inside
the landmark mask, the trajectory adapter's outside it; the UNet takes the blended residuals on its
skips and mid block, and CFG mixes [uncond, cond] (one batch) with a per-frame ramp.

Long clips use periodic sampling (`periodic.py`): windows anchored on frame 0 step together with the
same sigma, their predictions averaged per frame. The Euler update is affine in the model output for
a fixed sample and sigma, and every window reads the same clip latents, so averaging the windows'
stepped latents (the reference) equals stepping once with the averaged prediction (what we do: one
`scheduler.step` per denoising step on the whole clip). Memory: one window (batch 2 for CFG) plus
the clip's latents and one prediction sum; frames are decoded in chunks of `decode_chunk_size`, and
`output_type="latent"` + `decode_latents_iter` streams them to the caller.

Checkpoint loading lives in `loading.py`, the CMP flow preparation (`prepare_landmark_flow`,
`prepare_dense_flow`) in `motion_inputs.py`, the image encoding and per-window conditioning in
`conditioning.py`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Literal

import numpy as np
import PIL.Image
import torch
import torch.nn.functional as F
from diffusers import AutoencoderKLTemporalDecoder, DiffusionPipeline, EulerDiscreteScheduler
from diffusers.utils import BaseOutput
from diffusers.utils.torch_utils import randn_tensor
from diffusers.video_processor import VideoProcessor
from transformers import CLIPVisionModelWithProjection

from mofa_engine.models.cmp import CMP
from mofa_engine.models.flow_adapter import LandmarkAdapter, TrajectoryAdapter
from mofa_engine.models.temporal_context import LAYOUTS, TemporalContextLayout, set_temporal_context_layout
from mofa_engine.models.unet import MofaUNet

from .conditioning import (
    FrameInput,
    WindowConditioning,
    added_time_ids,
    blend_residuals,
    encode_image,
    flow_to_pixel_grid,
    guidance_ramp,
    take_frames,
)
from .denoise_state import DenoiseState
from .loading import ComponentLoadError, load_pretrained, load_svd_components
from .motion_inputs import MotionInputsMixin
from .periodic import Window, WindowMean, plan_windows

__all__ = ["ComponentLoadError", "MofaPipeline", "MofaPipelineOutput", "load_pretrained"]

logger = logging.getLogger(__name__)


@dataclass
class MofaPipelineOutput(BaseOutput):
    """Output of `MofaPipeline`.

    frames: `"pt"` float `[1, N, 3, H, W]` in [0, 1]; `"np"` float32 `[1, N, H, W, 3]` in [0, 1];
        `"pil"` `[[PIL.Image] * N]`; `"latent"` float `[1, N, 4, h, w]` (unscaled, feed to
        `decode_latents_iter`).
    windows: the periodic-sampling plan used, `(start, end)` per window (frame 0 + frames start..end-1).
    """

    frames: torch.Tensor | np.ndarray | list[list[PIL.Image.Image]]
    windows: list[tuple[int, int]]


class MofaPipeline(MotionInputsMixin, DiffusionPipeline):
    """SVD-xt image-to-video with MOFA motion-field adapters (landmark + optional trajectory)."""

    model_cpu_offload_seq = "cmp->image_encoder->landmark_adapter->trajectory_adapter->unet->vae"
    _optional_components = ["trajectory_adapter", "cmp", "feature_extractor"]
    _callback_tensor_inputs = ["latents"]

    def __init__(
        self,
        vae: AutoencoderKLTemporalDecoder,
        image_encoder: CLIPVisionModelWithProjection,
        unet: MofaUNet,
        scheduler: EulerDiscreteScheduler,
        landmark_adapter: LandmarkAdapter,
        trajectory_adapter: TrajectoryAdapter | None = None,
        cmp: CMP | None = None,
        feature_extractor=None,  # kept for SVD folder layout; MOFA feeds CLIP un-normalised (spec §6.1)
    ):
        super().__init__()
        self.register_modules(
            vae=vae,
            image_encoder=image_encoder,
            unet=unet,
            scheduler=scheduler,
            landmark_adapter=landmark_adapter,
            trajectory_adapter=trajectory_adapter,
            cmp=cmp,
            feature_extractor=feature_extractor,
        )
        self.vae_scale_factor = 2 ** (len(self.vae.config.block_out_channels) - 1)
        self.video_processor = VideoProcessor(do_resize=True, vae_scale_factor=self.vae_scale_factor)

    @classmethod
    def from_svd(
        cls, svd_path, landmark_adapter: LandmarkAdapter, trajectory_adapter: TrajectoryAdapter | None = None,
        cmp: CMP | None = None, torch_dtype: torch.dtype | None = None, variant: str | None = None,
    ) -> MofaPipeline:
        """Assemble the pipeline from an SVD-xt folder (`vae/`, `image_encoder/`, `unet/`, `scheduler/`,
        loaded unchanged; e.g. `ckpts/mofa/stable-video-diffusion-img2vid-xt-1-1`, `variant="fp16"`) and
        adapters / CMP the caller loaded. Builds on CPU; the caller moves it with `.to()`.

        Weights load from safetensors only (never a pickled `.bin`) through `load_pretrained`, which
        refuses files that lack some of a model's keys. `variant` is preferred per component: a folder
        without that variant's files loads its plain ones.

        Raises:
            ComponentLoadError: a component cannot be loaded (names its folder or weights file).
        """
        svd = load_svd_components(svd_path, torch_dtype, variant)
        return cls(**svd, landmark_adapter=landmark_adapter, trajectory_adapter=trajectory_adapter, cmp=cmp)

    # ------------------------------------------------------------------ validation
    def check_inputs(
        self, image, height, width, num_frames, landmark_flow, pose_images, landmark_mask, trajectory_flow,
        window_size, num_inference_steps, decode_chunk_size, output_type, callback_on_step_end_tensor_inputs,
        latents,
    ):
        if not isinstance(image, (PIL.Image.Image, torch.Tensor)):
            raise ValueError(f"`image` must be a PIL.Image or a [1,3,H,W] tensor in [0,1], got {type(image)}")
        if isinstance(image, torch.Tensor) and not (image.ndim == 4 and image.shape[:2] == (1, 3)):
            raise ValueError(f"`image` tensor must be [1,3,H,W], got {tuple(image.shape)}")
        if height % 64 or width % 64:
            raise ValueError(f"`height` and `width` must be multiples of 64 (adapters), got {height}x{width}")
        if num_frames < 2:
            raise ValueError(f"`num_frames` must be >= 2, got {num_frames}")
        if window_size < 2:
            raise ValueError(f"`window_size` must be >= 2, got {window_size}")
        if num_inference_steps < 1:
            raise ValueError(f"`num_inference_steps` must be >= 1, got {num_inference_steps}")
        if decode_chunk_size < 1:
            raise ValueError(f"`decode_chunk_size` must be >= 1, got {decode_chunk_size}")
        if output_type not in ("pil", "np", "pt", "latent"):
            raise ValueError(f"`output_type` must be 'pil', 'np', 'pt' or 'latent', got {output_type!r}")
        bad = [k for k in callback_on_step_end_tensor_inputs if k not in self._callback_tensor_inputs]
        if bad:
            raise ValueError(f"callback tensor inputs {bad} not in {self._callback_tensor_inputs}")
        h, w = height // self.vae_scale_factor, width // self.vae_scale_factor
        for name, value, frames, channels in (
            ("landmark_flow", landmark_flow, num_frames - 1, 2),
            ("pose_images", pose_images, num_frames, 3),
            ("trajectory_flow", trajectory_flow, num_frames - 1, 2),
        ):
            if value is None or callable(value):
                continue
            shape = tuple(value.shape)
            grids = [(height, width)] + ([(h, w)] if channels == 2 else [])
            if len(shape) != 5 or shape[0] != 1 or shape[1:3] != (frames, channels) or shape[3:] not in grids:
                want = " or ".join(f"[1,{frames},{channels},{a},{b}]" for a, b in grids)
                raise ValueError(f"`{name}` must be {want} (batch 1 optional), got {shape}")
        latent_shape = (1, num_frames, self.vae.config.latent_channels, h, w)
        if latents is not None and tuple(latents.shape) != latent_shape:
            raise ValueError(f"`latents` must be {list(latent_shape)}, got {list(latents.shape)}")
        if landmark_flow is None or pose_images is None:
            raise ValueError("`landmark_flow` and `pose_images` are required (tensor or frame source)")
        if trajectory_flow is not None and self.trajectory_adapter is None:
            raise ValueError("`trajectory_flow` given but the pipeline has no `trajectory_adapter`")
        if trajectory_flow is not None and landmark_mask is None:
            raise ValueError("`trajectory_flow` acts outside the landmark mask: pass `landmark_mask`")
        if landmark_mask is not None:
            if tuple(landmark_mask.shape[-2:]) != (height, width) or landmark_mask.numel() != height * width:
                raise ValueError(f"`landmark_mask` must be [1,1,{height},{width}], got {tuple(landmark_mask.shape)}")
            if not landmark_mask.is_meta and (landmark_mask.min() < 0 or landmark_mask.max() > 1):
                raise ValueError(
                    f"`landmark_mask` must lie in [0,1], got [{landmark_mask.min():.3g}, {landmark_mask.max():.3g}]"
                )

    # ------------------------------------------------------------------ conditioning
    def _preprocess_image(self, image, height, width, device) -> torch.Tensor:
        """Source image as float [1,3,height,width] in [0,1] on `device`."""
        if isinstance(image, PIL.Image.Image):
            return (self.video_processor.preprocess(image, height=height, width=width).to(device) + 1) / 2
        image = image.to(device=device, dtype=torch.float32)
        if tuple(image.shape[-2:]) != (height, width):
            image = F.interpolate(image, size=(height, width), mode="bilinear", antialias=True)
        return image

    def _window_flow(self, source: FrameInput, window: Window, c: WindowConditioning, device, dtype) -> torch.Tensor:
        """Flows of the window's frames after the anchor, [1, L-1, 2, H, W] (flow row j is frame j+1)."""
        flow = take_frames(source, range(window.start, window.end), 1, device, dtype)
        return flow_to_pixel_grid(flow, c.size)

    # ------------------------------------------------------------------ one window
    def _adapter(self, adapter, x_in, t, c, flow, scale, pose=None):
        b2 = x_in.shape[0]
        kwargs = {"landmarks": pose.expand(b2, *pose.shape[1:])} if pose is not None else {}
        out = adapter(
            x_in, t,
            encoder_hidden_states=c.image_embeddings,
            added_time_ids=c.time_ids,
            controlnet_cond=c.cond_image,
            controlnet_flow=flow.expand(b2, *flow.shape[1:]),
            conditioning_scale=scale,
            **kwargs,
        )
        return out[0], out[1]  # down residuals (12), mid residual

    def _predict_window(self, window: Window, t, latents, c: WindowConditioning, do_cfg: bool) -> torch.Tensor:
        """CFG-mixed v for the window's frames, float [1, L, 4, h, w] (anchor first)."""
        device, dtype = latents.device, self.unet.dtype
        frames = window.frame_indices()
        x = latents.index_select(1, torch.tensor(frames, device=device))  # [1,N,..] -> [1,L,4,h,w]
        x_in = torch.cat([x] * 2) if do_cfg else x
        x_in = self.scheduler.scale_model_input(x_in, t)
        image_latents = c.image_latents.expand(-1, len(frames), -1, -1, -1)
        x_in = torch.cat([x_in.to(dtype), image_latents], dim=2)  # [B2,L,8,h,w]
        t_in = t.to(device=device, dtype=torch.float32)

        inside = outside = mid_in = mid_out = None
        if c.run_landmark:
            flow = self._window_flow(c.landmark_flow, window, c, device, dtype)
            pose = take_frames(c.pose_images, frames, 0, device, dtype)
            inside, mid_in = self._adapter(self.landmark_adapter, x_in, t_in, c, flow, c.landmark_scale, pose)
        if c.run_trajectory:
            if c.trajectory_flow is None:  # no trajectory: zero flow, the adapter then keeps the rest still
                flow = x_in.new_zeros((1, len(frames) - 1, 2, *c.size))
            else:
                flow = self._window_flow(c.trajectory_flow, window, c, device, dtype)
            outside, mid_out = self._adapter(self.trajectory_adapter, x_in, t_in, c, flow, c.trajectory_scale)
        down = mid = None
        if inside is not None or outside is not None:
            down = blend_residuals(inside, outside, c.mask)
            mid = blend_residuals(
                None if mid_in is None else [mid_in], None if mid_out is None else [mid_out], c.mask
            )[0]

        v = self.unet(x_in, t_in, c.image_embeddings, c.time_ids, down, mid, return_dict=False)[0]
        if do_cfg:
            v_uncond, v_cond = v.chunk(2)
            v = v_uncond + c.guidance * (v_cond - v_uncond)
        return v

    # ------------------------------------------------------------------ decoding
    def _decode_chunks(self, latents: torch.Tensor, decode_chunk_size: int) -> Iterator[torch.Tensor]:
        """Decode `[1, N, 4, h, w]` from the start in chunks (25 frames -> 8, 8, 8, 1 as in MOFA, where the
        temporal decoder sees each chunk as a clip); yield float `[n, 3, H, W]` in [0, 1]."""
        latents = latents.flatten(0, 1)  # [1,N,4,h,w] -> [N,4,h,w]
        for start in range(0, latents.shape[0], decode_chunk_size):
            chunk = latents[start : start + decode_chunk_size].to(self.vae.dtype) / self.vae.config.scaling_factor
            with torch.no_grad():
                frames = self.vae.decode(chunk, num_frames=chunk.shape[0]).sample  # [n,3,H,W] in [-1,1]
            yield (frames.float() / 2 + 0.5).clamp(0, 1)

    def decode_latents_iter(self, latents: torch.Tensor, decode_chunk_size: int = 8) -> Iterator[np.ndarray]:
        """Stream the video: decode `latents` float `[1, N, 4, h, w]` (an `output_type="latent"` result)
        chunk by chunk and yield uint8 `[n, H, W, 3]` RGB frames; one chunk is alive at a time."""
        for frames in self._decode_chunks(latents, decode_chunk_size):
            frames = (frames * 255).round().to(torch.uint8)  # MOFA: round(x * 255)
            yield frames.permute(0, 2, 3, 1).cpu().numpy()  # [n,3,H,W] -> [n,H,W,3]

    def _decode_all(self, latents: torch.Tensor, decode_chunk_size: int, output_type: str):
        video = torch.cat(list(self._decode_chunks(latents, decode_chunk_size))).unsqueeze(0)  # [1,N,3,H,W]
        if output_type == "pt":
            return video
        if output_type == "np":
            return video.permute(0, 1, 3, 4, 2).cpu().numpy()  # [1,N,3,H,W] -> [1,N,H,W,3]
        uint8 = (video[0] * 255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
        return [[PIL.Image.fromarray(frame) for frame in uint8]]

    # ------------------------------------------------------------------ sampling
    @torch.no_grad()
    def __call__(
        self,
        image: PIL.Image.Image | torch.Tensor,
        landmark_flow: FrameInput,
        pose_images: FrameInput,
        landmark_mask: torch.Tensor | None = None,
        trajectory_flow: FrameInput | None = None,
        landmark_scale: float = 1.0,
        trajectory_scale: float = 0.6,
        height: int | None = None,
        width: int | None = None,
        num_frames: int | None = None,
        window_size: int = 25,
        num_inference_steps: int = 25,
        min_guidance_scale: float = 1.0,
        max_guidance_scale: float = 3.0,
        noise_aug_strength: float = 0.02,
        decode_chunk_size: int = 8,
        temporal_context: TemporalContextLayout = "reference",
        generator: torch.Generator | None = None,
        latents: torch.Tensor | None = None,
        resume_from: DenoiseState | None = None,
        output_type: Literal["pil", "np", "pt", "latent"] = "np",
        callback_on_step_end: Callable[..., dict] | None = None,
        callback_on_step_end_tensor_inputs: list[str] = ["latents"],  # noqa: B006 - diffusers' signature
        return_dict: bool = True,
    ) -> MofaPipelineOutput | tuple:
        """Animate `image` under landmark (and trajectory) motion.

        Args:
            image: PIL image or float `[1, 3, H, W]` in [0, 1]; resized to height x width if needed.
            landmark_flow: dense landmark flow frame 0 -> t, float `[1, N-1, 2, H, W]` (channel 0 = dx,
                pixels), or the same on the latent grid `[1, N-1, 2, H/8, W/8]` (= `flow[..., ::8, ::8]`),
                or a `FrameSource` called with clip frame indices (1..N-1).
            pose_images: landmark pose images float `[1, N, 3, H, W]` in [0, 1] or a `FrameSource`
                (frame indices 0..N-1).
            landmark_mask: float `[1, 1, H, W]` in [0, 1]: landmark residuals inside, trajectory residuals
                outside (nearest-resized per level). None: landmark adapter everywhere (Keypoint mode).
            trajectory_flow: dense trajectory flow like `landmark_flow`; None with a mask and a trajectory
                adapter: zero flow (keeps the outside still, as in the Hybrid demo).
            landmark_scale / trajectory_scale: adapter conditioning scales (MOFA UI: 1.0 / 0.6).
            height, width: output size, multiples of 64; default the image's size.
            num_frames: N including frame 0; default from the tensor inputs.
            window_size: frames per periodic-sampling window (25 for SVD-xt; 14 selectable); N <= W is
                one window.
            num_inference_steps, min_guidance_scale, max_guidance_scale: Euler steps and the per-frame
                CFG ramp `linspace(min, max, L)` over the window length L (CFG off when max <= 1).
            noise_aug_strength: noise added to the image before VAE encoding (micro-conditioning ids
                stay MOFA's constant [6, 128, 0.02]).
            decode_chunk_size: frames per VAE decode (8 in MOFA).
            temporal_context: which CLIP context the temporal transformers of the UNet and both adapters
                hand each row under CFG (`models.temporal_context`, spec §6.3b): "reference" reproduces the
                published demo (diffusers 0.24), "trained" the layout the networks were trained with.
                The same without CFG.
            generator, latents: RNG, or initial noise float `[1, N, 4, h, w]` (unscaled).
            resume_from: continue from a saved `DenoiseState` (its latents replace the initial noise and
                sampling starts at its step); same inputs and generator seed give the uninterrupted result.
            output_type: "np", "pt", "pil" or "latent" (then stream with `decode_latents_iter`).
            callback_on_step_end: `f(pipe, step, timestep, {"latents": ...}) -> dict` after each step
                (progress; may return a replacement "latents").

        Returns:
            `MofaPipelineOutput` (or `(frames, windows)` when `return_dict=False`).
        """
        # 0. Default size and length
        if isinstance(image, PIL.Image.Image):
            default_h, default_w = image.height, image.width
        else:
            default_h, default_w = image.shape[-2:]
        height, width = height or int(default_h), width or int(default_w)
        if num_frames is None:
            for source, extra in ((pose_images, 0), (landmark_flow, 1), (trajectory_flow, 1)):
                if isinstance(source, torch.Tensor):
                    num_frames = source.shape[-4] + extra
                    break
            else:
                raise ValueError("`num_frames` is required when every input is a frame source")
        landmark_flow, pose_images, trajectory_flow = (
            v.unsqueeze(0) if isinstance(v, torch.Tensor) and v.ndim == 4 else v
            for v in (landmark_flow, pose_images, trajectory_flow)
        )
        if landmark_mask is not None:
            landmark_mask = landmark_mask.reshape(1, 1, *landmark_mask.shape[-2:])

        # 1. Check inputs
        self.check_inputs(
            image, height, width, num_frames, landmark_flow, pose_images, landmark_mask, trajectory_flow,
            window_size, num_inference_steps, decode_chunk_size, output_type, callback_on_step_end_tensor_inputs,
            latents,
        )

        if temporal_context not in LAYOUTS:
            raise ValueError(f"`temporal_context` must be one of {LAYOUTS}, got {temporal_context!r}")

        # 2. Call parameters, temporal-context layout and window plan
        for model in (self.unet, self.landmark_adapter, self.trajectory_adapter):
            if model is not None:
                set_temporal_context_layout(model, temporal_context)
        device, dtype = self._execution_device, self.unet.dtype
        do_cfg = max_guidance_scale > 1.0
        windows = plan_windows(num_frames, window_size)
        window_len = windows[0].num_frames
        mask = None if landmark_mask is None else landmark_mask.to(device=device, dtype=dtype)
        run_landmark, run_trajectory = True, False
        if mask is not None and not mask.is_meta:
            run_landmark = bool(mask.max() > 0)
            run_trajectory = self.trajectory_adapter is not None and bool(mask.min() < 1)
        elif mask is not None:
            run_trajectory = self.trajectory_adapter is not None

        # 3. Encode the source image: CLIP, VAE, adapter condition image
        image01 = self._preprocess_image(image, height, width, device)
        embeds, image_latents, cond_image = encode_image(
            self.image_encoder, self.vae, self.unet.dtype, image01, do_cfg, noise_aug_strength, generator
        )

        # 4. Micro-conditioning and guidance ramp
        batch = 2 if do_cfg else 1
        cond = WindowConditioning(
            image_embeddings=embeds,
            image_latents=image_latents,
            cond_image=cond_image,
            time_ids=added_time_ids(batch, dtype, device),
            guidance=guidance_ramp(min_guidance_scale, max_guidance_scale, window_len, device, torch.float32),
            landmark_flow=landmark_flow,
            pose_images=pose_images,
            trajectory_flow=trajectory_flow,
            mask=mask,
            run_landmark=run_landmark,
            run_trajectory=run_trajectory,
            landmark_scale=landmark_scale,
            trajectory_scale=trajectory_scale,
            size=(height, width),
        )

        # 5. Timesteps (kept on CPU: the scheduler indexes its sigmas there)
        self.scheduler.set_timesteps(num_inference_steps, device="cpu")
        timesteps = self.scheduler.timesteps

        # 6. Initial latents for the whole clip, float32 [1,N,4,h,w]
        shape = (1, num_frames, self.vae.config.latent_channels, height // self.vae_scale_factor,
                 width // self.vae_scale_factor)
        first_step = 0
        if resume_from is not None:
            if resume_from.total_steps != num_inference_steps or tuple(resume_from.latents.shape) != shape:
                raise ValueError(
                    f"`resume_from` holds {resume_from.total_steps} steps of {list(resume_from.latents.shape)}, "
                    f"this call has {num_inference_steps} steps of {list(shape)}"
                )
            first_step = resume_from.step
            latents = resume_from.latents.to(device=device, dtype=torch.float32)
            self.scheduler.set_begin_index(first_step)
        else:
            if latents is None:
                latents = randn_tensor(shape, generator=generator, device=device, dtype=torch.float32)
            latents = latents.to(device=device, dtype=torch.float32) * self.scheduler.init_noise_sigma

        # 7. Denoising loop: every window at the same sigma, predictions averaged, one Euler step
        mean = WindowMean(windows, latents)
        self._num_timesteps = len(timesteps)
        for i, t in enumerate(timesteps[first_step:], start=first_step):
            mean.reset()
            for window in windows:
                mean.add(window, self._predict_window(window, t, latents, cond, do_cfg))
            latents = self.scheduler.step(mean.mean(), t, latents).prev_sample
            if callback_on_step_end is not None:
                available = {"latents": latents}
                kwargs = {name: available[name] for name in callback_on_step_end_tensor_inputs}
                outputs = callback_on_step_end(self, i, t, kwargs) or {}
                latents = outputs.pop("latents", latents)
            logger.debug("step %d/%d done (%d windows)", i + 1, len(timesteps), len(windows))

        # 8. Decode in chunks (or hand the latents back for streaming)
        frames = latents if output_type == "latent" else self._decode_all(latents, decode_chunk_size, output_type)
        self.maybe_free_model_hooks()
        spans = [(w.start, w.end) for w in windows]
        if not return_dict:
            return frames, spans
        return MofaPipelineOutput(frames=frames, windows=spans)
