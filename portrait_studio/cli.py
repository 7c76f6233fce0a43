"""Command line: `python -m portrait_studio render|landmarks|check-ckpts|download`.

A thin adapter over `portrait_studio.Studio`. Bad input exits with status 2 and one line
`error: ...` on stderr (no traceback), leaving nothing at the output path.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from .errors import InputError
from .options import MofaOptions, RenderOptions
from .progress import TqdmProgress

logger = logging.getLogger("portrait_studio")


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage errors as one `error: ...` line with exit status 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"error: {message} (see `python -m portrait_studio {self.prog.split()[-1]} --help`)\n")
        raise SystemExit(2)


def _add_driver_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--image", required=True, type=Path, help="portrait photo (any format PIL reads)")
    p.add_argument("--audio", type=Path, help="speech audio (wav, mp3, m4a, ogg, flac, ...); muxed into the video")
    p.add_argument("--fps", type=float, default=25.0, help="output frame rate (default 25)")
    p.add_argument("--size", type=int, default=512, help="short side of the output in pixels (default 512)")
    p.add_argument("--seed", type=int, default=0, help="random seed (blinks, head motion, noise)")
    p.add_argument("--transcript", help="what is said (a .txt file or the text itself; English): forced alignment")
    p.add_argument("--head-motion", type=float, default=1.0, help="idle head motion scale, 0 = still (default 1)")
    p.add_argument("--expressiveness", type=float, default=1.0,
                   help="brow raises and eye widening scale, 0 = none; blinks stay natural (default 1)")
    p.add_argument("--language", default="auto", choices=["auto", "english", "acoustic"],
                   help="speech: auto (any language), english (phone visemes), acoustic (loudness/spectrum only)")
    p.add_argument("--max-duration", type=float, default=600.0, help="longest audio accepted, seconds (default 600)")
    p.add_argument("--audio-driver", default="embedded", choices=["embedded", "sadtalker"],
                   help="speech -> motion: embedded (no weights, default) or sadtalker (learned; needs its weights)")
    p.add_argument("--pose-style", type=int, default=0, help="sadtalker head-pose style 0..45 (default 0)")
    p.add_argument("--driving-video", type=Path, help="puppet the portrait with the face in this video")
    p.add_argument("--relative-to", default="first", choices=["first", "neutral"],
                   help="driving video: measure motion from its first frame or its most neutral one")
    p.add_argument("--expression", type=Path, help="expression keyframes (JSON or YAML), layered over the driver")
    p.add_argument("--ckpt-dir", type=Path, help="checkpoint directory (default $PORTRAIT_STUDIO_CKPTS or ckpts/)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="portrait_studio", description="Talking portraits from one photo and speech.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log details (and tracebacks of internal errors)")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    r = sub.add_parser("render", help="render a talking-portrait video")
    _add_driver_args(r)
    r.add_argument("-o", "--output", required=True, type=Path, help="output video (.mp4, .mov or .mkv)")
    r.add_argument("--engine", default="auto", choices=["auto", "warp", "mofa"],
                   help="auto: mofa when its checkpoints verify and a GPU is present, else warp")
    r.add_argument("--trajectory", type=Path, help="JSON trajectories that move the background")
    r.add_argument("--motion-brush", type=Path, help="mask image: white = region the trajectories move")
    r.add_argument("--save-landmarks", type=Path, help="also save the landmark track (.npz)")
    r.add_argument("--debug-dir", type=Path, help="also write landmark-overlay and flow videos here")
    r.add_argument("--landmarks", type=Path, help="render this saved (possibly hand-edited) landmark track (.npz)")
    m = r.add_argument_group("mofa engine")
    m.add_argument("--steps", type=int, default=25, help="denoising steps (default 25)")
    m.add_argument("--guidance-min", type=float, default=1.0, help="CFG scale at a window's first frame")
    m.add_argument("--guidance-max", type=float, default=3.0, help="CFG scale at a window's last frame")
    m.add_argument("--landmark-scale", type=float, default=1.0, help="landmark adapter scale (default 1.0)")
    m.add_argument("--trajectory-scale", type=float, default=0.6, help="trajectory adapter scale (default 0.6)")
    m.add_argument("--window", type=int, default=25, choices=[14, 25], help="frames per sampling window")
    m.add_argument("--landmark-mask", type=Path, help="mask image: white = region the landmark adapter drives")
    m.add_argument("--dtype", default="fp16", choices=["fp16", "bf16", "fp32"], help="dtype on the GPU")
    m.add_argument("--device", help="torch device (default: cuda when available, else cpu)")
    m.add_argument("--cpu-offload", action="store_true", help="offload idle models to the CPU")
    m.add_argument("--decode-chunk", type=int, default=8, help="frames per VAE decode (default 8)")

    lm = sub.add_parser("landmarks", help="compute the landmark track only (.npz)")
    _add_driver_args(lm)
    lm.add_argument("-o", "--output", required=True, type=Path, help="output track (.npz)")

    c = sub.add_parser("check-ckpts", help="list present / missing / wrong-shape checkpoint files")
    c.add_argument("--ckpt-dir", type=Path, help="checkpoint directory (default $PORTRAIT_STUDIO_CKPTS or ckpts/)")
    c.add_argument("--quick", action="store_true", help="check presence only, not keys and shapes")

    d = sub.add_parser("download", help="download the published weights (needs network access)")
    d.add_argument("--ckpt-dir", type=Path, help="where to put them (default $PORTRAIT_STUDIO_CKPTS or ckpts/)")
    d.add_argument("--accept-license", action="store_true",
                   help="accept the Stable Video Diffusion community licence without asking")
    return parser


def _transcript(value: str | None) -> str | None:
    if value is None:
        return None
    path = Path(value)
    if path.suffix.lower() == ".txt" or path.is_file():
        if not path.is_file():
            raise InputError(f"transcript file not found: {path}")
        try:
            return path.read_text(encoding="utf-8").strip() or None
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(f"transcript {path} is not readable UTF-8 text ({exc})") from None
    return value.strip() or None


def _options(args: argparse.Namespace) -> RenderOptions:
    mofa = MofaOptions(
        steps=getattr(args, "steps", 25), guidance_min=getattr(args, "guidance_min", 1.0),
        guidance_max=getattr(args, "guidance_max", 3.0), landmark_scale=getattr(args, "landmark_scale", 1.0),
        trajectory_scale=getattr(args, "trajectory_scale", 0.6), window=getattr(args, "window", 25),
        landmark_mask=getattr(args, "landmark_mask", None), dtype=getattr(args, "dtype", "fp16"),
        device=getattr(args, "device", None), cpu_offload=getattr(args, "cpu_offload", False),
        decode_chunk=getattr(args, "decode_chunk", 8),
    )
    return RenderOptions(
        engine=getattr(args, "engine", "warp"), fps=args.fps, size=args.size, seed=args.seed,
        transcript=_transcript(args.transcript), head_motion=args.head_motion, expressiveness=args.expressiveness,
        trajectory=getattr(args, "trajectory", None), motion_brush=getattr(args, "motion_brush", None),
        max_duration=args.max_duration, ckpt_dir=getattr(args, "ckpt_dir", None),
        save_landmarks=getattr(args, "save_landmarks", None), debug_dir=getattr(args, "debug_dir", None),
        language=args.language, audio_driver=args.audio_driver, pose_style=args.pose_style,
        driving_video=args.driving_video,
        relative_to=args.relative_to, expression=args.expression, landmarks=getattr(args, "landmarks", None),
        mofa=mofa,
    ).validate()


def _cmd_render(args: argparse.Namespace) -> int:
    from .studio import Studio

    progress = TqdmProgress()
    try:
        result = Studio(_options(args)).render(args.image, args.audio, args.output, progress=progress)
    finally:
        progress.close()
    audio = "" if result.has_audio else ", no audio"
    print(f"wrote {result.path} ({result.num_frames} frames, {result.duration:.2f} s, engine {result.engine}{audio})")
    return 0


def _cmd_landmarks(args: argparse.Namespace) -> int:
    from .studio import Studio

    if args.output.suffix.lower() != ".npz":
        raise InputError(f"landmark tracks are written as .npz, got {args.output}")
    progress = TqdmProgress()
    try:
        track = Studio(_options(args)).landmarks(args.image, args.audio, args.output, progress=progress)
    finally:
        progress.close()
    print(f"wrote {args.output} ({track.num_frames} frames at {track.fps:g} fps)")
    return 0


def _cmd_check(args: argparse.Namespace) -> int:
    from .ckpts import check_ckpts

    report = check_ckpts(args.ckpt_dir, deep=not args.quick)
    print(f"checkpoint directory: {report.root}")
    for f in report.files:
        print(f"  {f.status:<11} {f.spec.key:<26} {f.path}" + (f"  ({f.detail})" if f.detail else ""))
    counts = {s: sum(f.status == s for f in report.files) for s in ("present", "missing", "wrong-shape", "unreadable")}
    print(", ".join(f"{n} {s}" for s, n in counts.items()))
    if not report.ok:
        print("error: the mofa engine's checkpoints are incomplete; see ckpts/README.md or run "
              "`python -m portrait_studio download`", file=sys.stderr)
        return 2
    return 0


def _cmd_download(args: argparse.Namespace) -> int:
    from .download import download

    download(args.ckpt_dir, accept_license=args.accept_license)
    return 0


COMMANDS = {"render": _cmd_render, "landmarks": _cmd_landmarks, "check-ckpts": _cmd_check, "download": _cmd_download}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s" if args.verbose else "%(message)s")
    try:
        return COMMANDS[args.command](args)
    except InputError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write("error: interrupted; no output was written\n")
        return 130
    except Exception as exc:  # noqa: BLE001 - last resort: one line, traceback only with --verbose
        if args.verbose:
            raise
        sys.stderr.write(f"error: internal error: {type(exc).__name__}: {exc} (rerun with --verbose for details)\n")
        return 1
