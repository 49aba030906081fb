"""Reading manifests from YAML files, directories and stdin, with line numbers for every error.

I/O: reads files. Parsing uses libyaml through PyYAML's C loader: it reports where each document
starts (for ``file:line`` in messages), reads YAML 1.1 as the Kubernetes tools do (``yes`` is a
boolean, so an unquoted ``yes`` in ``data`` is caught as kubectl would catch it), and is about 17x
faster than a pure-Python reader on the render benchmark's input (docs/performance.md).
Duplicate keys are errors, as the API server's strict decoding makes them.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any, Final

import yaml
from yaml.resolver import Resolver

from cfgsync import errors
from cfgsync._adapters import yaml_nodes
from cfgsync._core.inventory import Document

SUFFIXES = (".yaml", ".yml")
"""File endings read from directories."""


class _PythonParser(yaml.reader.Reader, yaml.scanner.Scanner, yaml.parser.Parser, yaml.composer.Composer):
    """PyYAML's pure-Python parser and composer, taking the text as libyaml's does."""

    def __init__(self, stream: str) -> None:
        yaml.reader.Reader.__init__(self, stream)
        yaml.scanner.Scanner.__init__(self)
        yaml.parser.Parser.__init__(self)
        yaml.composer.Composer.__init__(self)


# libyaml's parser and composer when PyYAML was built with it; else the same grammar in Python, slower.
_BaseParser: Any = yaml.cyaml.CParser if yaml.__with_libyaml__ else _PythonParser  # type: ignore[attr-defined]
_READ_FLAGS: Final = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC


class _Loader(_BaseParser, yaml_nodes.Constructor, Resolver):  # type: ignore[misc]  # base chosen at import
    """libyaml's parser with cfgsync's safe constructor (see :mod:`cfgsync._adapters.yaml_nodes`)."""

    def __init__(self, stream: str) -> None:
        _BaseParser.__init__(self, stream)
        yaml_nodes.Constructor.__init__(self)
        Resolver.__init__(self)


def _yaml_type(value: object) -> str:
    return "list" if isinstance(value, list) else "string" if isinstance(value, str) else type(value).__name__


def _documents(text: str, name: str) -> Iterator[Document]:
    loader = _Loader(text)
    try:
        while loader.check_node():
            node = loader.get_node()
            where = f"{name}:{node.start_mark.line + 1}"
            yaml_nodes.check_expansion(node, name)
            body = loader.construct_document(node)
            if body is None:
                continue
            if not isinstance(body, dict):
                raise errors.ManifestError(
                    f"{where}: a document is a {_yaml_type(body)}, not a Kubernetes object; each YAML "
                    f"document must be a mapping with apiVersion, kind and metadata"
                )
            yield from _unwrap(body, where)
    except yaml.YAMLError as exc:
        raise yaml_nodes.yaml_error(exc, name) from None  # chained, the library's message would quote input
    except RecursionError:
        raise yaml_nodes.nesting_error(name) from None
    finally:
        loader.dispose()


def _unwrap(body: dict[str, object], where: str) -> Iterator[Document]:
    """The objects of a document: a ``*List``'s items (nested lists too, as kubectl reads), else itself."""
    kind = body.get("kind")
    items = body.get("items")
    if isinstance(kind, str) and kind.endswith("List") and isinstance(items, list):
        for index, item in enumerate(items):
            if not isinstance(item, dict):
                raise errors.ManifestError(
                    f"{where}: items[{index}] is a {_yaml_type(item)}, not an object; every item of a "
                    f"{kind} must be a Kubernetes object"
                )
            yield from _unwrap(item, f"{where} items[{index}]")
    else:
        yield Document(body=body, where=where)


def files_of(paths: Sequence[str]) -> list[Path | None]:
    """The files to read for ``paths`` (None stands for stdin), directories expanded recursively.

    A path named here is read even if it is a link; below a named directory, a link that leads out
    of it (or to a device, a FIFO, nothing) is an error, never followed: a repository must not be
    able to make cfgsync read ``/proc/self/environ`` or ``/dev/zero``.
    """
    files: list[Path | None] = []
    for text in paths:
        if text == "-":
            files.append(None)
            continue
        path = Path(text)
        try:
            info = path.stat()
        except FileNotFoundError:
            raise errors.ManifestError(
                f"{text}: no such file or directory; pass YAML files, directories or -"
            ) from None
        except OSError as exc:
            raise errors.ManifestError(f"{text}: cannot be read: {exc.strerror}") from exc
        if stat.S_ISDIR(info.st_mode):
            files.extend(_walk(path))
        elif stat.S_ISREG(info.st_mode):
            files.append(path)
        else:
            raise errors.ManifestError(
                f"{text}: not a regular file or directory; pass YAML files or directories"
            )
    return files


def _walk(root: Path) -> list[Path]:
    """The YAML files below ``root``, sorted; links are read only when they stay inside ``root``."""
    real_root = os.path.realpath(root)
    found: list[Path] = []

    def failed(exc: OSError) -> None:
        raise errors.ManifestError(f"{exc.filename}: cannot be read: {exc.strerror}") from exc

    for folder, _, names in os.walk(root, onerror=failed):
        for name in names:
            path = Path(folder) / name
            if path.suffix not in SUFFIXES:
                continue
            if path.is_symlink():
                target = os.path.realpath(path)
                if os.path.commonpath([real_root, target]) != real_root:
                    raise errors.ManifestError(
                        f"{path}: a symbolic link out of {root}; cfgsync never follows links out of the "
                        f"directory it reads. Replace the link with the file itself"
                    )
            found.append(path)
    return sorted(found)


def read_text(path: Path) -> str:
    """The text of a regular file (a link is followed only after :func:`files_of` checked it)."""
    try:
        fd = os.open(path, _READ_FLAGS)
    except OSError as exc:
        if exc.errno == errno.ENOENT and path.is_symlink():
            raise errors.ManifestError(f"{path}: a link to nothing; remove it or fix its target") from exc
        raise errors.ManifestError(f"{path}: cannot be read: {exc.strerror}") from exc
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise errors.ManifestError(
                f"{path}: not a regular file (a device, FIFO or socket); cfgsync reads YAML files only"
            )
        try:
            data = handle.read()
        except OSError as exc:
            raise errors.ManifestError(f"{path}: cannot be read: {exc.strerror}") from exc
    return decode(data, str(path))


def decode(data: bytes, name: str) -> str:
    """``data`` as UTF-8 text, or a :class:`ManifestError` naming the line and column of a bad byte."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise errors.ManifestError(
            f"{name}:{line}:{column}: not UTF-8 text ({exc.reason}); save it as UTF-8"
        ) from None


def read_stdin(stdin: IO[str] | IO[bytes] | None) -> str:
    """All of stdin as text; bytes that are not UTF-8 are an error naming where they are."""
    if stdin is None:
        return ""
    raw = getattr(stdin, "buffer", None)
    data = raw.read() if raw is not None else stdin.read()
    return decode(data, "<stdin>") if isinstance(data, bytes) else data


def read_documents(paths: Sequence[str], stdin: IO[str] | None = None) -> list[Document]:
    """Every document in ``paths``, in order; raises :class:`ManifestError` with ``file:line``."""
    documents: list[Document] = []
    for path in files_of(paths):
        if path is None:
            documents.extend(_documents(read_stdin(stdin), "<stdin>"))
            continue
        documents.extend(_documents(read_text(path), str(path)))
    return documents
