"""A work queue of keys: de-duplicated, one worker per key at a time, retries with exponential back-off.

No I/O; thread-safe. A key added while it is queued is queued once; a key added while a worker holds it
is queued again when the worker is done, so no change is lost and no key is worked on twice at once.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections import deque
from collections.abc import Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)


class WorkQueue(Generic[K]):
    """Keys waiting for a worker; see the module docstring."""

    def __init__(self, *, base_delay: float = 0.05, max_delay: float = 60.0) -> None:
        self._base = base_delay
        self._max = max_delay
        self._ready: deque[K] = deque()
        self._queued: set[K] = set()
        self._processing: set[K] = set()
        self._again: set[K] = set()
        self._delayed: list[tuple[float, int, K]] = []
        self._failures: dict[K, int] = {}
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._closed = False

    def __len__(self) -> int:
        """Keys waiting (ready, delayed or to be redone), not counting those being worked on."""
        with self._cond:
            return len(self._queued) + len(self._delayed) + len(self._again)

    @property
    def busy(self) -> bool:
        """True while any key is queued, delayed or being worked on."""
        with self._cond:
            return bool(self._queued or self._delayed or self._processing or self._again)

    def add(self, key: K) -> None:
        """Queue ``key`` now (once, however often it is added)."""
        with self._cond:
            self._add(key)

    def _add(self, key: K) -> None:
        if self._closed:
            return
        if key in self._processing:
            self._again.add(key)
        elif key not in self._queued:
            self._queued.add(key)
            self._ready.append(key)
            self._cond.notify()

    def add_after(self, key: K, delay: float) -> None:
        """Queue ``key`` after ``delay`` seconds."""
        with self._cond:
            if self._closed:
                return
            heapq.heappush(self._delayed, (time.monotonic() + delay, next(self._seq), key))
            self._cond.notify()

    def add_rate_limited(self, key: K) -> float:
        """Queue ``key`` after its back-off, which doubles with each failure; return the delay."""
        with self._cond:
            count = self._failures.get(key, 0)
            self._failures[key] = count + 1
        delay = min(self._max, self._base * 2.0**count)
        self.add_after(key, delay)
        return delay

    def forget(self, key: K) -> None:
        """Reset ``key``'s back-off (after a success)."""
        with self._cond:
            self._failures.pop(key, None)

    def get(self, timeout: float | None = None) -> K | None:
        """The next key to work on, or None on timeout or shutdown. Call :meth:`done` after."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while True:
                self._promote()
                if self._ready:
                    key = self._ready.popleft()
                    self._queued.discard(key)
                    self._processing.add(key)
                    return key
                if self._closed:
                    return None
                now = time.monotonic()
                waits = [t - now for t in (deadline, self._delayed[0][0] if self._delayed else None) if t]
                if deadline is not None and now >= deadline:
                    return None
                self._cond.wait(max(0.0, min(waits)) if waits else None)

    def _promote(self) -> None:
        now = time.monotonic()
        while self._delayed and self._delayed[0][0] <= now:
            _, _, key = heapq.heappop(self._delayed)
            self._add(key)

    def done(self, key: K) -> None:
        """A worker finished ``key``; queue it again if it was added meanwhile."""
        with self._cond:
            self._processing.discard(key)
            if key in self._again:
                self._again.discard(key)
                self._add(key)
            self._cond.notify_all()

    def shutdown(self) -> None:
        """Stop handing out keys; workers' :meth:`get` returns None."""
        with self._cond:
            self._closed = True
            self._ready.clear()
            self._queued.clear()
            self._delayed.clear()
            self._again.clear()
            self._cond.notify_all()

    def wait_idle(self, timeout: float) -> bool:
        """Wait until no key is being worked on (after :meth:`shutdown`: the drain); True if so."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._processing:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
        return True
