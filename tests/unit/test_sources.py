"""Mail from files: .eml, mbox, maildir and directories of them."""

from __future__ import annotations

import mailbox
import socket
from pathlib import Path

import pytest

from recruiter.errors import SourceError
from recruiter.ingest.files import iter_paths

SAMPLES = Path(__file__).resolve().parents[2] / "samples"


def message(n: int) -> bytes:
    return f"From: a{n}@example.org\nSubject: m{n}\nMessage-ID: <m{n}@example.org>\n\nbody {n}\n".encode()


def test_single_eml_file_is_one_message(tmp_path: Path) -> None:
    path = tmp_path / "one.eml"
    path.write_bytes(message(1))
    assert list(iter_paths([path])) == [(str(path), message(1))]


def test_an_explicit_file_without_eml_suffix_is_a_message(tmp_path: Path) -> None:
    path = tmp_path / "mail.txt"
    path.write_bytes(message(1))
    assert list(iter_paths([path])) == [(str(path), message(1))]


def mbox_file(path: Path, count: int) -> None:
    box = mailbox.mbox(path)
    for n in range(count):
        box.add(message(n))
    box.flush()
    box.close()


def test_mbox_by_suffix_and_by_from_line(tmp_path: Path) -> None:
    by_suffix, by_sniff = tmp_path / "a.mbox", tmp_path / "archive"
    mbox_file(by_suffix, 3)
    mbox_file(by_sniff, 2)
    found = list(iter_paths([by_suffix, by_sniff]))
    assert [label for label, _ in found] == [f"{by_suffix}#0", f"{by_suffix}#1", f"{by_suffix}#2",
                                              f"{by_sniff}#0", f"{by_sniff}#1"]
    assert found[1][1].startswith(b"From: a1@example.org")
    assert b"body 1" in found[1][1]


def test_maildir_reads_new_and_cur_but_not_tmp(tmp_path: Path) -> None:
    root = tmp_path / "Maildir"
    for sub in ("new", "cur", "tmp"):
        (root / sub).mkdir(parents=True)
    (root / "new" / "1.a").write_bytes(message(1))
    (root / "cur" / "2.b:2,S").write_bytes(message(2))
    (root / "tmp" / "3.c").write_bytes(message(3))
    found = list(iter_paths([root]))
    assert [raw for _, raw in found] == [message(1), message(2)]
    assert found[0][0] == str(root / "new" / "1.a")


def test_directory_is_walked_recursively_in_sorted_order(tmp_path: Path) -> None:
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "2.eml").write_bytes(message(2))
    (tmp_path / "a.eml").write_bytes(message(1))
    (tmp_path / "notes.txt").write_text("not mail")
    (tmp_path / ".hidden.eml").write_bytes(message(9))
    mbox_file(tmp_path / "c.mbox", 1)
    maildir = tmp_path / "d"
    for sub in ("new", "cur", "tmp"):
        (maildir / sub).mkdir(parents=True)
    (maildir / "new" / "x").write_bytes(message(4))
    labels = [Path(label.split("#")[0]).relative_to(tmp_path).as_posix() for label, _ in iter_paths([tmp_path])]
    assert labels == ["a.eml", "b/2.eml", "c.mbox", "d/new/x"]


def test_raw_bytes_are_untouched(tmp_path: Path) -> None:
    raw = b"From: a@example.org\r\nSubject: \xff\xfe\r\n\r\nbinary \x00 body\r\n"
    (tmp_path / "x.eml").write_bytes(raw)
    assert list(iter_paths([tmp_path])) == [(str(tmp_path / "x.eml"), raw)]


def test_missing_path_raises_source_error_naming_it(tmp_path: Path) -> None:
    missing = tmp_path / "nope.eml"
    with pytest.raises(SourceError) as caught:
        list(iter_paths([missing]))
    assert str(missing) in str(caught.value)
    assert caught.value.path == missing
    assert isinstance(caught.value, ValueError)


def test_unreadable_file_raises_source_error(tmp_path: Path) -> None:
    # A socket cannot be opened as a file, not even by root (unlike a chmod 000 file).
    path = tmp_path / "locked.eml"
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(path))
    try:
        with pytest.raises(SourceError, match=r"locked\.eml") as caught:
            list(iter_paths([path]))
        assert caught.value.path == path
    finally:
        server.close()


def test_a_directory_named_like_an_mbox_is_walked_as_a_directory(tmp_path: Path) -> None:
    path = tmp_path / "broken.mbox"
    path.mkdir()
    assert list(iter_paths([path])) == []


def test_the_shipped_samples() -> None:
    found = list(iter_paths([SAMPLES]))
    eml = [label for label, _ in found if label.endswith(".eml")]
    mbox = [label for label, _ in found if "#" in label]
    assert len(eml) >= 14
    assert len(mbox) == 3
    assert eml == sorted(eml)
