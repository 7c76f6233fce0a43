"""Ray executor: the same tasks on Ray actors, each holding one long-lived `Studio`.

Jobs for the mofa engine go to actors that reserve one GPU each (`num_gpus=1`); warp jobs (and
`auto` jobs on a cluster without GPUs) go to CPU actors. Actors are threaded (two threads) so that a
cancel or progress call reaches an actor while it renders. Inputs and the output folder must be on a
filesystem every node sees at the same path: tasks carry paths, not bytes, and each render is
written to the batch's work folder and renamed into place there, exactly as with local workers.

Ray is an optional extra; without it `RayExecutor` raises one clear InputError.
"""

from __future__ import annotations

import logging
import os
import time
from collections import deque
from pathlib import Path

from ..errors import InputError
from .task import Outcome, ProgressEvent, Task

logger = logging.getLogger(__name__)

PROGRESS_POLL = 1.0  # seconds between progress queries to busy actors


def _import_ray():
    try:
        import ray
    except ImportError:
        raise InputError("--executor ray needs Ray: pip install 'portrait-studio[ray]'") from None
    return ray


class StudioActor:
    """A Ray actor body: one Studio, one render at a time, cancellable and observable from outside."""

    def __init__(self) -> None:
        import threading

        from ..studio import Studio

        self._studio = Studio()
        self._cancel = threading.Event()
        self._progress: tuple[str, str, int, int] | None = None

    def run(self, task: Task) -> Outcome:
        from .task import run_task

        self._cancel.clear()

        def progress(stage: str, done: int, total: int) -> None:
            self._progress = (task.id, stage, int(done), int(total))

        try:
            return run_task(self._studio, task, progress, self._cancel)
        finally:
            self._progress = None

    def cancel(self) -> None:
        self._cancel.set()

    def progress(self) -> tuple[str, str, int, int] | None:
        return self._progress


class RayExecutor:
    """Runs tasks on Ray actors (see the module docstring).

    address: a running cluster ("auto" or "ray://host:10001" or "host:6379"); None starts or joins a
    local Ray. An already initialised Ray (e.g. by a test) is used as it is and left running.
    """

    def __init__(self, workers: int | None = None, address: str | None = None) -> None:
        ray = self._ray = _import_ray()
        self._owns_ray = not ray.is_initialized()
        if self._owns_ray:
            kwargs = {"address": address} if address else {}
            try:
                ray.init(include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING,
                         runtime_env=local_runtime_env(), **kwargs)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                raise InputError(f"cannot connect to the Ray cluster at {str(address)[:100]} "
                                 f"({type(exc).__name__})") from None
        resources = ray.cluster_resources()
        self._gpus = int(resources.get("GPU", 0))
        cpus = int(resources.get("CPU", 1))
        self.capacity = max(1, workers or max(1, cpus // 2))
        self._cpu_actor = ray.remote(num_cpus=1, max_concurrency=2)(StudioActor)
        self._gpu_actor = ray.remote(num_cpus=1, num_gpus=1, max_concurrency=2)(StudioActor)
        self._idle: dict[str, list] = {"cpu": [], "gpu": []}
        self._count = {"cpu": 0, "gpu": 0}
        self._pending: deque[Task] = deque()
        self._running: dict = {}  # ObjectRef -> (task, pool, actor)
        self._events: list[Outcome | ProgressEvent] = []
        self._last_progress = 0.0

    def _pool(self, task: Task) -> str:
        engine = task.options.engine
        return "gpu" if engine == "mofa" or (engine == "auto" and self._gpus > 0) else "cpu"

    def _limit(self, pool: str) -> int:
        return min(self.capacity, self._gpus) if pool == "gpu" else self.capacity

    def submit(self, task: Task) -> None:
        if self._pool(task) == "gpu" and self._gpus == 0:
            self._events.append(Outcome(task.id, "failed", 0.0, error="the mofa engine needs a GPU and the Ray "
                                                                       "cluster has none"))
            return
        self._pending.append(task)
        self._dispatch()

    def _dispatch(self) -> None:
        for task in list(self._pending):
            pool = self._pool(task)
            if self._idle[pool]:
                actor = self._idle[pool].pop()
            elif self._count[pool] < self._limit(pool):
                actor = (self._gpu_actor if pool == "gpu" else self._cpu_actor).remote()
                self._count[pool] += 1
            else:
                continue
            self._pending.remove(task)
            self._running[actor.run.remote(task)] = (task, pool, actor)

    def cancel(self, task_id: str) -> None:
        for task in list(self._pending):
            if task.id == task_id:
                self._pending.remove(task)
                self._events.append(Outcome(task_id, "cancelled", 0.0, error="cancelled"))
                return
        for task, _, actor in self._running.values():
            if task.id == task_id:
                actor.cancel.remote()

    def cancel_all(self) -> None:
        for task in list(self._pending):
            self.cancel(task.id)
        for _, _, actor in self._running.values():
            actor.cancel.remote()

    @property
    def busy(self) -> int:
        return len(self._pending) + len(self._running)

    def poll(self, timeout: float) -> list[Outcome | ProgressEvent]:
        ray = self._ray
        events, self._events = self._events, []
        if self._running:
            ready, _ = ray.wait(list(self._running), num_returns=len(self._running),
                                timeout=0.0 if events else timeout)
            for ref in ready:
                task, pool, actor = self._running.pop(ref)
                try:
                    events.append(ray.get(ref))
                    self._idle[pool].append(actor)
                except ray.exceptions.RayError as exc:
                    events.append(Outcome(task.id, "failed", 0.0, error=f"the Ray actor failed: {type(exc).__name__}"))
                    self._count[pool] -= 1
                    ray.kill(actor, no_restart=True)
                    Path(task.work).unlink(missing_ok=True)
            events.extend(self._progress_events())
        elif timeout and not events:
            time.sleep(min(timeout, 0.1))
        self._dispatch()
        return events

    def _progress_events(self) -> list[ProgressEvent]:
        now = time.monotonic()
        if now - self._last_progress < PROGRESS_POLL or not self._running:
            return []
        self._last_progress = now
        refs = [actor.progress.remote() for _, _, actor in self._running.values()]
        ready, _ = self._ray.wait(refs, num_returns=len(refs), timeout=1.0)
        events = []
        for ref in ready:
            try:
                value = self._ray.get(ref)
            except self._ray.exceptions.RayError:
                continue
            if value is not None:
                events.append(ProgressEvent(*value))
        return events

    def close(self) -> None:
        """Cancel what runs, end every actor, and shut Ray down if this executor started it."""
        ray = self._ray
        self.cancel_all()
        if self._running:
            ray.wait(list(self._running), num_returns=len(self._running), timeout=30)
        actors = [a for _, _, a in self._running.values()] + self._idle["cpu"] + self._idle["gpu"]
        for actor in actors:
            ray.kill(actor, no_restart=True)
        self._running.clear()
        self._idle = {"cpu": [], "gpu": []}
        if self._owns_ray:
            ray.shutdown()

    def __enter__(self) -> RayExecutor:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def local_runtime_env() -> dict:
    """A runtime_env that lets Ray workers on this machine import this checkout's packages."""
    root = str(Path(__file__).resolve().parents[2])
    path = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH", "")) if p)
    return {"env_vars": {"PYTHONPATH": path, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}}
