"""Reading manifests from YAML files, directories and stdin, with line numbers for every error.

I/O: reads files. Parsing uses libyaml through PyYAML's C loader: it reports where each document
starts (for ``file:line`` in messages), reads YAML 1.1 as the Kubernetes tools do (``yes`` is a
boolean, so an unquoted ``yes`` in ``data`` is caught as kubectl would catch it), and is about 17x
faster than a pure-Python reader on the render benchmark's input (docs/performance.md).
Duplicate keys are errors, as the API server's strict decoding makes them.
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any

import yaml

from cfgsync import errors
from cfgsync._core.inventory import Document

SUFFIXES = (".yaml", ".yml")
"""File endings read from directories."""

_BaseLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_BaseLoader):  # type: ignore[misc]  # the base is chosen at import time
    """Safe loader that refuses duplicate keys and keeps timestamps as text."""

    def construct_mapping(self, node: Any, deep: bool = False) -> dict[Any, Any]:
        seen: set[object] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if key in seen:
                mark = key_node.start_mark
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r} (keys of a mapping must be unique)", mark
                )
            seen.add(key)
        mapping: dict[Any, Any] = super().construct_mapping(node, deep=deep)
        return mapping


# Kubernetes keeps dates as strings in ConfigMap data; so does cfgsync (a quoted-or-not date stays text).
_Loader.add_constructor("tag:yaml.org,2002:timestamp", _BaseLoader.construct_yaml_str)


def _yaml_type(value: object) -> str:
    return "list" if isinstance(value, list) else "string" if isinstance(value, str) else type(value).__name__


def _documents(text: str, name: str) -> Iterator[Document]:
    loader = _Loader(text)
    try:
        while loader.check_node():
            node = loader.get_node()
            where = f"{name}:{node.start_mark.line + 1}"
            body = loader.construct_document(node)
            if body is None:
                continue
            if not isinstance(body, dict):
                raise errors.ManifestError(
                    f"{where}: a document is a {_yaml_type(body)}, not a Kubernetes object; each YAML "
                    f"document must be a mapping with apiVersion, kind and metadata"
                )
            yield from _unwrap(body, where)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        at = f"{name}:{mark.line + 1}:{mark.column + 1}" if mark is not None else name
        raise errors.ManifestError(
            f"{at}: malformed YAML: {exc.problem or exc.context}; "
            f"fix the syntax there (indentation, quotes, colons, duplicate keys)"
        ) from exc
    except yaml.YAMLError as exc:
        raise errors.ManifestError(f"{name}: malformed YAML: {exc}") from exc
    finally:
        loader.dispose()


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
            documents.extend(_documents(text, "<stdin>"))
            continue
        try:
            documents.extend(_documents(path.read_text(encoding="utf-8"), str(path)))
        except UnicodeDecodeError as exc:
            raise errors.ManifestError(f"{path}: not UTF-8 text ({exc.reason}); save it as UTF-8") from exc
        except OSError as exc:
            raise errors.ManifestError(f"{path}: cannot be read: {exc.strerror}") from exc
    return documents
