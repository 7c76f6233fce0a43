"""MOFA engine end to end: seconds of compute per second of video and peak memory, keypoint vs hybrid.

Runs `mofa_engine.pipeline.animate.animate_portrait` (CMP flows, periodic sampling over every window, streamed
decode) on random-weight networks for a talking clip, once per mode, and consumes every frame:

    python benchmarks/mofa_render.py                  # tiny networks on the CPU: 1 s, 64x64, 3 steps
    python benchmarks/mofa_render.py --full           # published sizes on a CUDA GPU: 10 s, 512x512, 25 steps, fp16
    python benchmarks/mofa_render.py --full --modes keypoint --seconds 30

Keypoint runs the landmark adapter alone (one adapter per window step); hybrid runs both adapters
and blends them by the head mask. Prints, per mode, wall seconds, seconds per second of video and
the peak memory (CUDA: `max_memory_allocated`; CPU: the process's peak RSS so far, which only grows).
`--full` without a CUDA device prints why and exits 0.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection  # noqa: E402

from mofa_engine import MofaPipeline  # noqa: E402
from mofa_engine.pipeline.animate import PortraitMotion, animate_portrait  # noqa: E402
from mofa_step import DTYPES, build, device_and_dtype  # noqa: E402

# SVD-xt's image encoder (OpenCLIP ViT-H/14 vision tower with a 1024-d projection)
FULL_CLIP = {"hidden_size": 1280, "intermediate_size": 5120, "num_attention_heads": 16, "num_hidden_layers": 32,
             "patch_size": 14, "image_size": 224, "projection_dim": 1024, "hidden_act": "gelu"}


def pipeline(full: bool, device: torch.device, dtype: torch.dtype) -> MofaPipeline:
    """Random-weight MofaPipeline on `device` (published sizes with `full`, else the tiny test sizes)."""
    nets = build(full, device, dtype)
    if full:
        clip_config = FULL_CLIP
    else:
        from tests.portrait_studio.tiny_mofa_tree import TINY_CLIP

        clip_config = TINY_CLIP
    torch.manual_seed(0)
    clip = CLIPVisionModelWithProjection(CLIPVisionConfig(**clip_config)).eval().to(device, dtype)
    pipe = MofaPipeline(vae=nets["vae"], image_encoder=clip, unet=nets["unet"], scheduler=nets["scheduler"],
                        landmark_adapter=nets["landmark"], trajectory_adapter=nets["trajectory"], cmp=nets["cmp"])
    pipe.set_progress_bar_config(disable=True)
    return pipe


def talking_track(size: int, frames: int, fps: float) -> PortraitMotion:
    """A frontal face whose mouth opens and closes at 3 Hz and whose head sways a little."""
    from tests.mofa_engine.tiny_configs import FRONTAL_FACE_68

    reference = np.array(FRONTAL_FACE_68, np.float32) * size
    t = np.arange(frames, dtype=np.float32) / fps
    points = np.repeat(reference[None], frames, axis=0)
    points[:, 57:60, 1] += (0.04 * size * np.maximum(np.sin(2 * np.pi * 3 * t), 0))[:, None]  # lower lip
    points[:, :, 0] += (0.01 * size * np.sin(2 * np.pi * 0.5 * t))[:, None]
    points[0] = reference
    return PortraitMotion(points=points, reference=reference)


def peak_memory(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{torch.cuda.max_memory_allocated(device) / 2**30:.2f} GiB VRAM"
    return f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GiB RSS (process peak)"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--full", action="store_true", help="published sizes on a CUDA GPU (random weights)")
    parser.add_argument("--device", help="torch device (default: cuda with --full, else cpu)")
    parser.add_argument("--dtype", choices=sorted(DTYPES), help="default fp16 with --full, fp32 otherwise")
    parser.add_argument("--seconds", type=float, help="video length (default 10 full, 1 tiny)")
    parser.add_argument("--fps", type=float, default=25.0)
    parser.add_argument("--size", type=int, help="image side, a multiple of 64 (default 512 full, 64 tiny)")
    parser.add_argument("--steps", type=int, help="denoising steps (default 25 full, 3 tiny)")
    parser.add_argument("--window", type=int, choices=(14, 25), help="default 25 full, 14 tiny")
    parser.add_argument("--modes", default="keypoint,hybrid", help="comma-separated: keypoint, hybrid")
    args = parser.parse_args()
    device, dtype = device_and_dtype(args, "mofa_render")
    if device is None:
        return 0
    if device.type == "cpu":
        dtype = torch.float32
        torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    size = args.size or (512 if args.full else 64)
    seconds = args.seconds or (10.0 if args.full else 1.0)
    steps = args.steps or (25 if args.full else 3)
    window = args.window or (25 if args.full else 14)
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    if size % 64 or not set(modes) <= {"keypoint", "hybrid"}:
        parser.error("--size must be a multiple of 64 and --modes a list of keypoint, hybrid")
    from diffusers.utils import logging as diffusers_logging

    diffusers_logging.set_verbosity_error()
    pipe = pipeline(args.full, device, dtype)
    frames = int(round(seconds * args.fps))
    motion = talking_track(size, frames, args.fps)
    image = np.random.default_rng(0).integers(0, 256, (size, size, 3), dtype=np.uint8)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} thread(s)"
    print(f"\nMOFA {'full-size' if args.full else 'tiny'} networks, {seconds:g} s ({frames} frames) at "
          f"{size}x{size}, {steps} steps, window {window}, {str(dtype).removeprefix('torch.')}, {name}")
    print(f"  {'mode':<10}{'wall s':>10}{'s per s of video':>20}   peak memory")
    for mode in modes:
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        count = sum(1 for _ in animate_portrait(pipe, image, motion, mode=mode, num_inference_steps=steps,
                                                window_size=window, device=device))
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        wall = time.perf_counter() - start
        assert count == frames, (count, frames)
        print(f"  {mode:<10}{wall:>10.1f}{wall / seconds:>20.2f}   {peak_memory(device)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
