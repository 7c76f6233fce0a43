"""Job files: YAML, CSV or JSONL, one render per row; parsed and validated as a whole before any runs.

A row holds `image`, at least one driver input (`audio`, `driving_video`, `expression`,
`landmarks`), `output` (a file name under the batch's output folder) and any render option by its
long name (`engine`, `fps`, `size`, `seed`, `head_motion` or `head-motion`, ...). YAML may also be
`{defaults: {...}, jobs: [...]}`: each job starts from the defaults. Relative input paths resolve
against the job file's folder; outputs (and the `save_landmarks`/`debug_dir` side outputs) resolve
against the output folder and must stay inside it unless `allow_outside`.

Every problem in the file is collected and reported with its row number (1-based, in file order).
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .. import media
from ..errors import InputError
from ..limits import LIMITS
from ..outputs import same_file
from ..options import RenderOptions, options_from_values
from .options_table import brief, canonical_key, is_path

MAX_JOB_FILE_BYTES = 16 * 1024 * 1024  # largest job file read
MAX_JOBS = 100_000  # most jobs in one file
MAX_TEXT = 4096  # longest text value of any key (characters)
MAX_REPORTED = 10  # problems spelled out in the one error line (the count is always given)
STATE_DIR = ".portrait-batch"  # the batch's own folder under --out (manifest, work files, lock)
INPUT_KEYS = ("image", "audio", "output")  # job keys that are not render options
DRIVER_KEYS = ("audio", "driving_video", "expression", "landmarks")  # at least one drives the portrait
OUTPUT_OPTIONS = {"save_landmarks": (".npz",), "debug_dir": None}  # side outputs: under --out like `output`


class JobFileError(InputError):
    """The job file is unreadable or some rows are invalid; `problems` lists (row, message)."""

    def __init__(self, path: Path, problems: list[tuple[int, str]]) -> None:
        self.problems = problems
        shown = "; ".join(f"row {row}: {msg}" if row else msg for row, msg in problems[:MAX_REPORTED])
        more = f"; and {len(problems) - MAX_REPORTED} more" if len(problems) > MAX_REPORTED else ""
        count = f"{len(problems)} problem{'s' if len(problems) != 1 else ''}"
        super().__init__(f"job file {path.name} is invalid ({count}): {shown}{more}")


@dataclass(frozen=True)
class Job:
    """One validated render of a batch."""

    row: int  # 1-based position in the job file
    image: Path  # portrait photo (absolute)
    audio: Path | None  # speech file (absolute) or None
    output: Path  # final output path (absolute, resolved)
    name: str  # the output as written in the job file (for display and the manifest)
    options: RenderOptions  # validated render options (paths absolute)


class _AliasError(yaml.YAMLError):
    problem = "YAML aliases (*name) are not allowed"


class NoAliasLoader(yaml.SafeLoader):
    """Safe YAML without anchors/aliases (an alias bomb expands a few hundred bytes into gigabytes)."""

    def compose_node(self, parent, index):  # type: ignore[override]
        if self.check_event(yaml.AliasEvent):
            raise _AliasError()
        return super().compose_node(parent, index)


def read_rows(path: Path) -> tuple[list[tuple[int, Any]], dict[str, Any]]:
    """The raw rows of a job file [(row, mapping)] and its YAML defaults; raises JobFileError."""
    if not path.is_file():
        raise InputError(f"job file not found: {path}")
    if path.stat().st_size > MAX_JOB_FILE_BYTES:
        raise InputError(f"job file {path.name} is over the {MAX_JOB_FILE_BYTES // 2**20} MiB limit")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"job file {path.name} is not readable UTF-8 text ({type(exc).__name__})") from None
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return _csv_rows(path, text), {}
    if suffix in (".jsonl", ".ndjson"):
        return _jsonl_rows(path, text), {}
    if suffix in (".yaml", ".yml", ".json"):
        return _yaml_rows(path, text)
    raise InputError(f"job file {path.name}: unknown format; use .yaml, .yml, .json, .csv or .jsonl")


def _csv_rows(path: Path, text: str) -> list[tuple[int, Any]]:
    reader = csv.DictReader(io.StringIO(text))
    if not reader.fieldnames:
        raise JobFileError(path, [(0, "the CSV has no header row")])
    rows = []
    try:
        for n, row in enumerate(reader, start=1):
            if None in row:
                rows.append((n, ValueError("more cells than header columns")))
                continue
            rows.append((n, {k: v for k, v in row.items() if v is not None and v.strip() != ""}))
            if n > MAX_JOBS:
                break
    except csv.Error as exc:
        raise JobFileError(path, [(0, f"not valid CSV ({exc})")]) from None
    return rows


def _jsonl_rows(path: Path, text: str) -> list[tuple[int, Any]]:
    rows = []
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            rows.append((len(rows) + 1, json.loads(line)))
        except (json.JSONDecodeError, RecursionError) as exc:
            rows.append((len(rows) + 1, ValueError(f"not valid JSON ({type(exc).__name__})")))
        if len(rows) > MAX_JOBS:
            break
    return rows


def _yaml_rows(path: Path, text: str) -> tuple[list[tuple[int, Any]], dict[str, Any]]:
    try:
        doc = yaml.load(text, Loader=NoAliasLoader)  # a SafeLoader subclass
    except (yaml.YAMLError, RecursionError) as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise JobFileError(path, [(0, f"not valid YAML{where} ({_yaml_problem(exc)})")]) from None
    defaults: Any = {}
    if isinstance(doc, dict):
        unknown = set(doc) - {"defaults", "jobs"}
        if unknown or "jobs" not in doc:
            raise JobFileError(path, [(0, "a YAML mapping must be {defaults: {...}, jobs: [...]}")])
        defaults, doc = doc.get("defaults") or {}, doc["jobs"]
        if not isinstance(defaults, dict):
            raise JobFileError(path, [(0, "defaults must be a mapping of job keys")])
    if not isinstance(doc, list):
        raise JobFileError(path, [(0, "expected a list of jobs (or {defaults: ..., jobs: [...]})")])
    return list(enumerate(doc[: MAX_JOBS + 1], start=1)), defaults


def _yaml_problem(exc: BaseException) -> str:
    return str(getattr(exc, "problem", None) or type(exc).__name__)[:80]


def load_jobs(path: str | Path, out_dir: str | Path, allow_outside: bool = False) -> list[Job]:
    """Parse and validate every row of a job file; raise JobFileError listing every problem."""
    path = Path(path)
    out_root = Path(out_dir).expanduser().resolve()
    rows, defaults = read_rows(path)
    problems: list[tuple[int, str]] = []
    if len(rows) > MAX_JOBS:
        raise JobFileError(path, [(0, f"more than {MAX_JOBS} jobs")])
    if not rows:
        raise JobFileError(path, [(0, "the file holds no jobs")])
    base = path.resolve().parent
    jobs: list[Job] = []
    seen: dict[Path, int] = {}
    for row, raw in rows:
        try:
            if isinstance(raw, Exception):
                raise InputError(str(raw))
            if not isinstance(raw, dict):
                raise InputError(f"a job must be a mapping of keys to values, got a {type(raw).__name__}")
            job = parse_job(row, {**defaults, **raw}, base, out_root, allow_outside)
        except InputError as exc:
            problems.append((row, str(exc)))
            continue
        clash = next((t for t in written_files(job) if t in seen), None)
        if clash is not None:
            what = "output " + brief(job.name) if clash == job.output else f"side output {brief(clash.name)}"
            problems.append((row, f"{what} is also written by row {seen[clash]}"))
            continue
        seen.update((t, row) for t in written_files(job))
        jobs.append(job)
    if problems:
        raise JobFileError(path, problems)
    return jobs


def written_files(job: Job) -> list[Path]:
    """Every file a job writes: its output, the landmark track and the debug videos when asked for."""
    files = [job.output]
    if job.options.save_landmarks is not None:
        files.append(Path(job.options.save_landmarks))
    if job.options.debug_dir is not None:
        files += [Path(job.options.debug_dir) / "landmarks.mp4", Path(job.options.debug_dir) / "flow.mp4"]
    return files


def parse_job(row: int, raw: dict[str, Any], base: Path, out_root: Path, allow_outside: bool) -> Job:
    """One row -> Job; raises InputError with the first problem of the row."""
    values: dict[str, Any] = {}
    inputs: dict[str, Any] = {}
    for key, value in raw.items():
        name = key.strip().replace("-", "_") if isinstance(key, str) else key
        if name in INPUT_KEYS:
            inputs[name] = value
            continue
        option = canonical_key(key)
        if option is None:
            raise InputError(f"unknown key {brief(key)} (keys: image, audio, output and the render options)")
        if value is None or (isinstance(value, str) and not value.strip()):
            continue
        if isinstance(value, str) and len(value) > MAX_TEXT:
            raise InputError(f"{option}: text longer than {MAX_TEXT} characters")
        if option == "transcript":
            values[option] = _transcript(value, base)
        elif option in OUTPUT_OPTIONS:
            values[option] = contained_output(out_root, value, allow_outside, option, OUTPUT_OPTIONS[option])
        elif is_path(option):
            values[option] = _input_path(value, base, option)
        else:
            values[option] = value
    for key in ("image", "output"):
        if inputs.get(key) in (None, ""):
            raise InputError(f"missing {key!r}")
    image = _input_file(inputs["image"], base, "image")
    audio = _input_file(inputs["audio"], base, "audio") if inputs.get("audio") not in (None, "") else None
    if audio is None and not any(values.get(k) is not None for k in DRIVER_KEYS[1:]):
        raise InputError("nothing drives the portrait: give audio, driving_video, expression or landmarks")
    output = contained_output(out_root, inputs["output"], allow_outside, "output", media.VIDEO_EXTENSIONS)
    options = options_from_values(values).validate()
    sources = [image, audio, options.driving_video, options.expression, options.landmarks, options.trajectory,
               options.motion_brush, options.mofa.landmark_mask]
    for target in (output, options.save_landmarks):
        if target is not None and any(src is not None and same_file(target, src) for src in sources):
            raise InputError(f"output {brief(str(target.name))} is one of the job's inputs")
    return Job(row=row, image=image, audio=audio, output=output, name=str(inputs["output"]), options=options)


def _input_file(value: object, base: Path, key: str) -> Path:
    if not isinstance(value, str) or len(value) > 4096:
        raise InputError(f"{key} must be a file path")
    path = Path(value).expanduser()
    path = path if path.is_absolute() else base / path
    if not path.is_file():
        raise InputError(f"{key} file not found: {brief(value, 80)}")
    return path.resolve()


def _input_path(value: object, base: Path, key: str) -> Path:
    """An input file/folder option: relative paths resolve against the job file's folder."""
    if not isinstance(value, str):
        raise InputError(f"{key} must be a path")
    path = Path(value.strip()).expanduser()
    return path if path.is_absolute() else base / path


def _transcript(value: object, base: Path) -> str | None:
    if not isinstance(value, str) or len(value) > 4096:
        raise InputError("transcript must be text (up to 4096 characters) or a .txt file")
    if value.strip().lower().endswith(".txt"):
        path = Path(value.strip()).expanduser()
        path = path if path.is_absolute() else base / path
        try:
            if path.stat().st_size > 4 * LIMITS.transcript_chars.value:  # UTF-8: at most 4 bytes a character
                raise InputError(f"transcript file {brief(value, 80)} is over the {LIMITS.transcript_chars} limit")
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            raise InputError(f"transcript file not readable: {brief(value, 80)}") from None
        if len(text) > LIMITS.transcript_chars.value:
            raise InputError(f"transcript file {brief(value, 80)} is over the {LIMITS.transcript_chars} limit")
        return text.strip() or None
    return value.strip() or None


def contained_output(out_root: Path, value: object, allow_outside: bool, key: str,
                     extensions: tuple[str, ...] | None) -> Path:
    """Resolve an output name under `out_root`; refuse escapes (absolute, `..`, symlinks) unless allowed."""
    if not isinstance(value, str) or not value.strip() or len(value) > 1024:
        raise InputError(f"{key} must be a file name under --out")
    rel = Path(value.strip())
    if not allow_outside and (rel.is_absolute() or ".." in rel.parts):
        raise InputError(f"{key} {brief(value)} leaves --out (absolute paths and '..' need --allow-outside)")
    target = (out_root / rel.expanduser()).resolve()
    inside = target.is_relative_to(out_root)
    if not allow_outside and not inside:
        raise InputError(f"{key} {brief(value)} leaves --out through a symbolic link (needs --allow-outside)")
    if inside and STATE_DIR in target.relative_to(out_root).parts[:1]:
        raise InputError(f"{key} {brief(value)} is inside the batch's own {STATE_DIR} folder")
    if target == out_root:
        raise InputError(f"{key} {brief(value)} is the output folder itself")
    if extensions is not None and target.suffix.lower() not in extensions:
        raise InputError(f"{key} {brief(value)} must end with {', '.join(extensions)}")
    if target.is_dir() and extensions is not None:
        raise InputError(f"{key} {brief(value)} is a directory")
    return target


