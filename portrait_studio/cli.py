"""Command line: `python -m portrait_studio render|landmarks|evaluate|check-ckpts|download`.

A thin adapter over `portrait_studio.Studio`. Bad input exits with status 2 and one line
`error: ...` on stderr (no traceback), leaving nothing at the output path.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import signal
import sys
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path

from .errors import InputError, RenderCancelled
from .limits import LIMITS, limits_help
from .options import MofaOptions, RenderOptions, option_specs, options_from_values
from .progress import TqdmProgress

logger = logging.getLogger("portrait_studio")


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage errors as one `error: ...` line with exit status 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"error: {message} (see `python -m portrait_studio {self.prog.split()[-1]} --help`)\n")
        raise SystemExit(2)


def _add_option_args(p: argparse.ArgumentParser, command: str) -> None:
    """The command's flags, derived from the options dataclasses (one source for defaults and help)."""
    group = p
    for spec in option_specs():
        if command not in spec.scope:
            continue
        if spec.owner is MofaOptions and group is p:
            group = p.add_argument_group("mofa engine")
        kwargs: dict = {"dest": spec.name, "default": None, "metavar": spec.metavar}
        if spec.default is None or spec.default is False:
            default = ""
        else:
            default = f" (default {spec.default:g})" if isinstance(spec.default, float) else f" (default {spec.default})"
        if spec.kind is bool:
            kwargs = {"dest": spec.name, "action": "store_true", "default": None}
        elif spec.choices:
            kwargs.update(choices=spec.choices, metavar=None)
        else:
            kwargs["type"] = spec.kind
            if spec.kind in (int, float):
                kwargs["metavar"] = spec.metavar or ("N" if spec.kind is int else "X")
        group.add_argument(spec.flag, help=spec.help + default, **kwargs)


DRIVERS_REQUIRED = ("Needs --image, -o and at least one driver: --audio, --driving-video, --expression or "
                    "--landmarks (render only); --audio may be combined with any of the others.")

OUTPUTS_NOTE = """\
outputs:
  -o, --save-landmarks and the --debug-dir videos are checked before any work and never overwrite an
  input (the same path, a symlink or a hard link to the photo, audio, driving video, keyframes,
  trajectories, masks or track is refused). Each is written under a temporary name beside it and
  renamed only when the whole render succeeds; a failure, Ctrl-C, SIGTERM or SIGHUP removes the
  temporary files and leaves an existing output unchanged. A replaced file keeps its mode.

exit status: 0 done; 2 bad input (one `error: ...` line); 1 internal error (a bug: please report);
  128+N stopped by signal N (130 Ctrl-C, 143 SIGTERM, 129 SIGHUP)."""


def _epilog(examples: str) -> str:
    return f"examples:\n{examples}\n\n{OUTPUTS_NOTE}\n\nlimits (bad input beyond them is refused, exit 2):\n{limits_help()}"


RENDER_EXAMPLES = """\
  python -m portrait_studio render --image me.jpg --audio speech.wav -o talk.mp4
  python -m portrait_studio render --image me.jpg --driving-video puppet.mp4 -o puppet.mp4
  python -m portrait_studio render --image me.jpg --expression examples/expressions/smile_nod.json -o smile.mp4
  python -m portrait_studio render --image me.jpg --audio speech.wav --expression keys.yaml \\
      --save-landmarks talk.npz --debug-dir debug/ -o talk.mp4
  python -m portrait_studio render --image me.jpg --landmarks edited.npz --audio speech.wav -o edited.mp4"""

LANDMARKS_EXAMPLES = """\
  python -m portrait_studio landmarks --image me.jpg --audio speech.wav -o talk.npz
  python -m portrait_studio landmarks --image me.jpg --driving-video puppet.mp4 -o puppet.npz"""


def _add_inputs(p: argparse.ArgumentParser) -> None:
    p.add_argument("--image", required=True, type=Path,
                   help=f"portrait photo (any format PIL reads, 16-bit and float too; at most {LIMITS.image_pixels}, "
                        "read from the header before decoding)")
    p.add_argument("--audio", type=Path, help="speech audio (wav, mp3, m4a, ogg, flac, ...); muxed into the video "
                                              "(NaN/inf samples are silenced, overloud float audio scaled down)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="portrait_studio", description="Talking portraits from one photo and speech.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log details (and tracebacks of internal errors)")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    r = sub.add_parser("render", help="render a talking-portrait video", description=DRIVERS_REQUIRED,
                       epilog=_epilog(RENDER_EXAMPLES), formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_inputs(r)
    r.add_argument("-o", "--output", required=True, type=Path,
                   help="output video (.mp4, .mov or .mkv); never over an input")
    _add_option_args(r, "render")

    lm = sub.add_parser("landmarks", help="compute the landmark track only (.npz)",
                        description=DRIVERS_REQUIRED.replace(", --expression or --landmarks (render only)",
                                                             " or --expression"),
                        epilog=_epilog(LANDMARKS_EXAMPLES), formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_inputs(lm)
    lm.add_argument("-o", "--output", required=True, type=Path, help="output track (.npz); never over an input")
    _add_option_args(lm, "landmarks")

    _add_evaluate_parser(sub)

    c = sub.add_parser("check-ckpts", help="list present / missing / wrong-shape checkpoint files")
    c.add_argument("--ckpt-dir", type=Path, help="checkpoint directory (default $PORTRAIT_STUDIO_CKPTS or ckpts/)")
    c.add_argument("--quick", action="store_true", help="check presence only, not keys and shapes")

    _add_live_command(sub)

    d = sub.add_parser("download", help="download the published weights (needs network access)")
    d.add_argument("--ckpt-dir", type=Path, help="where to put them (default $PORTRAIT_STUDIO_CKPTS or ckpts/)")
    d.add_argument("--accept-license", action="store_true",
                   help="accept the Stable Video Diffusion community licence without asking")
    _add_batch_command(sub)
    _add_serve_command(sub)
    return parser


def _add_evaluate_parser(sub) -> None:
    from .evaluation import EvaluateOptions
    from .evaluation.definitions import MEASURES

    defaults = EvaluateOptions()
    limits = (f"limits (read from each video's header before decoding; beyond them: exit 2): --max-duration up to "
              f"{LIMITS.max_duration}; {LIMITS.evaluate_frames}; frames up to {LIMITS.evaluate_long_side} on their "
              "long side")

    e = sub.add_parser("evaluate", help="measure talking-portrait videos: lip sync, control, drift, stillness",
                       description="Measure talking-portrait videos (ours or any other tool's) with numbers and "
                                   "a plot; several videos are compared side by side.",
                       epilog=f"{MEASURES}\n\n{limits}", formatter_class=argparse.RawDescriptionHelpFormatter)
    e.add_argument("videos", nargs="+", type=Path, metavar="VIDEO", help="videos to measure (.mp4, .mov, .mkv)")
    e.add_argument("--audio", type=Path, help="speech to compare the mouth with (default: each video's own track)")
    e.add_argument("--landmarks", type=Path, help="the asked-for landmark track (.npz): control accuracy")
    e.add_argument("--driving-video", type=Path, help="the asked-for motion as a driving video (needs --image)")
    e.add_argument("--image", type=Path, help="the source portrait: face geometry drift")
    e.add_argument("--json", type=Path, help="write the results here (one object per video)")
    e.add_argument("--plot", type=Path, help="write the curves here (.png)")
    e.add_argument("--window", type=float, default=defaults.window_s,
                   help=f"drift window in seconds (default {defaults.window_s:g})")
    e.add_argument("--max-duration", type=float, default=defaults.limits.max_duration,
                   help=f"longest video accepted, seconds (default {defaults.limits.max_duration:g}; checked "
                        "before decoding)")


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from . import evaluation
    from .outputs import check_output_path

    inputs = [*args.videos, args.audio, args.landmarks, args.driving_video, args.image]
    if args.json is not None:
        check_output_path(args.json, inputs, extensions=(".json",), what="--json")
    if args.plot is not None:
        check_output_path(args.plot, inputs, extensions=(".png",), what="--plot")
    for name in ("audio", "landmarks", "driving_video", "image"):
        value = getattr(args, name)
        if value is not None and not value.is_file():
            raise InputError(f"--{name.replace('_', '-')} file not found: {value}")
    options = evaluation.EvaluateOptions(
        audio=args.audio, landmarks=args.landmarks, driving_video=args.driving_video, image=args.image,
        window_s=args.window, limits=evaluation.Limits(max_duration=args.max_duration))
    for video in args.videos:  # every header checked before any frame is decoded
        evaluation.probe_video(video, options.limits)
    progress = TqdmProgress()
    try:
        results = [evaluation.evaluate_video(video, options, progress=progress) for video in args.videos]
    finally:
        progress.close()
    print(evaluation.format_table(results))
    if args.json is not None:
        evaluation.write_json(results, args.json)
        print(f"wrote {args.json}")
    if args.plot is not None:
        evaluation.plot_reports(results, args.plot)
        print(f"wrote {args.plot}")
    return 0


def _transcript(value: str | None) -> str | None:
    if value is None:
        return None
    path = Path(value)
    if path.suffix.lower() == ".txt" or path.is_file():
        if not path.is_file():
            raise InputError(f"transcript file not found: {path}")
        limit = LIMITS.transcript_chars
        if path.stat().st_size > 4 * limit.value:  # UTF-8: at most 4 bytes a character
            raise InputError(f"transcript {path} is {path.stat().st_size:,} bytes, over the {limit} limit")
        try:
            return path.read_text(encoding="utf-8").strip() or None
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(f"transcript {path} is not readable UTF-8 text ({exc})") from None
    return value.strip() or None


def _options(args: argparse.Namespace, command: str) -> RenderOptions:
    """RenderOptions from the parsed flags of `command` (flags left out keep the dataclass defaults)."""
    values = {spec.name: getattr(args, spec.name) for spec in option_specs() if command in spec.scope}
    values["transcript"] = _transcript(values.get("transcript"))
    return options_from_values(values).validate()


def _cmd_render(args: argparse.Namespace) -> int:
    from .studio import Studio

    progress = TqdmProgress(disable=not sys.stderr.isatty())
    try:
        with Studio(_options(args, "render")) as studio:
            result = studio.render(args.image, args.audio, args.output, progress=progress, cancel=_CANCEL)
    finally:
        progress.close()
    audio = "" if result.has_audio else ", no audio"
    print(f"wrote {result.path} ({result.num_frames} frames, {result.duration:.2f} s, engine {result.engine}{audio})")
    return 0


def _cmd_landmarks(args: argparse.Namespace) -> int:
    from .studio import Studio

    if args.output.suffix.lower() != ".npz":
        raise InputError(f"landmark tracks are written as .npz, got {args.output}")
    progress = TqdmProgress(disable=not sys.stderr.isatty())
    try:
        with Studio(_options(args, "landmarks")) as studio:
            track = studio.landmarks(args.image, args.audio, args.output, progress=progress, cancel=_CANCEL)
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


def _add_live_command(sub) -> None:
    """`live --image P` + one input: the portrait in real time (portrait_studio.live)."""

    def handle(args: argparse.Namespace) -> int:
        from .live.cli import cmd_live

        return cmd_live(args, cancel=_CANCEL)  # Ctrl-C/SIGTERM/SIGHUP end the session; outputs are finished

    from .live.cli import add_live_parser

    add_live_parser(sub)
    COMMANDS["live"] = handle


def _add_batch_command(sub) -> None:
    """`batch JOBS --out DIR`: many renders from a job file (portrait_studio.batch)."""

    def handle(args: argparse.Namespace) -> int:
        from .batch.command import run

        return run(args, cancel=_CANCEL)  # Ctrl-C/SIGTERM/SIGHUP stop the batch cleanly

    from .batch.command import add_arguments

    add_arguments(sub.add_parser("batch", help="render every job of a YAML/CSV/JSONL job file into a folder"))
    COMMANDS["batch"] = handle


def _add_serve_command(sub) -> None:
    """`serve --data DIR`: the HTTP job API (portrait_studio.server; the `serve` extra)."""

    def handle(args: argparse.Namespace) -> int:
        from .server.command import run

        return run(args)

    from .server.command import add_arguments

    add_arguments(sub.add_parser("serve", help="serve the HTTP job API (FastAPI + uvicorn)"))
    COMMANDS["serve"] = handle


COMMANDS = {"render": _cmd_render, "landmarks": _cmd_landmarks, "evaluate": _cmd_evaluate, "check-ckpts": _cmd_check,
            "download": _cmd_download}


_CANCEL = threading.Event()  # set by SIGINT/SIGTERM/SIGHUP: the running render stops at the next frame
_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))


@contextlib.contextmanager
def _cancel_on_signals() -> Iterator[list[int]]:
    """Ctrl-C, SIGTERM and SIGHUP cancel the render through its `cancel` event (the same clean path:
    temporary files removed, an existing output kept); a second signal interrupts at once.

    Yields a list that receives the numbers of the signals caught. Only in the main thread.
    """
    caught: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield caught
        return

    def handler(signum, _frame):
        caught.append(signum)
        if _CANCEL.is_set():
            raise KeyboardInterrupt
        _CANCEL.set()

    previous = {sig: signal.signal(sig, handler) for sig in _SIGNALS}
    _CANCEL.clear()
    try:
        yield caught
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
        _CANCEL.clear()


class _DeferredLog(logging.Handler):
    """Holds log records until the command ends: shown after a success, dropped after an input error,
    so `error: ...` stays the only line on stderr. With --verbose records are shown at once."""

    def __init__(self, verbose: bool) -> None:
        super().__init__(logging.INFO if verbose else logging.WARNING)
        self.verbose = verbose
        self.records: list[logging.LogRecord] = []
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s" if verbose else "%(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        if self.verbose:
            sys.stderr.write(self.format(record) + "\n")
        else:
            self.records.append(record)

    def release(self) -> None:
        """Write the held records to stderr (after a success or an internal error)."""
        for record in self.records:
            sys.stderr.write(self.format(record) + "\n")
        self.records = []


@contextlib.contextmanager
def _logging(verbose: bool) -> Iterator[_DeferredLog]:
    """Route log records through a `_DeferredLog` and hide library warnings (shown with --verbose)."""
    root = logging.getLogger()
    handler, old_level = _DeferredLog(verbose), root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO if verbose else logging.WARNING)
    try:
        with warnings.catch_warnings():
            if not verbose:  # library warnings are for developers; one line per user error
                warnings.simplefilter("ignore")
            yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)


def main(argv: list[str] | None = None) -> int:
    """Run one command; the exit status is 0 (done), 1 (internal error), 2 (bad input) or 128 + N
    (stopped by signal N: Ctrl-C 130, SIGTERM 143, SIGHUP 129)."""
    args = build_parser().parse_args(argv)
    with _logging(args.verbose) as log, _cancel_on_signals() as caught:
        try:
            code = COMMANDS[args.command](args)
            log.release()
            return code
        except InputError as exc:
            sys.stderr.write(f"error: {exc}\n")
            return 2
        except (KeyboardInterrupt, RenderCancelled):
            sig = caught[0] if caught else signal.SIGINT
            sys.stderr.write(f"error: interrupted ({signal.Signals(sig).name}); no output was written "
                             "(an existing output is unchanged)\n")
            return 128 + int(sig)
        except Exception as exc:
            if args.verbose:
                raise
            log.release()
            text = " ".join(str(exc).split())[:300]
            sys.stderr.write(f"error: internal error: {type(exc).__name__}: {text} "
                             "(rerun with --verbose for details)\n")
            return 1
