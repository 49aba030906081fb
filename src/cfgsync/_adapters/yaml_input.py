"""Reading manifests from YAML files, directories and stdin, with line numbers for every error.

I/O: reads files. ruamel.yaml is the reader because it reports where each document starts.
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from cfgsync import errors
from cfgsync._core.inventory import Document

SUFFIXES = (".yaml", ".yml")
"""File endings read from directories."""


def _plain(value: object) -> object:
    """Turn ruamel's round-trip types into plain Python data (str, int, bool, list, dict)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    for plain in (bool, str, int, float):
        # ruamel's scalar types subclass these; bool first, since bool is an int.
        if isinstance(value, plain):
            return plain(value)
    return value if value is None else str(value)


def _documents(stream: IO[str], name: str) -> Iterator[Document]:
    yaml = YAML(typ="rt")
    yaml.allow_duplicate_keys = False
    try:
        for raw in yaml.load_all(stream):
            if raw is None:
                continue
            line = raw.lc.line + 1 if hasattr(raw, "lc") else 1
            where = f"{name}:{line}"
            if not isinstance(raw, Mapping):
                raise errors.ManifestError(
                    f"{where}: a document is a {_yaml_type(raw)}, not a Kubernetes object; each YAML "
                    f"document must be a mapping with apiVersion, kind and metadata"
                )
            body = _plain(raw)
            assert isinstance(body, dict)
            yield from _unwrap(body, where)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        at = f"{name}:{mark.line + 1}:{mark.column + 1}" if mark is not None else name
        raise errors.ManifestError(
            f"{at}: malformed YAML: {exc.problem or exc.context}; "
            f"fix the syntax there (indentation, quotes, colons)"
        ) from exc
    except YAMLError as exc:
        raise errors.ManifestError(f"{name}: malformed YAML: {exc}") from exc


def _yaml_type(value: object) -> str:
    return "list" if isinstance(value, list) else "string" if isinstance(value, str) else type(value).__name__


def _unwrap(body: dict[str, object], where: str) -> Iterator[Document]:
    kind = body.get("kind")
    items = body.get("items")
    if isinstance(kind, str) and kind.endswith("List") and isinstance(items, list):
        for index, item in enumerate(items):
            if not isinstance(item, dict):
                raise errors.ManifestError(f"{where}: items[{index}] is not an object")
            yield Document(body=item, where=f"{where} items[{index}]")
    else:
        yield Document(body=body, where=where)


def files_of(paths: Sequence[str]) -> list[Path | None]:
    """The files to read for ``paths`` (None stands for stdin), directories expanded recursively."""
    files: list[Path | None] = []
    for text in paths:
        if text == "-":
            files.append(None)
            continue
        path = Path(text)
        if path.is_dir():
            files.extend(sorted(p for p in path.rglob("*") if p.suffix in SUFFIXES and p.is_file()))
        elif path.is_file():
            files.append(path)
        else:
            raise errors.ManifestError(
                f"{text}: no such file or directory; pass YAML files, directories or -"
            )
    return files


def read_documents(paths: Sequence[str], stdin: IO[str] | None = None) -> list[Document]:
    """Every document in ``paths``, in order; raises :class:`ManifestError` with ``file:line``."""
    documents: list[Document] = []
    for path in files_of(paths):
        if path is None:
            text = (stdin if stdin is not None else io.StringIO()).read()
            documents.extend(_documents(io.StringIO(text), "<stdin>"))
            continue
        try:
            with path.open(encoding="utf-8") as handle:
                documents.extend(_documents(handle, str(path)))
        except UnicodeDecodeError as exc:
            raise errors.ManifestError(f"{path}: not UTF-8 text ({exc.reason}); save it as UTF-8") from exc
        except OSError as exc:
            raise errors.ManifestError(f"{path}: cannot be read: {exc.strerror}") from exc
    return documents
