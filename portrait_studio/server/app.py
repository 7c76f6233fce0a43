"""The job API (FastAPI): submit renders, poll them, download the video, cancel, list.

    POST   /jobs              multipart: image + audio | driving_video | expression, options (JSON) -> 202 {id}
    GET    /jobs/{id}         {id, status, stage, progress, error}
    GET    /jobs/{id}/video   the mp4 (when done)
    DELETE /jobs/{id}         cancel (a running render stops through the Studio's cancel event)
    GET    /jobs              the latest jobs
    GET    /health            liveness and queue counts (no token needed)

The interactive documentation is at /docs (OpenAPI at /openapi.json).
"""

from __future__ import annotations

import json
import secrets
from contextlib import asynccontextmanager
from typing import Annotated, Literal

from fastapi import Depends, FastAPI, File, Form, HTTPException, Path, Query, Request, UploadFile
from fastapi.responses import FileResponse, JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field

from .. import __version__
from ..batch.options_table import is_path, specs
from ..errors import InputError
from .service import JobService, parse_api_options
from .store import JobRow
from .uploads import UploadError, save_upload

MAX_OPTIONS_TEXT = 16_384  # characters of the options JSON
JobId = Annotated[str, Path(description="the id POST /jobs answered")]
_BEARER = HTTPBearer(auto_error=False)  # module level: the annotations below are resolved from globals


class JobCreated(BaseModel):
    """Answer to a submitted job."""

    id: str = Field(description="the job's id, for GET /jobs/{id}")


class JobStatus(BaseModel):
    """A job's state."""

    id: str = Field(description="the job's id")
    status: Literal["queued", "running", "done", "failed", "cancelled"] = Field(
        description="queued (waiting for a worker), running, done (video ready), failed, or cancelled")
    stage: str = Field(description="the running render's stage: face, driver, render, denoise or mux")
    progress: float = Field(description="fraction of the job done, 0..1")
    error: str = Field(description="why it failed, or a note on a retry after a server restart")


class Health(BaseModel):
    """Server state."""

    status: Literal["ok", "error"] = Field(description="ok when jobs can run")
    jobs: dict[str, int] = Field(description="number of jobs per status")
    workers: int = Field(description="parallel renders")
    error: str = Field(description="why jobs cannot run (status error)")


def _options_help() -> str:
    names = [f"`{n}`" for n in specs() if not is_path(n)]
    return ("A JSON object of render options by their long names with underscores, e.g. "
            '`{"engine": "warp", "head_motion": 0.5}`. Accepted: ' + ", ".join(names) + ". File options "
            "are uploads (`driving_video`, `expression`); other file paths are not accepted.")


def _status(row: JobRow) -> JobStatus:
    return JobStatus(id=row.id, status=row.status, stage=row.stage, progress=row.progress, error=row.error)


def create_app(service: JobService, token: str | None = None, max_upload_bytes: int = 200 * 2**20) -> FastAPI:
    """The FastAPI app over a JobService (started and stopped with the app)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        service.start()
        try:
            yield
        finally:
            service.stop()

    app = FastAPI(title="Portrait Studio job API", version=__version__, lifespan=lifespan,
                  description="Render talking-portrait videos as jobs. Submit a portrait and a driving "
                              "input, poll the job, download the mp4. With a token configured, send "
                              "`Authorization: Bearer <token>`.")
    def authorize(credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_BEARER)]) -> None:
        if token is None:
            return
        if credentials is None or not secrets.compare_digest(credentials.credentials.encode(), token.encode()):
            raise HTTPException(401, "a valid bearer token is required", headers={"WWW-Authenticate": "Bearer"})

    def job_or_404(job_id: str) -> JobRow:
        row = service.store.get(job_id) if len(job_id) <= 64 else None
        if row is None:
            raise HTTPException(404, "no such job")
        return row

    @app.middleware("http")
    async def limit_uploads(request: Request, call_next):
        """Refuse an oversized submission from its Content-Length, before its body is read."""
        if request.method == "POST" and request.url.path == "/jobs":
            length = request.headers.get("content-length", "")
            if not length.isdigit():
                return JSONResponse({"detail": "send the request with a Content-Length header"}, status_code=411)
            if int(length) > max_upload_bytes + 2**20:
                return JSONResponse({"detail": f"the request is over the {max_upload_bytes / 2**20:g} MiB upload "
                                               "limit"}, status_code=413)
        return await call_next(request)

    @app.exception_handler(UploadError)
    async def upload_error(request: Request, exc: UploadError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=exc.status)

    @app.post("/jobs", status_code=202, response_model=JobCreated, dependencies=[Depends(authorize)],
              summary="Submit a render job", responses={401: {}, 411: {}, 413: {}, 415: {}, 422: {}})
    def submit(
        image: Annotated[UploadFile, File(description="the portrait photo: PNG, JPEG, WebP, BMP or TIFF")],
        audio: Annotated[UploadFile | None, File(description="speech (WAV, MP3, Ogg, FLAC, M4A, ...); muxed "
                                                             "into the video")] = None,
        driving_video: Annotated[UploadFile | None, File(description="a video whose face puppets the "
                                                                     "portrait")] = None,
        expression: Annotated[UploadFile | None, File(description="expression keyframes (JSON or YAML); alone, "
                                                                  "or layered over audio or a driving video")] = None,
        options: Annotated[str, Form(description=_options_help())] = "{}",
    ) -> JobCreated:
        if len(options) > MAX_OPTIONS_TEXT:
            raise HTTPException(422, f"options is longer than {MAX_OPTIONS_TEXT} characters")
        try:
            values = parse_api_options(json.loads(options or "{}"))
        except (ValueError, RecursionError) as exc:
            message = str(exc) if isinstance(exc, InputError) else "options is not valid JSON"
            raise HTTPException(422, message) from None
        drivers = {"audio": audio, "driving_video": driving_video, "expression": expression}
        if not any(v is not None for v in drivers.values()):
            raise HTTPException(422, "send audio, driving_video or expression with the image")
        job_id, folder = service.new_job_folder()
        inputs: dict[str, str] = {}
        try:
            for kind, upload in (("image", image), *drivers.items()):
                if upload is not None:
                    saved = save_upload(upload, kind, folder, max_upload_bytes)
                    inputs[kind] = saved.path.name
        except BaseException:
            service.discard_job_folder(folder)
            raise
        service.submit(job_id, values, inputs)
        return JobCreated(id=job_id)

    @app.get("/jobs/{job_id}", response_model=JobStatus, dependencies=[Depends(authorize)], summary="A job's state")
    def get_job(job_id: JobId) -> JobStatus:
        return _status(job_or_404(job_id))

    @app.get("/jobs/{job_id}/video", dependencies=[Depends(authorize)], summary="Download the video",
             response_class=FileResponse, responses={200: {"content": {"video/mp4": {}}}, 404: {}, 409: {}})
    def get_video(job_id: JobId) -> FileResponse:
        row = job_or_404(job_id)
        path = service.video_path(row.id)
        if row.status != "done" or not path.is_file():
            raise HTTPException(409, f"the job is {row.status}; its video is not ready")
        return FileResponse(path, media_type="video/mp4", filename=f"{row.id}.mp4")

    @app.delete("/jobs/{job_id}", status_code=202, response_model=JobStatus, dependencies=[Depends(authorize)],
                summary="Cancel a job", responses={404: {}, 409: {}})
    def cancel_job(job_id: JobId) -> JobStatus:
        row = job_or_404(job_id)
        if row.status in ("done", "failed", "cancelled"):
            raise HTTPException(409, f"the job has already ended ({row.status})")
        row = service.cancel(job_id) or row
        return _status(row)

    @app.get("/jobs", response_model=list[JobStatus], dependencies=[Depends(authorize)], summary="Latest jobs")
    def list_jobs(limit: Annotated[int, Query(description="how many jobs, newest first (1..1000)")] = 100,
                  offset: Annotated[int, Query(description="how many of the newest to skip")] = 0) -> list[JobStatus]:
        if not (1 <= limit <= 1000 and offset >= 0):
            raise HTTPException(422, "limit must be 1..1000 and offset at least 0")
        return [_status(r) for r in service.store.list(limit, offset)]

    @app.get("/health", response_model=Health, summary="Liveness and queue counts")
    def health() -> Health:
        return Health(status="error" if service.error else "ok", jobs=service.store.counts(),
                      workers=service.workers, error=service.error)

    return app
