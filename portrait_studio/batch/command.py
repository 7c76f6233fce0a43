"""`python -m portrait_studio batch JOBS --out DIR`: the command-line adapter over `run_batch`.

Exit status: 0 when every job is done or up to date, 1 when some failed, 2 when the job file (or
another argument) is invalid — then nothing has run and nothing was written.
"""

from __future__ import annotations

import argparse
import sys
import threading
from pathlib import Path

from ..errors import InputError, RenderCancelled
from .jobs import load_jobs
from .runner import plan_batch, run_batch


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The `batch` subcommand's arguments."""
    p.add_argument("jobs", type=Path, help="job file: YAML (a list, or {defaults, jobs}), CSV or JSONL; one render per row")
    p.add_argument("--out", required=True, type=Path, help="output folder: every job's `output` is a file name under it")
    p.add_argument("--workers", type=int, help="parallel renders (default: one per GPU, else half the CPU cores)")
    p.add_argument("--executor", default="local", choices=["local", "ray"],
                   help="local worker processes (default) or Ray actors (the `ray` extra)")
    p.add_argument("--address", help="Ray cluster address (with --executor ray; default: start a local Ray)")
    p.add_argument("--allow-outside", action="store_true",
                   help="let outputs be absolute paths or leave --out through '..' or symbolic links")
    p.add_argument("--dry-run", action="store_true", help="validate and list what would run and what is up to date")


def run(args: argparse.Namespace, cancel: threading.Event | None = None) -> int:
    """Handle `batch`; InputError (exit 2) propagates to the CLI's main.

    `cancel` is the CLI's signal event (Ctrl-C, SIGTERM, SIGHUP): running renders stop cleanly,
    finished outputs stay, the summary is written, exit status 130.
    """
    if args.workers is not None and not 1 <= args.workers <= 256:
        raise InputError(f"--workers must be between 1 and 256, got {args.workers}")
    if args.address and args.executor != "ray":
        raise InputError("--address needs --executor ray")
    if args.out.exists() and not args.out.is_dir():
        raise InputError(f"--out is not a folder: {args.out}")
    jobs = load_jobs(args.jobs, args.out, allow_outside=args.allow_outside)
    if args.dry_run:
        plan = plan_batch(jobs, args.out.expanduser().resolve())
        skipped = {job.row for job, _ in plan.skip}
        for job in jobs:
            state = "skip" if job.row in skipped else "run "
            note = "  (up to date)" if job.row in skipped else ""
            print(f"{state} row {job.row:>4}  {job.name}  [{job.options.engine}]{note}")
        print(f"{len(plan.run)} to run, {len(plan.skip)} up to date")
        return 0
    executor = _executor(args)
    bar = _JobBar()
    try:
        with executor:
            summary = run_batch(jobs, args.out, executor, progress=bar, cancel=cancel)
    except RenderCancelled:
        bar.close()
        sys.stderr.write("error: interrupted; finished outputs are kept and a rerun resumes the batch\n")
        return 130
    finally:
        bar.close()
    for job in summary.jobs:
        if job.status in ("failed", "cancelled"):
            sys.stderr.write(f"{job.status}: row {job.row} ({job.output}): {job.error}\n")
    counts = ", ".join(f"{summary.count(s)} {s}" for s in ("done", "skipped", "failed") if summary.count(s))
    print(f"{counts} in {summary.seconds:.1f} s; summary in {args.out / 'summary.json'}")
    return 0 if summary.ok else 1


def _executor(args: argparse.Namespace):
    if args.executor == "ray":
        from .ray_executor import RayExecutor

        return RayExecutor(workers=args.workers, address=args.address)
    from .local import LocalExecutor

    return LocalExecutor(workers=args.workers)


class _JobBar:
    """A tqdm bar over jobs (with the ETA), fed by run_batch's progress("jobs", done, total)."""

    def __init__(self) -> None:
        self._bar = None

    def __call__(self, stage: str, done: int, total: int) -> None:
        from tqdm import tqdm

        if self._bar is None:
            self._bar = tqdm(total=total, desc="batch", unit="job", dynamic_ncols=True, delay=0.5)
        self._bar.update(done - self._bar.n)
        if done >= total:
            self._bar.close()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
