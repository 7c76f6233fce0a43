"""Local executor: N worker processes, each holding one long-lived `Studio` (models load once per worker).

Processes are started with the `spawn` method (forking a process that holds torch is unsafe). The
parent hands each idle worker one task at a time over a pipe and reads progress and outcomes back;
a worker that dies (out of memory, a crash in native code) fails only the task it held and is
replaced. Workers ignore Ctrl-C, SIGTERM and SIGHUP (the parent cancels their renders instead)
and die with the parent (Linux `PR_SET_PDEATHSIG`), so a killed batch leaves no orphan rendering behind it.
"""

from __future__ import annotations

import ctypes
import logging
import multiprocessing as mp
import os
import signal
import time
from collections import deque
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait

from .task import Outcome, ProgressEvent, Task

logger = logging.getLogger(__name__)

Event = Outcome | ProgressEvent
PROGRESS_INTERVAL = 0.25  # seconds between progress messages of one worker (stage changes always go)


def default_workers() -> int:
    """One worker per GPU, else half the CPU cores, at least 1."""
    gpus = _gpu_count()
    return gpus if gpus > 0 else max(1, (os.cpu_count() or 2) // 2)


class _SeqCancel:
    """A cancel flag for one task: set when the parent writes that task's sequence number."""

    def __init__(self, shared, seq: int) -> None:
        self._shared, self._seq = shared, seq

    def is_set(self) -> bool:
        return self._shared.value == self._seq

    def wait(self, timeout: float | None = None) -> bool:
        end = None if timeout is None else time.monotonic() + timeout
        while not self.is_set():
            if end is not None and time.monotonic() >= end:
                return False
            time.sleep(0.05)
        return True


def _die_with_parent() -> None:
    if os.uname().sysname == "Linux":
        try:
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except OSError:
            pass


def _worker_main(conn: Connection, cancel_seq, gpu: int | None, parent: int) -> None:
    """Worker process: one Studio, tasks in, progress and outcomes out, until told to stop."""
    _die_with_parent()
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):  # the parent decides; it cancels renders
        signal.signal(sig, signal.SIG_IGN)
    if os.getppid() != parent:  # the parent died before PR_SET_PDEATHSIG took effect
        return
    if gpu is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = str(gpu)
    from ..studio import Studio
    from .task import run_task

    with Studio() as studio:
        while True:
            msg = conn.recv()
            if msg is None:
                return
            seq, task = msg
            def progress(stage: str, done: int, total: int, _seq=seq, _id=task.id, last=[0.0, ""]) -> None:  # noqa: B006 - per-task state
                now = time.monotonic()
                if stage != last[1] or done >= total or now - last[0] >= PROGRESS_INTERVAL:
                    last[0], last[1] = now, stage
                    conn.send(("progress", _seq, ProgressEvent(_id, stage, int(done), int(total))))

            conn.send(("done", seq, run_task(studio, task, progress, _SeqCancel(cancel_seq, seq))))


@dataclass
class _Worker:
    process: mp.process.BaseProcess
    conn: Connection
    cancel_seq: object  # multiprocessing.Value("q"): the sequence number of the task to cancel
    gpu: int | None
    running: tuple[int, Task] | None = None


class LocalExecutor:
    """Runs tasks on `workers` local processes; see the module docstring."""

    def __init__(self, workers: int | None = None, gpus: int | None = None) -> None:
        self.capacity = max(1, workers or default_workers())
        self._ctx = mp.get_context("spawn")
        self._gpus = gpus
        self._workers: list[_Worker] = []
        self._pending: deque[tuple[int, Task]] = deque()
        self._events: list[Event] = []
        self._seq = 0

    def _spawn(self, slot: int) -> _Worker:
        parent_conn, child_conn = self._ctx.Pipe()
        cancel_seq = self._ctx.Value("q", -1, lock=False)
        if self._gpus is None:
            self._gpus = _gpu_count()  # imports torch: only once there is work
        used = {w.gpu for w in self._workers}
        gpu = next((g for g in range(self._gpus) if g not in used), slot % self._gpus) if self._gpus else None
        process = self._ctx.Process(target=_worker_main, args=(child_conn, cancel_seq, gpu, os.getpid()),
                                    name=f"portrait-worker-{slot}", daemon=True)
        process.start()
        child_conn.close()
        return _Worker(process, parent_conn, cancel_seq, gpu)

    def submit(self, task: Task) -> None:
        """Queue a task; it starts as soon as a worker is free."""
        self._seq += 1
        self._pending.append((self._seq, task))
        self._dispatch()

    def cancel(self, task_id: str) -> None:
        """Cancel a queued task (reported at once) or stop a running one (reported when it stops)."""
        for item in list(self._pending):
            if item[1].id == task_id:
                self._pending.remove(item)
                self._events.append(Outcome(task_id, "cancelled", 0.0, error="cancelled"))
                return
        for w in self._workers:
            if w.running is not None and w.running[1].id == task_id:
                w.cancel_seq.value = w.running[0]

    def cancel_all(self) -> None:
        for _, task in list(self._pending):
            self.cancel(task.id)
        for w in self._workers:
            if w.running is not None:
                w.cancel_seq.value = w.running[0]

    @property
    def busy(self) -> int:
        """Tasks queued or running."""
        return len(self._pending) + sum(w.running is not None for w in self._workers)

    def _dispatch(self) -> None:
        while self._pending:
            idle = next((w for w in self._workers if w.running is None and w.process.is_alive()), None)
            if idle is None and len(self._workers) < self.capacity:
                idle = self._spawn(len(self._workers))
                self._workers.append(idle)
            if idle is None:
                return
            item = self._pending.popleft()
            idle.running = item
            idle.conn.send(item)

    def poll(self, timeout: float) -> list[Event]:
        """Events (progress, outcomes) that arrived within `timeout` seconds."""
        events, self._events = self._events, []
        if events:
            timeout = 0.0
        by_handle = {}
        for w in self._workers:
            by_handle[w.conn] = w
            by_handle[w.process.sentinel] = w
        for handle in wait(list(by_handle), timeout=timeout):
            w = by_handle[handle]
            if handle is w.conn:
                events.extend(self._drain(w))
            elif not w.process.is_alive():
                events.extend(self._drain(w))
                events.extend(self._replace(w))
        self._dispatch()
        return events

    def _drain(self, w: _Worker) -> list[Event]:
        events: list[Event] = []
        try:
            while w.conn.poll():
                kind, seq, payload = w.conn.recv()
                if w.running is None or w.running[0] != seq:
                    continue
                if kind == "done":
                    w.running = None
                events.append(payload)
        except (EOFError, OSError):
            pass
        return events

    def _replace(self, w: _Worker) -> list[Event]:
        events: list[Event] = []
        if w.running is not None:
            code = w.process.exitcode
            events.append(Outcome(w.running[1].id, "failed", 0.0,
                                  error=f"the worker process died (exit code {code}) while rendering this job"))
            w.running[1].work.unlink(missing_ok=True)
        w.conn.close()
        self._workers.remove(w)  # _dispatch starts a fresh one when there is work
        return events

    def close(self, timeout: float = 10.0) -> None:
        """Stop every worker (running renders are cancelled first) and wait for them."""
        self.cancel_all()
        self._pending.clear()
        for w in self._workers:
            try:
                w.conn.send(None)
            except (OSError, BrokenPipeError):
                pass
        deadline = time.monotonic() + timeout
        for w in self._workers:
            w.process.join(max(0.1, deadline - time.monotonic()))
            if w.process.is_alive():
                w.process.kill()
                w.process.join(5)
            w.conn.close()
        self._workers = []

    def __enter__(self) -> LocalExecutor:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _gpu_count() -> int:
    try:
        import torch

        return torch.cuda.device_count() if torch.cuda.is_available() else 0
    except Exception:  # noqa: BLE001 - a broken CUDA set-up means no GPU workers
        return 0
