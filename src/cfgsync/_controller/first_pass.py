"""The controller's first pass: its deletes are counted before any is carried out.

No I/O; thread-safe. After ``cfgsync run`` starts or gains the lease, every source is reconciled once.
While that pass runs, creates and updates go ahead but deletes wait; when the last source of the pass
is done, the mass-delete guard looks at all of them together. Within its limits they are released (their
sources are planned again and the deletes carried out from a fresh plan); beyond them they are held for
as long as this replica leads, and reported, until an operator restarts it with ``--allow-mass-delete``.
Deletes planned after the first pass are not held, except the ones already held. A source whose
reconcile raised, or whose deletes wait out a vanished source's grace, has not finished the pass; the
pass ends after ``PASS_LIMIT`` seconds whatever happens.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Final

from cfgsync._core.guard import DeleteGuard, GuardVerdict
from cfgsync._core.model import Action, ActionKind, ObjectRef

PASS_LIMIT: Final = 600.0
"""Seconds after which a first pass ends even if some source never finished it."""


@dataclass(frozen=True, slots=True, kw_only=True)
class PassResult:
    """How the first pass ended."""

    verdict: GuardVerdict
    """What the guard let through and what it holds."""
    release: frozenset[ObjectRef]
    """Sources to plan again now that their deletes may go ahead."""


class FirstPass:
    """Defers deletes during the first pass, then lets the guard decide (see the module docstring)."""

    def __init__(
        self,
        guard: DeleteGuard,
        *,
        managed: Callable[[], int],
        limit: float = PASS_LIMIT,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``limit``: seconds after which the pass ends even if a source never finished it."""
        self._guard = guard
        self._managed = managed
        self._limit = limit
        self._clock = clock
        self._deadline = 0.0
        self._lock = threading.Lock()
        self._open = False
        self._pending: set[ObjectRef] = set()
        self._deferred: dict[ObjectRef, Action] = {}
        self._held: dict[ObjectRef, Action] = {}

    def begin(self, keys: Iterable[ObjectRef]) -> PassResult | None:
        """Open the pass over ``keys`` (the result when there is nothing to wait for)."""
        with self._lock:
            self._open = True
            self._deadline = self._clock() + self._limit
            self._pending = set(keys)
            self._deferred = {}
            self._held = {}
        return self.done(())

    def split(self, changes: Iterable[Action]) -> list[Action]:
        """The changes that may be carried out now; deletes of the open pass and held ones wait."""
        allowed: list[Action] = []
        with self._lock:
            for action in changes:
                if action.kind is ActionKind.DELETE:
                    if self._open:
                        self._deferred[action.ref] = action
                        continue
                    if _same(self._held.get(action.ref), action):
                        continue
                allowed.append(action)
        return allowed

    def expire(self, now: float) -> PassResult | None:
        """End the pass if it has lasted its limit (a source that keeps failing does not hold it open)."""
        with self._lock:
            if not self._open or now < self._deadline:
                return None
            self._pending.clear()
        return self.done(())

    def done(self, keys: Iterable[ObjectRef]) -> PassResult | None:
        """``keys`` were reconciled; when that ends the pass, the guard's verdict (else None)."""
        with self._lock:
            self._pending.difference_update(keys)
            if not self._open or self._pending:
                return None
            self._open = False
            verdict = self._guard.check(self._deferred.values(), self._managed())
            self._held = {a.ref: a for a in verdict.held}
            release = frozenset(a.source for a in verdict.allowed)
            self._deferred = {}
        return PassResult(verdict=verdict, release=release)

    @property
    def held(self) -> tuple[Action, ...]:
        """The deletes held back, in output order."""
        with self._lock:
            return tuple(sorted(self._held.values(), key=lambda a: a.ref.sort_key))


def _same(held: Action | None, action: Action) -> bool:
    """True when ``action`` deletes the very object that ``held`` holds back (same uid)."""
    if held is None:
        return False
    before = held.observed.uid if held.observed is not None else None
    now = action.observed.uid if action.observed is not None else None
    return before == now
