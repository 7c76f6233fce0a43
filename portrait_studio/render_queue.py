"""One render at a time per device: a first-come, first-served queue in front of one long-lived `Studio`.

Callers that share a device (studio sessions, job workers) take a `Ticket`, then wait for their `turn`;
while they wait they learn their place (1 = next) and how many renders are ahead of them (the one
running included). The queue builds its `Studio` on first use and
hands the same one to every turn, so models load once per process.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from .errors import RenderCancelled


@dataclass(eq=False)
class Ticket:
    """A place in the queue."""

    owner: str  # who holds it (a session id), for display and logs
    number: int  # order of arrival
    since: float = field(default_factory=time.monotonic)  # when it was taken


class RenderQueue:
    """FIFO of tickets in front of one shared object (the `Studio`) built by `factory` on first use."""

    def __init__(self, factory: Callable[[], Any]) -> None:
        self._factory = factory
        self._studio: Any = None
        self._cond = threading.Condition()
        self._waiting: list[Ticket] = []  # in order; the head runs when nobody holds the turn
        self._running: Ticket | None = None
        self._numbers = itertools.count(1)

    def ticket(self, owner: str) -> Ticket:
        """Join the end of the queue."""
        with self._cond:
            t = Ticket(owner, next(self._numbers))
            self._waiting.append(t)
            self._cond.notify_all()
            return t

    def place(self, ticket: Ticket) -> int:
        """0 while `ticket` holds the turn, else its place among the waiting (1 = next), or -1 when gone."""
        with self._cond:
            if self._running is ticket:
                return 0
            try:
                return self._waiting.index(ticket) + 1
            except ValueError:
                return -1

    @property
    def busy(self) -> bool:
        """Whether a render holds the device now."""
        with self._cond:
            return self._running is not None

    def waiting(self) -> list[str]:
        """Owners of the waiting tickets, in order."""
        with self._cond:
            return [t.owner for t in self._waiting]

    @contextmanager
    def turn(self, ticket: Ticket, cancel: threading.Event | None = None,
             on_wait: Callable[[int, int], None] | None = None, poll: float = 0.25) -> Iterator[Any]:
        """Wait until `ticket` is first and the device is free, then hold it and yield the Studio.

        on_wait(place, ahead) is called whenever they change while waiting (place 1 = next; ahead = renders
        before this one, the running one included); `cancel` is checked every `poll` seconds, and when
        set the ticket leaves the queue and RenderCancelled is raised.
        """
        last = None
        with self._cond:
            while not (self._running is None and self._waiting and self._waiting[0] is ticket):
                if ticket not in self._waiting:
                    raise RuntimeError("this ticket already had its turn")
                if cancel is not None and cancel.is_set():
                    self._waiting.remove(ticket)
                    self._cond.notify_all()
                    raise RenderCancelled("cancelled while waiting in the render queue")
                place = self._waiting.index(ticket) + 1
                state = (place, place - 1 + (self._running is not None))
                if state != last and on_wait is not None:
                    last = state
                    self._cond.release()  # the callback may draw on a page: never under the lock
                    try:
                        on_wait(*state)
                    finally:
                        self._cond.acquire()
                    continue
                self._cond.wait(poll)
            self._waiting.pop(0)
            self._running = ticket
        try:
            yield self.studio
        finally:
            with self._cond:
                self._running = None
                self._cond.notify_all()

    @property
    def studio(self) -> Any:
        """The shared Studio, built on first use (callers that only prepare portraits, such as live mode,
        share its models without taking a turn)."""
        with self._cond:
            if self._studio is None:
                self._studio = self._factory()
            return self._studio

    def close(self) -> None:
        """Close the shared Studio (if it has `close`)."""
        with self._cond:
            studio, self._studio = self._studio, None
        if studio is not None and hasattr(studio, "close"):
            studio.close()


class RenderJob:
    """One render run in a background thread through a `RenderQueue`, watched from another thread.

    The watcher reads `place` (None before queuing, >= 1 while waiting, 1 = next; 0 while rendering) and
    `ahead` (renders before it), `stages`
    ({stage: (done, total)} from the Studio's progress callback), and, once `done`, `result`, `error`
    (a one-line message) or `cancelled`. `cancel` stops it while waiting or within one frame.
    """

    def __init__(self, queue: RenderQueue, owner: str, render: Callable[..., Any]) -> None:
        """render(studio, progress, cancel) -> result: the call to make when the turn comes."""
        self.queue, self.owner, self._render = queue, owner, render
        self.cancel = threading.Event()
        self.place: int | None = None
        self.ahead = 0  # renders before this one while it waits (the running one included)
        self.waited = 0  # most renders seen ahead while waiting
        self.stages: dict[str, tuple[int, int]] = {}
        self.result: Any = None
        self.error: str | None = None
        self.cancelled = False
        self.started = self.finished = None  # monotonic seconds (rendering began / ended)
        self._thread = threading.Thread(target=self._run, name=f"render-{owner}", daemon=True)

    def start(self) -> "RenderJob":
        self._thread.start()
        return self

    @property
    def done(self) -> bool:
        return self.finished is not None

    def wait(self, timeout: float | None = None) -> bool:
        """Block up to `timeout` seconds; whether the job is done."""
        self._thread.join(timeout)
        return self.done

    def _waiting(self, place: int, ahead: int) -> None:
        self.place, self.ahead = place, ahead
        self.waited = max(self.waited, ahead)

    def _progress(self, stage: str, done: int, total: int) -> None:
        self.stages[stage] = (int(done), int(total))

    def _run(self) -> None:
        import logging

        from .errors import InputError

        try:
            ticket = self.queue.ticket(self.owner)
            with self.queue.turn(ticket, self.cancel, on_wait=self._waiting) as studio:
                self.place, self.started = 0, time.monotonic()
                self.result = self._render(studio, self._progress, self.cancel)
        except RenderCancelled:
            self.cancelled = True
        except InputError as exc:
            self.error = " ".join(str(exc).split())[:400]
        except Exception as exc:  # noqa: BLE001 - reported to the page as one line, logged in full
            logging.getLogger(__name__).exception("render failed")
            self.error = f"the render failed ({type(exc).__name__}: {' '.join(str(exc).split())[:200]})"
        finally:
            self.finished = time.monotonic()
            if self.started is None:
                self.started = self.finished
