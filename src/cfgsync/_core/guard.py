"""The mass-delete guard: a plan that would delete too many copies at once waits for an operator.

Pure: no I/O. A surprise in what cfgsync reads (a source it no longer recognises, a selector it reads
differently from the tool it replaces, a half-filled cache) shows first as a plan that deletes copies
workloads depend on. The first plan after ``cfgsync run`` starts or gains the lease, and every
``cfgsync apply``, pass through :meth:`DeleteGuard.check`: when the deletes exceed both a share of the
copies cfgsync manages and a count, they are held (creates and updates still go ahead) until an
operator lets them through.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from cfgsync._core.model import Action, ActionKind

ALLOW_FLAG = "--allow-mass-delete"
"""The command-line flag that lets held deletes through."""
DEFAULT_COUNT = 10
"""Deletes at or below this many are never held."""
DEFAULT_FRACTION = 0.25
"""Deletes at or below this share of the managed copies are never held."""


@dataclass(frozen=True, slots=True, kw_only=True)
class DeleteGuard:
    """When deletes are too many to carry out without an operator's word."""

    count: int = DEFAULT_COUNT
    """Deletes at or below this many always go ahead."""
    fraction: float = DEFAULT_FRACTION
    """Deletes at or below this share of the managed copies always go ahead."""
    enabled: bool = True
    """False when the operator lets every delete through (``--allow-mass-delete``)."""

    def holds(self, deletes: int, managed: int) -> bool:
        """True when ``deletes`` out of ``managed`` copies exceed both the count and the fraction."""
        return self.enabled and deletes > self.count and deletes > self.fraction * managed

    def check(self, actions: Iterable[Action], managed: int) -> GuardVerdict:
        """Split ``actions`` into what goes ahead and the deletes held back."""
        actions = tuple(actions)
        deletes = tuple(a for a in actions if a.kind is ActionKind.DELETE)
        if not self.holds(len(deletes), managed):
            return GuardVerdict(allowed=actions, held=(), managed=managed, guard=self)
        allowed = tuple(a for a in actions if a.kind is not ActionKind.DELETE)
        return GuardVerdict(allowed=allowed, held=deletes, managed=managed, guard=self)


@dataclass(frozen=True, slots=True, kw_only=True)
class GuardVerdict:
    """What the guard let through and what it held."""

    allowed: tuple[Action, ...]
    """Actions to carry out."""
    held: tuple[Action, ...]
    """Deletes held back (empty when the guard did not trip)."""
    managed: int
    """The copies cfgsync manages, which the deletes were compared with."""
    guard: DeleteGuard
    """The limits applied."""

    def summary(self) -> str:
        """One line: how many deletes are held, why, and how to let them through; empty if none."""
        if not self.held:
            return ""
        return (
            f"{len(self.held)} deletes held: more than {self.guard.count} and more than "
            f"{self.guard.fraction:.0%} of the {self.managed} copies cfgsync manages. Check them (each is "
            f"listed with its reason); if they are right, run again with {ALLOW_FLAG}"
        )
