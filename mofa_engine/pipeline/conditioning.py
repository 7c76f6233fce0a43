"""Conditioning of the SVD-xt sampler as MOFA feeds it (spec §6.1-§6.4).

Small functions the pipeline composes: the CLIP input, the source-image encoding (CLIP embedding,
VAE latents, adapter condition image), the micro-conditioning ids, the per-frame guidance ramp, the
landmark-mask blending of the two adapters' residuals, window-by-window frame inputs and their CMP
densification; and `WindowConditioning`, what one periodic-sampling window reads besides its latents.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from diffusers.pipelines.stable_video_diffusion.pipeline_stable_video_diffusion import (
    _resize_with_antialiasing,
)
from diffusers.utils.torch_utils import randn_tensor

from mofa_engine.sparse_flow import keypoint_sparse_flow_384

# [fps - 1, motion_bucket_id, noise_aug_strength]: MOFA builds ids from its arguments and then
# overrides them with this constant (spec §6.2), so the demo's fps=7 / motion_bucket_id=127 never apply.
MOFA_ADDED_TIME_IDS: tuple[float, float, float] = (6.0, 128.0, 0.02)

CLIP_SIZE = 224

# Frames of a clip-long input, asked for by clip frame index (LongTensor [n]); returns the rows for
# those frames ([n, ...] or [1, n, ...]). Lets the caller produce flows / pose images window by window.
FrameSource = Callable[[torch.Tensor], torch.Tensor]
FrameInput = torch.Tensor | FrameSource


def clip_input(image: torch.Tensor) -> torch.Tensor:
    """CLIP encoder input exactly as MOFA builds it (spec §6.1).

    Anti-aliased resize to 224x224 (Gaussian blur with sigma = max((H/224 - 1)/2, 0.001) per axis,
    odd kernel int(max(4*sigma, 3)), reflect padding, then bicubic with align_corners=True; diffusers'
    SVD helper implements exactly this). Unlike diffusers' SVD pipeline and MOFA's own training code
    no CLIP mean/std normalisation and no [-1, 1] scaling is applied: every MOFA inference pipeline
    feeds the [0, 1] image as is, so we replicate that for parity with the published results.

    Args:
        image: float `[B, 3, H, W]` in [0, 1].

    Returns:
        float `[B, 3, 224, 224]`, still in (about) [0, 1].
    """
    return _resize_with_antialiasing(image, (CLIP_SIZE, CLIP_SIZE))


def encode_image(image_encoder, vae, dtype: torch.dtype, image01: torch.Tensor, do_cfg: bool,
                 noise_aug_strength: float, generator: torch.Generator | None):
    """Encode the source image for sampling (spec §6.1).

    Args:
        image_encoder: the CLIP vision model; vae: the SVD VAE (upcast to float32 for the encode when
            it is float16 with `force_upcast`); dtype: the UNet's dtype, that of every output.
        image01: float `[1, 3, H, W]` in [0, 1].
        do_cfg: batch [uncond, cond] (B2 = 2): zero embedding and image latents, same condition image.

    Returns:
        CLIP embeddings `[B2, 1, D]`, VAE image latents `[B2, 1, 4, h, w]` (the mode, of the image
        plus `noise_aug_strength` noise) and the adapters' condition image `[B2, 3, H, W]` in [-1, 1].
    """
    device = image01.device
    clip_dtype = next(image_encoder.parameters()).dtype
    embeds = image_encoder(clip_input(image01).to(clip_dtype)).image_embeds.unsqueeze(1)  # [1,1,D]
    cond = image01 * 2 - 1  # [0,1] -> [-1,1]
    noise = randn_tensor(cond.shape, generator=generator, device=device, dtype=cond.dtype)
    upcast = vae.dtype == torch.float16 and vae.config.force_upcast
    vae_dtype = torch.float32 if upcast else vae.dtype
    if upcast:
        vae.to(dtype=torch.float32)
    latents = vae.encode((cond + noise_aug_strength * noise).to(vae_dtype)).latent_dist.mode()
    if upcast:
        vae.to(dtype=torch.float16)
    latents = latents.unsqueeze(1).to(dtype)  # [1,4,h,w] -> [1,1,4,h,w]
    cond = cond.to(dtype)
    if do_cfg:  # [uncond, cond]: zero embedding and zero image latents, same adapter image
        embeds = torch.cat([torch.zeros_like(embeds), embeds])
        latents = torch.cat([torch.zeros_like(latents), latents])
        cond = cond.expand(2, -1, -1, -1)
    return embeds.to(dtype), latents, cond


def added_time_ids(batch_size: int, dtype: torch.dtype, device: torch.device | str) -> torch.Tensor:
    """MOFA's constant micro-conditioning `[batch_size, 3]` = [6, 128, 0.02] per row (spec §6.2)."""
    ids = torch.tensor([MOFA_ADDED_TIME_IDS], dtype=dtype, device=device)
    return ids.expand(batch_size, 3).contiguous()


def guidance_ramp(
    min_guidance_scale: float, max_guidance_scale: float, num_frames: int, device=None, dtype=torch.float32
) -> torch.Tensor:
    """Per-frame CFG scale `linspace(min, max, num_frames)` shaped `[1, T, 1, 1, 1]` (spec §6.3)."""
    ramp = torch.linspace(min_guidance_scale, max_guidance_scale, num_frames, dtype=torch.float32)
    return ramp.to(device=device, dtype=dtype).reshape(1, num_frames, 1, 1, 1)


def resize_mask(mask: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """Nearest-resize the landmark mask `[1, 1, H, W]` in [0, 1] to `size` (F.interpolate default mode)."""
    return F.interpolate(mask, size=tuple(size), mode="nearest")


def blend_residuals(
    inside: Sequence[torch.Tensor] | None,
    outside: Sequence[torch.Tensor] | None,
    mask: torch.Tensor | None,
) -> list[torch.Tensor]:
    """Mix two residual lists by the landmark mask: `inside*m + outside*(1-m)` per level (spec §6.4).

    Args:
        inside: landmark-adapter residuals, each `[B*T, C, h_l, w_l]` (None: no landmark residual).
        outside: trajectory-adapter residuals of the same shapes (None: nothing outside the mask).
        mask: float `[1, 1, H, W]` in [0, 1], nearest-resized to every level and broadcast over
            `B*T`; None means "all inside".

    Returns:
        The blended residuals, one per level.
    """
    if inside is None and outside is None:
        raise ValueError("blend_residuals needs at least one residual list")
    if mask is None:
        if inside is None:
            raise ValueError("without a mask the landmark residuals are required")
        return list(inside)
    reference = inside if inside is not None else outside
    out = []
    for level, res in enumerate(reference):
        m = resize_mask(mask.to(res.dtype), res.shape[-2:])  # [1,1,H,W] -> [1,1,h_l,w_l]
        if inside is None:
            out.append(outside[level] * (1 - m))
        elif outside is None:
            out.append(inside[level] * m)
        else:
            out.append(inside[level] * m + outside[level] * (1 - m))  # the reference's order
    return out


@dataclass
class WindowConditioning:
    """Everything a window needs besides its latents (built once per pipeline call)."""

    image_embeddings: torch.Tensor  # [B2,1,D]
    image_latents: torch.Tensor  # [B2,1,4,h,w]
    cond_image: torch.Tensor  # [B2,3,H,W] in [-1,1]
    time_ids: torch.Tensor  # [B2,3]
    guidance: torch.Tensor  # [1,L,1,1,1]
    landmark_flow: FrameInput
    pose_images: FrameInput
    trajectory_flow: FrameInput | None
    mask: torch.Tensor | None  # [1,1,H,W] in [0,1]
    run_landmark: bool
    run_trajectory: bool
    landmark_scale: float
    trajectory_scale: float
    size: tuple[int, int]  # H, W


def take_frames(source: FrameInput, frames: Sequence[int], offset: int, device, dtype) -> torch.Tensor:
    """Rows of a clip-long input for clip frames `frames`, as `[1, n, ...]` on `device` in `dtype`.

    Args:
        source: tensor `[1, M, ...]` whose row `r` is clip frame `r + offset` (offset 1 for flows, whose
            row j belongs to frame j+1; 0 for pose images), or a `FrameSource` given the frame indices.
        frames: clip frame indices wanted.
    """
    index = torch.tensor(list(frames), dtype=torch.long)
    if isinstance(source, torch.Tensor):
        rows = source.index_select(1, (index - offset).to(source.device))
    else:
        rows = source(index)
        rows = rows if rows.ndim == 5 else rows.unsqueeze(0)  # [n,...] -> [1,n,...]
    return rows.to(device=device, dtype=dtype)


def flow_to_pixel_grid(flow: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """Bring a flow `[1, n, 2, h', w']` to the image grid `size` = (H, W).

    A flow given on the latent grid (`flow[..., ::8, ::8]`, values still in pixels of H x W) is
    nearest-upsampled. That is exact for the adapters, which read flows only at pixels (s*i, s*j) with
    s in {8, 16, 32, 64} (spec §4.3 step 4), and keeps clip-long flows 64x smaller.
    """
    if tuple(flow.shape[-2:]) == tuple(size):
        return flow
    # [1,n,2,h',w'] -> [n,2,h',w'] -> [n,2,H,W] -> [1,n,2,H,W]
    return F.interpolate(flow.flatten(0, 1), size=tuple(size), mode="nearest").unflatten(0, flow.shape[:2])


# Progress of a densification: f(frames done, frames in all).
ChunkProgress = Callable[[int, int], None]


@torch.no_grad()
def _densify(cmp, image, sparse_chunk, num_frames, chunk_size, step, features=None,
             progress: ChunkProgress | None = None) -> torch.Tensor:
    """Run CMP over frames 1..N-1, `chunk_size` at a time; `sparse_chunk(frames)` -> (flow, mask) [n,2,S,S].

    CMP's image encoder runs once (on the first chunk's grid) unless `features` are given; every
    chunk only decodes its hints.
    """
    height, width = image.shape[-2:]
    out = []
    for start in range(1, num_frames, chunk_size):
        stop = min(start + chunk_size, num_frames)
        sparse, mask = sparse_chunk(torch.arange(start, stop))
        if features is None:
            features = cmp.image_features(image, tuple(sparse.shape[-2:]))
        dense = cmp.densify(image, sparse, mask, (height, width), features=features)  # [n,2,S,S] -> [n,2,H,W]
        out.append(dense[..., ::step, ::step].clone())
        if progress is not None:
            progress(stop - 1, num_frames - 1)
    return torch.cat(out).unsqueeze(0)  # [N-1,2,H',W'] -> [1,N-1,2,H',W']


def densify_landmark_flow(
    cmp, image: torch.Tensor, landmarks, chunk_size: int = 8, latent_grid: bool = True, grid_size: int = 384,
    latent_scale: int = 8, features=None, progress: ChunkProgress | None = None,
) -> torch.Tensor:
    """Dense landmark flow: sparse flow (paper Eq. 2) on the CMP grid, CMP, nearest-upsampled and rescaled
    to H x W (spec §2.1, §2.4), a chunk of frames at a time so memory does not grow with N.

    Args:
        cmp: the `CMP` network (eval mode).
        image: float `[1, 3, H, W]` in [0, 1], the source frame (frame 0).
        landmarks: float `[N, K, 2]` (x, y) pixels of `image`, frame 0 = the source face (tensor or array).
        latent_grid: return `flow[..., ::latent_scale, ::latent_scale]` (see `flow_to_pixel_grid`).
        grid_size: CMP grid (384 for the published network).
        features: `cmp.image_features(image, (grid_size, grid_size))`, to share one image encoding
            across several densifications of the same clip; None: encoded once here.
        progress: called after every chunk with (frames done, frames to do).

    Returns:
        float `[1, N-1, 2, H, W]` or `[1, N-1, 2, H/8, W/8]`, pixels of the H x W grid.
    """
    points = torch.as_tensor(np.asarray(landmarks, dtype=np.float32))
    height, width = image.shape[-2:]

    def sparse_chunk(frames: torch.Tensor):
        track = points[torch.cat([torch.zeros(1, dtype=torch.long), frames])]  # frame 0 + the chunk
        return keypoint_sparse_flow_384(track, height, width, size=grid_size)

    return _densify(cmp, image, sparse_chunk, points.shape[0], chunk_size, latent_scale if latent_grid else 1,
                    features, progress)


def densify_sparse_flow(
    cmp, image: torch.Tensor, sparse_flow: FrameInput, sparse_mask: FrameInput, num_frames: int,
    chunk_size: int = 8, latent_grid: bool = True, latent_scale: int = 8, features=None,
    progress: ChunkProgress | None = None,
) -> torch.Tensor:
    """Densify precomputed sparse hints `[1, N-1, 2, S, S]` (row j = frame j+1; or frame sources) with CMP,
    chunk by chunk; same output, `features` and `progress` as `densify_landmark_flow`."""

    def sparse_chunk(frames: torch.Tensor):
        return tuple(take_frames(s, frames, 1, image.device, torch.float32)[0] for s in (sparse_flow, sparse_mask))

    return _densify(cmp, image, sparse_chunk, num_frames, chunk_size, latent_scale if latent_grid else 1,
                    features, progress)
