"""What a plan has to say besides its actions, worded once for every mode.

Pure: no I/O. The command line prints these lines, the controller logs them and turns them into Events
on the sources they are about, the sync-contexts planner logs them, so a conflict reads the same in a
terminal, a log and ``kubectl describe``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from cfgsync._core.model import ObjectRef, Plan


class Severity(enum.Enum):
    """How bad it is."""

    ERROR = "error"
    """An invalid source, rule or plugin: that source's copies are not planned."""
    WARNING = "warning"
    """A copy that is not written (a conflict, a veto), or something worth a look."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Diagnostic:
    """One finding of a plan."""

    severity: Severity
    """Error or warning."""
    reason: str
    """A short CamelCase code, used as the Event reason: ``InvalidRule``, ``CopyConflict``,
    ``CopyVetoed``, ``CopyLeftAlone``, ``PullRefused``, ``SyncWarning``."""
    message: str
    """The whole finding: what, where and how to fix it."""
    subjects: tuple[ObjectRef, ...] = ()
    """The sources (or SyncRule) it is about: where Events go (both sources of a conflict); the target
    for a refused pull."""
    ref: ObjectRef | None = None
    """The copy it is about, when it is about one."""
    blocks_strict: bool = True
    """Whether ``--strict`` refuses to write because of it (a copy the policy leaves alone does not:
    it is left alone on purpose)."""

    def __str__(self) -> str:
        return f"{self.severity.value}: {self.message}"


def diagnose(plan: Plan) -> tuple[Diagnostic, ...]:
    """Every finding of ``plan``: errors first, then conflicts, vetoes, copies left alone, refused pulls
    and warnings, each in plan order."""
    found = [
        Diagnostic(severity=Severity.ERROR, reason="InvalidRule", message=str(p), subjects=_refs(p.ref))
        for p in plan.problems
    ]
    found += [
        Diagnostic(
            severity=Severity.WARNING,
            reason="CopyConflict",
            message=f"conflict: {c.reason}",
            subjects=c.sources,
            ref=c.ref,
        )
        for c in plan.conflicts
    ]
    found += [
        Diagnostic(
            severity=Severity.WARNING,
            reason="CopyVetoed",
            message=f"vetoed: {v.ref} (copy of {v.source}) by plugin {v.plugin}: {v.reason}",
            subjects=(v.source,),
            ref=v.ref,
        )
        for v in plan.vetoes
    ]
    found += [
        Diagnostic(
            severity=Severity.WARNING,
            reason="CopyLeftAlone",
            message=f"left alone: {left}",
            subjects=(left.source,),
            ref=left.ref,
            blocks_strict=False,
        )
        for left in plan.left_alone
    ]
    found += [
        Diagnostic(
            severity=Severity.WARNING,
            reason="PullRefused",
            message=f"pull refused: {refusal}",
            subjects=(refusal.target,),
            ref=refusal.target,
        )
        for refusal in plan.pull_refusals
    ]
    found += [
        Diagnostic(severity=Severity.WARNING, reason="SyncWarning", message=str(w), subjects=_refs(w.ref))
        for w in plan.warnings
    ]
    return tuple(found)


def _refs(ref: ObjectRef | None) -> tuple[ObjectRef, ...]:
    return () if ref is None else (ref,)
