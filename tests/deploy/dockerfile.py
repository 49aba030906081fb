"""Read the repository's Dockerfile and .dockerignore as a builder would, to run the recipe without Docker.

Pure parsing, plus one read of each file. Covers the subset of the Dockerfile syntax the recipe uses:
comments, line continuations, ``FROM ... AS name`` stages (a target may build on another stage),
``ENV k=v ...`` and exec- or shell-form instructions. ``.dockerignore`` patterns follow Docker's rules:
the last matching pattern wins, ``!`` re-includes, a pattern matching a directory matches everything
under it, ``**`` spans directories.
"""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True, slots=True, kw_only=True)
class Instruction:
    """One instruction: its keyword (upper case) and its arguments as written (continuations joined)."""

    keyword: str
    """``FROM``, ``RUN``, ``ENV``..."""
    arguments: str
    """Everything after the keyword."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Stage:
    """A build stage: what follows one ``FROM``."""

    base: str
    """The image it starts from, as written (``${PYTHON_IMAGE}``)."""
    name: str
    """Its ``AS`` name; empty for the unnamed last stage."""
    instructions: tuple[Instruction, ...] = field(default=())
    """Its instructions after ``FROM``."""

    def arguments(self, keyword: str) -> list[str]:
        """The arguments of every instruction with ``keyword``, in order."""
        return [i.arguments for i in self.instructions if i.keyword == keyword]

    def args(self) -> dict[str, str]:
        """The build arguments its ``ARG`` instructions give a default (one without stays unset)."""
        found: dict[str, str] = {}
        for arguments in self.arguments("ARG"):
            for token in shlex.split(arguments):
                key, equals, value = token.partition("=")
                if equals:
                    found[key] = value
        return found

    def env(self) -> dict[str, str]:
        """The variables its ``ENV`` instructions set (values unexpanded)."""
        found: dict[str, str] = {}
        for arguments in self.arguments("ENV"):
            for token in shlex.split(arguments):
                key, _, value = token.partition("=")
                found[key] = value
        return found


def read_stages(dockerfile: Path) -> list[Stage]:
    """The stages of ``dockerfile``, in order."""
    stages: list[Stage] = []
    current: list[Instruction] = []
    for instruction in _instructions(dockerfile.read_text(encoding="utf-8")):
        if instruction.keyword == "FROM":
            if stages:
                stages[-1] = Stage(base=stages[-1].base, name=stages[-1].name, instructions=tuple(current))
            base, _, name = instruction.arguments.partition(" AS ")
            stages.append(Stage(base=base.strip(), name=name.strip()))
            current = []
        elif stages:
            current.append(instruction)
    if stages:
        stages[-1] = Stage(base=stages[-1].base, name=stages[-1].name, instructions=tuple(current))
    return stages


def read_target(dockerfile: Path, target: str) -> Stage:
    """What ``docker build --target TARGET`` ends in, as one stage: ``target`` with the instructions of
    the stages it is built ``FROM`` put first, and the base of the first of them."""
    stages = {stage.name: stage for stage in read_stages(dockerfile) if stage.name}
    if target not in stages:
        raise KeyError(f"{dockerfile} has no stage {target!r}; its stages: {', '.join(stages)}")
    stage = stages[target]
    while stage.base in stages:
        parent = stages[stage.base]
        stage = Stage(base=parent.base, name=target, instructions=parent.instructions + stage.instructions)
    return stage


def _instructions(text: str) -> Iterator[Instruction]:
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if pending and line.startswith("#"):  # comments may sit inside a continued instruction
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        whole = (pending + line).strip()
        pending = ""
        keyword, _, arguments = whole.partition(" ")
        yield Instruction(keyword=keyword.upper(), arguments=re.sub(r"\s+", " ", arguments).strip())


def context_files(root: Path) -> list[Path]:
    """The files (relative to ``root``) that ``root/.dockerignore`` lets into a build context."""
    patterns = _ignore_patterns(root / ".dockerignore")
    found: list[Path] = []
    for directory, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d not in {".git", ".venv", ".nox"}]
        for filename in filenames:
            relative = (Path(directory) / filename).relative_to(root)
            if not _ignored(relative.as_posix(), patterns):
                found.append(relative)
    return sorted(found)


def _ignore_patterns(path: Path) -> list[tuple[bool, re.Pattern[str]]]:
    """``(negated, regex)`` per pattern line."""
    patterns = []
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        pattern = line.removeprefix("!").strip().strip("/")
        patterns.append((negated, re.compile(_glob_to_regex(pattern))))
    return patterns


def _glob_to_regex(pattern: str) -> str:
    out = []
    index = 0
    while index < len(pattern):
        if pattern.startswith("**/", index):
            out.append("(?:.*/)?")
            index += 3
        elif pattern.startswith("**", index):
            out.append(".*")
            index += 2
        elif pattern[index] == "*":
            out.append("[^/]*")
            index += 1
        elif pattern[index] == "?":
            out.append("[^/]")
            index += 1
        else:
            out.append(re.escape(pattern[index]))
            index += 1
    return "".join(out)


def _ignored(relative: str, patterns: list[tuple[bool, re.Pattern[str]]]) -> bool:
    parts = relative.split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]  # the file and its parents
    ignored = False
    for negated, regex in patterns:
        if any(regex.fullmatch(candidate) for candidate in candidates):
            ignored = not negated
    return ignored
