"""The render queue: one render at a time, first come first served, places reported, cancel while waiting."""

from __future__ import annotations

import threading
import time

import pytest

from portrait_studio.errors import InputError, RenderCancelled
from portrait_studio.render_queue import RenderJob, RenderQueue


class FakeStudio:
    """Records overlapping renders."""

    def __init__(self) -> None:
        self.active = 0
        self.overlaps = 0
        self.order: list[str] = []
        self.closed = False

    def render(self, name: str, seconds: float, cancel: threading.Event | None = None) -> str:
        self.active += 1
        self.overlaps += self.active > 1
        self.order.append(name)
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            if cancel is not None and cancel.is_set():
                self.active -= 1
                raise RenderCancelled("cancelled")
            time.sleep(0.01)
        self.active -= 1
        return name

    def close(self) -> None:
        self.closed = True


def test_one_at_a_time_in_arrival_order_with_places():
    built = []
    queue = RenderQueue(lambda: built.append(FakeStudio()) or built[-1])
    jobs = [RenderJob(queue, f"s{i}", lambda studio, progress, cancel, i=i: studio.render(f"s{i}", 0.3))
            for i in range(3)]
    jobs[0].start()
    while jobs[0].place != 0:
        time.sleep(0.01)
    jobs[1].start()
    time.sleep(0.05)
    jobs[2].start()
    time.sleep(0.1)
    assert (jobs[1].place, jobs[1].ahead) == (1, 1) and (jobs[2].place, jobs[2].ahead) == (2, 2)
    assert queue.busy and queue.waiting() == ["s1", "s2"]
    for job in jobs:
        assert job.wait(10) and job.error is None
    (studio,) = built  # built once, shared
    assert studio.order == ["s0", "s1", "s2"] and studio.overlaps == 0
    assert [j.result for j in jobs] == ["s0", "s1", "s2"] and [j.waited for j in jobs] == [0, 1, 2]
    queue.close()
    assert studio.closed


def test_cancel_while_waiting_leaves_the_queue_and_while_running_stops():
    queue = RenderQueue(FakeStudio)
    first = RenderJob(queue, "a", lambda studio, progress, cancel: studio.render("a", 5.0, cancel)).start()
    while first.place != 0:
        time.sleep(0.01)
    second = RenderJob(queue, "b", lambda studio, progress, cancel: studio.render("b", 0.1)).start()
    while second.place != 1:
        time.sleep(0.01)
    second.cancel.set()
    assert second.wait(5) and second.cancelled and queue.waiting() == []
    first.cancel.set()
    assert first.wait(5) and first.cancelled and not queue.busy


def test_errors_come_back_as_one_line():
    queue = RenderQueue(FakeStudio)

    def bad(studio, progress, cancel):
        raise InputError("the photo\nis bad")

    def broken(studio, progress, cancel):
        raise RuntimeError("x" * 1000)

    a, b = RenderJob(queue, "a", bad).start(), RenderJob(queue, "b", broken).start()
    assert a.wait(5) and a.error == "the photo is bad"
    assert b.wait(5) and b.error.startswith("the render failed (RuntimeError: xxx") and len(b.error) < 300


def test_progress_is_recorded_per_stage():
    queue = RenderQueue(FakeStudio)

    def render(studio, progress, cancel):
        for i in range(3):
            progress("render", i + 1, 3)
        progress("mux", 1, 1)

    job = RenderJob(queue, "a", render).start()
    assert job.wait(5) and job.stages == {"render": (3, 3), "mux": (1, 1)}


def test_a_ticket_has_one_turn():
    queue = RenderQueue(FakeStudio)
    ticket = queue.ticket("a")
    with queue.turn(ticket):
        pass
    with pytest.raises(RuntimeError, match="already had its turn"):
        with queue.turn(ticket):
            pass
