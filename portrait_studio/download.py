"""`python -m portrait_studio download`: fetch the published weights for users who have network access.

Never called at render time or in tests: rendering only ever reads what is already on disk.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from .ckpts import HF_REPO, MOFA_FILES, SADTALKER_FILES, check_ckpts, default_ckpt_dir
from .errors import InputError

logger = logging.getLogger(__name__)

SVD_LICENSE = (
    "The MOFA engine runs on Stable Video Diffusion (SVD-xt 1.1) weights, which Stability AI publishes "
    "under its Stability AI Community License (https://stability.ai/license): non-commercial and "
    "small-business use with conditions. Read it before you download."
)


def allow_patterns(sadtalker: bool = False) -> list[str]:
    """The repo paths to fetch: exactly the files the engines read (not the whole repo)."""
    files = MOFA_FILES + (SADTALKER_FILES if sadtalker else ())
    patterns = {p for spec in files for p in spec.paths}
    if sadtalker:
        patterns.add("ckpts/sad_talker/BFM_Fitting/*")
    return sorted(patterns)


def download(ckpt_dir: Path | None, accept_license: bool = False, sadtalker: bool = False) -> Path:
    """Download into `ckpt_dir` (laid out like the HF clone) and verify; returns the directory."""
    root = Path(ckpt_dir) if ckpt_dir is not None else default_ckpt_dir()
    print(SVD_LICENSE, file=sys.stderr)
    if not accept_license:
        if not sys.stdin.isatty():
            raise InputError("accepting the SVD licence needs an answer: rerun with --accept-license")
        answer = input("Accept the licence and download about 10 GB? [y/N] ").strip().lower()
        if answer not in ("y", "yes"):
            raise InputError("download cancelled: the SVD licence was not accepted")
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        raise InputError("downloading needs huggingface_hub: pip install 'portrait-studio[download]'") from None
    root.mkdir(parents=True, exist_ok=True)
    snapshot_download(repo_id=HF_REPO, local_dir=str(root), allow_patterns=allow_patterns(sadtalker))
    report = check_ckpts(root)
    if not report.ok:
        names = ", ".join(f"{f.spec.key} ({f.status})" for f in report.problems)
        raise InputError(f"download finished but files are not usable: {names}")
    print(f"checkpoints ready in {root}", file=sys.stderr)
    return root
