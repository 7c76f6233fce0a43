"""MOFA engine speed, component by component: where one denoising step of one window goes.

One denoising step of a window of L frames (CFG: a batch of 2) runs the landmark adapter, the
trajectory adapter, the mask blend, the UNet and one Euler step; this script times each of them on
the inputs the pipeline gives them, plus the per-clip work around the loop: CMP (image encoder once
per clip, decoder per frame) and the VAE temporal decoder per chunk. Random weights: speed only.

    python benchmarks/mofa_step.py                 # tiny configs (the test checkpoints' sizes) on the CPU
    python benchmarks/mofa_step.py --full          # published sizes (SVD-xt, adapters, CMP) on a CUDA GPU
    python benchmarks/mofa_step.py --full --dtype bf16 --size 512 --frames 25

Prints median milliseconds per call over `--repeats` runs (after one warm-up), and what a whole
window step and a 25-step clip would cost. `--full` without a CUDA device prints why and exits 0.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from mofa_engine.models.cmp import CMP  # noqa: E402
from mofa_engine.pipeline.conditioning import added_time_ids, blend_residuals, guidance_ramp  # noqa: E402
from mofa_engine.models.flow_adapter import LandmarkAdapter, TrajectoryAdapter  # noqa: E402
from mofa_engine.sparse_flow import CMP_SIZE  # noqa: E402
from mofa_engine.models.unet import MofaUNet  # noqa: E402

FIXTURES = ROOT / "tests" / "fixtures"
DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}


def device_and_dtype(args, script: str) -> tuple[torch.device | None, torch.dtype]:
    """The device and dtype asked for (`--device`, `--dtype`, `--full`: CUDA and fp16 by default); device
    None, after saying why, when `--full` has no CUDA GPU to run on."""
    device = torch.device(args.device or ("cuda" if args.full else "cpu"))
    dtype = DTYPES[args.dtype or ("fp16" if args.full else "fp32")]
    if args.full and (device.type != "cuda" or not torch.cuda.is_available()):
        print(f"{script} --full needs a CUDA GPU (the published networks hold ~3.1 G parameters); none is "
              "available here, nothing was measured. Run without --full for the tiny CPU configuration.")
        return None, dtype
    return device, dtype
# SVD-xt-1-1's VAE (vae/config.json of the published folder)
FULL_VAE = {"block_out_channels": [128, 256, 512, 512], "down_block_types": ["DownEncoderBlock2D"] * 4,
            "layers_per_block": 2, "latent_channels": 4, "sample_size": 768}


def build(full: bool, device: torch.device, dtype: torch.dtype) -> dict:
    """Random-weight networks on `device`: published sizes with `full`, else the tiny test sizes."""
    from diffusers import AutoencoderKLTemporalDecoder, EulerDiscreteScheduler

    scheduler_config = json.loads((FIXTURES / "scheduler_svd_25steps_assumed.json").read_text())["config"]
    torch.manual_seed(0)
    if full:
        unet_config = json.loads((FIXTURES / "config_svd_unet_assumed.json").read_text())
        with torch.device(device):  # initialise in place: no 6 GB detour through host memory
            nets = {"landmark": LandmarkAdapter(), "trajectory": TrajectoryAdapter(),
                    "unet": MofaUNet.from_config(unet_config), "vae": AutoencoderKLTemporalDecoder(**FULL_VAE),
                    "cmp": CMP()}
    else:
        from tests.mofa_engine.tiny_configs import tiny_landmark_adapter, tiny_trajectory_adapter
        from tests.portrait_studio.tiny_mofa_tree import TINY_CMP, TINY_UNET, TINY_VAE

        nets = {"landmark": tiny_landmark_adapter(0), "trajectory": tiny_trajectory_adapter(1),
                "unet": MofaUNet(**TINY_UNET), "vae": AutoencoderKLTemporalDecoder(**TINY_VAE), "cmp": CMP(**TINY_CMP)}
    for name, net in nets.items():
        net.eval().to(device)
        if name != "cmp" and dtype != torch.float32:  # CMP runs in fp32 in the app
            net.to(dtype)
    nets["scheduler"] = EulerDiscreteScheduler.from_config(scheduler_config)
    return nets


def timer(device: torch.device, repeats: int) -> Callable[[Callable[[], object]], float]:
    """f -> median seconds of one call (one warm-up call first; CUDA synchronised)."""

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    def measure(fn: Callable[[], object]) -> float:
        fn()
        times = []
        for _ in range(repeats):
            sync()
            start = time.perf_counter()
            fn()
            sync()
            times.append(time.perf_counter() - start)
        return statistics.median(times)

    return measure


@torch.no_grad()
def run(full: bool, device: torch.device, dtype: torch.dtype, size: int, frames: int, repeats: int,
        decode_chunk: int) -> list[tuple[str, float, str]]:
    nets = build(full, device, dtype)
    unet, vae, cmp, scheduler = nets["unet"], nets["vae"], nets["cmp"], nets["scheduler"]
    measure = timer(device, repeats)
    h = w = size // 8
    g = torch.Generator(device="cpu").manual_seed(0)

    def rand(*shape, scale=1.0, dt=dtype):
        return (torch.randn(*shape, generator=g) * scale).to(device=device, dtype=dt)

    # the inputs `MofaPipeline._predict_window` builds for one window of `frames` frames (CFG batch 2)
    x_in = rand(2, frames, unet.config.in_channels, h, w)
    t = torch.tensor(0.25 * torch.log(torch.tensor(70.5)).item(), device=device)  # a mid-schedule sigma
    ehs = rand(2, 1, unet.config.cross_attention_dim)
    ids = added_time_ids(2, dtype, device)
    cond = rand(2, 3, size, size).clamp(-1, 1)
    flow = rand(2, frames - 1, 2, size, size, scale=4.0)
    pose = rand(2, frames, 3, size, size).clamp(0, 1)
    mask = (torch.rand(1, 1, size, size, generator=g) > 0.5).to(device=device, dtype=dtype)
    common = dict(encoder_hidden_states=ehs, added_time_ids=ids, controlnet_cond=cond, controlnet_flow=flow)

    rows = []
    landmark = lambda: nets["landmark"](x_in, t, landmarks=pose, conditioning_scale=1.0, **common)  # noqa: E731
    trajectory = lambda: nets["trajectory"](x_in, t, conditioning_scale=0.6, **common)  # noqa: E731
    rows.append(("landmark adapter", measure(landmark), f"batch 2 x {frames} frames"))
    rows.append(("trajectory adapter", measure(trajectory), f"batch 2 x {frames} frames"))
    inside, outside = landmark(), trajectory()
    down = blend_residuals(inside[0], outside[0], mask)
    mid = blend_residuals([inside[1]], [outside[1]], mask)[0]
    rows.append(("mask blend", measure(lambda: blend_residuals(inside[0], outside[0], mask)), "13 residuals"))
    rows.append(("UNet", measure(lambda: unet(x_in, t, ehs, ids, down, mid, return_dict=False)), "with residuals"))
    v = unet(x_in, t, ehs, ids, down, mid, return_dict=False)[0].float()
    ramp = guidance_ramp(1.0, 3.0, frames, device)
    latents = torch.randn(1, frames, 4, h, w, generator=g).to(device)

    def euler_step():
        scheduler.set_timesteps(25, device="cpu")
        scheduler._step_index = 10  # a mid-schedule step; set_timesteps resets it
        timestep = scheduler.timesteps[10]
        scheduler.scale_model_input(torch.cat([latents] * 2), timestep)  # the window's input scaling
        mixed = v[:1] + ramp * (v[1:] - v[:1])  # CFG
        return scheduler.step(mixed, timestep, latents).prev_sample

    rows.append(("scaling, CFG, Euler", measure(euler_step), "scheduler work of a step"))
    step_total = sum(r[1] for r in rows)
    rows.append(("= one window step", step_total, f"{frames} frames"))

    image = rand(1, 3, size, size, dt=torch.float32).clamp(0, 1)
    chunk = 8
    sparse = torch.zeros(chunk, 2, CMP_SIZE, CMP_SIZE)
    hints = torch.randint(0, CMP_SIZE, (2, 68), generator=g)
    sparse[:, :, hints[0], hints[1]] = torch.randn(chunk, 2, 68, generator=g) * 3
    sparse, hint_mask = sparse.to(device), (sparse != 0).float().to(device)
    features = cmp.image_features(image)
    rows.append(("CMP image encoder", measure(lambda: cmp.image_features(image)), "once per clip"))
    per_chunk = measure(lambda: cmp.densify(image, sparse, hint_mask, features=features))
    rows.append(("CMP flow per frame", per_chunk / chunk, f"decode at {CMP_SIZE}, chunks of {chunk}"))
    z = rand(decode_chunk, 4, h, w)
    per_decode = measure(lambda: vae.decode(z / vae.config.scaling_factor, num_frames=decode_chunk).sample)
    rows.append(("VAE decode per chunk", per_decode, f"{decode_chunk} frames"))
    rows.append(("25-step window", 25 * step_total, f"{frames} frames, without CMP/decode"))
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--full", action="store_true", help="published sizes on a CUDA GPU (random weights)")
    parser.add_argument("--device", help="torch device (default: cuda with --full, else cpu)")
    parser.add_argument("--dtype", choices=sorted(DTYPES), help="default fp16 with --full, fp32 otherwise")
    parser.add_argument("--size", type=int, help="image side, a multiple of 64 (default 512 full, 128 tiny)")
    parser.add_argument("--frames", type=int, help="frames per window incl. frame 0 (default 25 full, 14 tiny)")
    parser.add_argument("--repeats", type=int, default=3, help="timed calls per component (median)")
    parser.add_argument("--decode-chunk", type=int, default=8, help="frames per VAE decode")
    args = parser.parse_args()
    device, dtype = device_and_dtype(args, "mofa_step")
    if device is None:
        return 0
    if device.type == "cpu" and dtype != torch.float32:
        print(f"note: {args.dtype} on the CPU is slow or unsupported; using fp32")
        dtype = torch.float32
    size = args.size or (512 if args.full else 128)
    frames = args.frames or (25 if args.full else 14)
    if size % 64:
        parser.error(f"--size must be a multiple of 64, got {size}")
    if device.type == "cpu":
        torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    from diffusers.utils import logging as diffusers_logging

    diffusers_logging.set_verbosity_error()  # random-weight casts: no "load with torch_dtype" advice
    rows = run(args.full, device, dtype, size, frames, args.repeats, args.decode_chunk)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} thread(s)"
    print(f"\nMOFA {'full-size' if args.full else 'tiny'} networks, {size}x{size}, window {frames} frames, "
          f"{str(dtype).removeprefix('torch.')}, {name}, median of {args.repeats}")
    print(f"  {'component':<22}{'ms':>10}   note")
    for label, seconds, note in rows:
        print(f"  {label:<22}{seconds * 1000:>10.1f}   {note}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
