"""Mail from files: ``.eml`` files, mbox files, maildir folders and directories of them.

Used by ``recruiter process`` (and later the replay command) instead of IMAP. Messages come out as
raw bytes, untouched, with a label saying where each one came from.
"""

from __future__ import annotations

import mailbox
from collections.abc import Iterable, Iterator
from pathlib import Path

from recruiter.errors import SourceError

_MAILDIR_SUBDIRS = ("new", "cur")  # tmp/ holds half-delivered mail by definition: never read it
_MBOX_SUFFIXES = (".mbox", ".mbx")
_EML_SUFFIXES = (".eml",)


def iter_paths(paths: Iterable[Path]) -> Iterator[tuple[str, bytes]]:
    """(label, raw bytes) for every message under ``paths``, in a stable order: an ``.eml`` (or any
    other single) file is one message; a ``.mbox`` file or a file starting with ``From `` is an
    mbox (label ``path#index``); a folder with ``cur/`` and ``new/`` is a maildir; any other folder
    is searched recursively, in sorted order, for ``.eml`` and ``.mbox`` files and maildirs. Raises
    SourceError naming the path when a path does not exist or cannot be read."""
    for path in paths:
        yield from _iter_path(Path(path), explicit=True)


def _iter_path(path: Path, *, explicit: bool) -> Iterator[tuple[str, bytes]]:
    if not path.exists():
        raise SourceError(path, "no such file or directory")
    if path.is_dir():
        yield from _iter_maildir(path) if is_maildir(path) else _iter_directory(path)
    elif _is_mbox(path):
        yield from _iter_mbox(path)
    elif explicit or path.suffix.lower() in _EML_SUFFIXES:
        yield str(path), _read(path)


def is_maildir(path: Path) -> bool:
    """True for a folder laid out as a maildir (``cur/`` and ``new/`` subfolders)."""
    return all((path / sub).is_dir() for sub in _MAILDIR_SUBDIRS)


def _iter_directory(path: Path) -> Iterator[tuple[str, bytes]]:
    for child in _listdir(path):
        if child.name.startswith("."):
            continue
        if child.is_dir() or child.suffix.lower() in _EML_SUFFIXES + _MBOX_SUFFIXES:
            yield from _iter_path(child, explicit=False)


def _iter_maildir(path: Path) -> Iterator[tuple[str, bytes]]:
    for sub in _MAILDIR_SUBDIRS:
        for child in _listdir(path / sub):
            if child.is_file() and not child.name.startswith("."):
                yield str(child), _read(child)


def _iter_mbox(path: Path) -> Iterator[tuple[str, bytes]]:
    try:
        box = mailbox.mbox(path, create=False)
        keys = box.keys()
    except (OSError, mailbox.Error) as exc:
        raise SourceError(path, f"cannot read mbox: {exc}") from exc
    try:
        for index, key in enumerate(keys):
            yield f"{path}#{index}", box.get_bytes(key)
    except OSError as exc:
        raise SourceError(path, f"cannot read mbox: {exc}") from exc
    finally:
        box.close()


def _is_mbox(path: Path) -> bool:
    if path.suffix.lower() in _MBOX_SUFFIXES:
        return True
    try:
        with path.open("rb") as handle:
            return handle.read(5) == b"From "
    except OSError as exc:
        raise SourceError(path, f"cannot read: {exc.strerror or exc}") from exc


def _listdir(path: Path) -> list[Path]:
    try:
        return sorted(path.iterdir())
    except OSError as exc:
        raise SourceError(path, f"cannot list directory: {exc.strerror or exc}") from exc


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise SourceError(path, f"cannot read: {exc.strerror or exc}") from exc
