"""`python -m portrait_studio serve --data DIR`: run the job API under uvicorn.

Binding anything but a loopback address needs a bearer token (`--token` or
`$PORTRAIT_STUDIO_TOKEN`); with a token set, every endpoint but /health requires
`Authorization: Bearer <token>`.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
from pathlib import Path

from ..errors import InputError

TOKEN_ENV = "PORTRAIT_STUDIO_TOKEN"


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The `serve` subcommand's arguments."""
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1; others need a token)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    p.add_argument("--data", required=True, type=Path, help="folder for the job database, uploads and videos")
    p.add_argument("--token", help=f"bearer token clients must send (default ${TOKEN_ENV})")
    p.add_argument("--workers", type=int, default=1, help="parallel renders (default 1)")
    p.add_argument("--executor", default="local", choices=["local", "ray"], help="local worker processes or Ray actors")
    p.add_argument("--address", help="Ray cluster address (with --executor ray)")
    p.add_argument("--max-upload-mb", type=float, default=200.0, help="largest accepted upload in MiB (default 200)")


def is_loopback(host: str) -> bool:
    """True for localhost and loopback addresses (127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def run(args: argparse.Namespace) -> int:
    """Handle `serve`: validate, build the service and the app, run uvicorn until stopped."""
    try:
        import uvicorn

        from .app import create_app
    except ImportError:
        raise InputError("serve needs FastAPI and uvicorn: pip install 'portrait-studio[serve]'") from None
    from .service import JobService

    token = args.token or os.environ.get(TOKEN_ENV) or None
    if not is_loopback(args.host) and not token:
        raise InputError(f"binding {args.host[:100]} (not loopback) needs a bearer token: --token or ${TOKEN_ENV}")
    if not 1 <= args.port <= 65535:
        raise InputError(f"--port must be between 1 and 65535, got {args.port}")
    if not 1 <= args.workers <= 64:
        raise InputError(f"--workers must be between 1 and 64, got {args.workers}")
    if not 0 < args.max_upload_mb <= 100_000:
        raise InputError(f"--max-upload-mb must be positive, got {args.max_upload_mb}")
    if args.address and args.executor != "ray":
        raise InputError("--address needs --executor ray")
    service = JobService(args.data, workers=args.workers, executor=args.executor, address=args.address)
    app = create_app(service, token=token, max_upload_bytes=int(args.max_upload_mb * 2**20))
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0
