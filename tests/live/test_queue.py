"""The work queue: de-duplication, one worker per key, back-off."""

from __future__ import annotations

from cfgsync._controller.queue import WorkQueue


def test_a_key_added_twice_is_queued_once() -> None:
    queue: WorkQueue[str] = WorkQueue()
    queue.add("a")
    queue.add("a")
    queue.add("b")

    assert queue.get(timeout=0) == "a"
    assert queue.get(timeout=0) == "b"
    assert queue.get(timeout=0) is None


def test_a_key_added_while_worked_on_comes_back_after_done_not_before() -> None:
    queue: WorkQueue[str] = WorkQueue()
    queue.add("a")
    key = queue.get(timeout=0)
    queue.add("a")

    assert queue.get(timeout=0) is None  # not handed to a second worker
    queue.done(key)  # type: ignore[arg-type]
    assert queue.get(timeout=0) == "a"


def test_failures_back_off_exponentially_and_forget_resets() -> None:
    queue: WorkQueue[str] = WorkQueue(base_delay=0.01, max_delay=0.04)

    delays = [queue.add_rate_limited("a") for _ in range(4)]
    queue.forget("a")

    assert delays == [0.01, 0.02, 0.04, 0.04]
    assert queue.add_rate_limited("a") == 0.01
    assert queue.get(timeout=1) == "a"


def test_shutdown_wakes_waiting_workers() -> None:
    queue: WorkQueue[str] = WorkQueue()
    queue.shutdown()
    queue.add("a")

    assert queue.get(timeout=1) is None
    assert queue.wait_idle(0.1)
