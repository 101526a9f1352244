"""A thin, typed layer over aioimaplib: connect, select, search, fetch, append.

aioimaplib answers NO instead of raising and does not raise on a lost connection; this layer turns
both into our error classes (DependencyUnavailable for anything that may heal).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import ssl
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

import aioimaplib

from recruiter.errors import Dropped, ImapError, Misconfigured
from recruiter.mail.tls import tls_context
from recruiter.settings import MailboxSettings

_UIDVALIDITY = re.compile(rb"\[UIDVALIDITY (\d+)\]")
_UIDNEXT = re.compile(rb"\[UIDNEXT (\d+)\]")
_EXISTS = re.compile(rb"^(\d+) EXISTS")
_COUNT_UPDATE = re.compile(rb"^\* (\d+) (EXISTS|EXPUNGE)\s*$")
_FETCH_UID = re.compile(rb"UID (\d+)")
_SIZE = re.compile(rb"RFC822\.SIZE (\d+)")
_LITERAL = re.compile(rb"\{(\d+)\}$")
_LIST = re.compile(rb'^\((?P<flags>[^)]*)\) (?:"[^"]*"|NIL) (?P<name>.+)$')
_APPENDUID = re.compile(rb"APPENDUID \d+ (\d+)")

ConnLost = Callable[[Exception | None], None]
T = TypeVar("T")


@dataclass(frozen=True)
class Selected:
    """What SELECT told us about the folder."""

    uidvalidity: int
    uidnext: int | None
    exists: int


def unavailable(mailbox: str, what: str) -> ImapError:
    """An ImapError naming the mailbox (never its password)."""
    return ImapError(f"IMAP {mailbox}: {what}", dependency=f"imap:{mailbox}")


class _Protocol(aioimaplib.IMAP4ClientProtocol):  # type: ignore[misc]
    """aioimaplib's protocol, noticing when the server says the folder grew.

    A server may report new mail with the answer to any command (RFC 3501 section 7), e.g. an EXISTS
    after the result of a UID SEARCH that was computed just before the mail landed. aioimaplib drops
    an EXISTS that comes with SEARCH or FETCH ("ignored untagged response"), and IDLE does not repeat
    what the server has already told: the watcher would not hear of that mail until the IDLE renewal.
    ``grew`` counts the EXISTS that raised the message count (EXPUNGE lowers it; a server repeating
    an unchanged count is not news)."""

    count: int | None = None
    grew = 0

    def connection_lost(self, exc: Exception | None) -> None:
        """aioimaplib leaves a command in flight waiting for its whole timeout when the connection closes
        under it: end each one at once with :class:`ConnectionGone`."""
        commands = [self.pending_sync_command, *self.pending_async_commands.values()]
        for command in commands:
            if command is not None and command._exception is None and not command._event.is_set():
                command._exception = ConnectionGone(f"the server closed the connection during {command.name}")
                command.close(b"connection lost", "KO")
        super().connection_lost(exc)

    def _handle_line(self, line: bytes, current_cmd: aioimaplib.Command) -> aioimaplib.Command | None:
        if (update := _COUNT_UPDATE.match(line)) is not None:
            number = int(update.group(1))
            if update.group(2) == b"EXPUNGE":
                self.count = None if self.count is None else max(0, self.count - 1)
            else:
                if self.count is not None and number > self.count:
                    self.grew += 1
                self.count = number
        return super()._handle_line(line, current_cmd)


class ConnectionGone(aioimaplib.AioImapException):  # type: ignore[misc]
    """The connection closed while a command waited for its answer."""


class _Client(aioimaplib.IMAP4):  # type: ignore[misc]
    """An aioimaplib client on :class:`_Protocol`; TLS from the first byte when given a context.

    (Not ``IMAP4_SSL``: it does not take the connection-lost callback the watcher depends on.)"""

    def create_client(
        self, host: str, port: int, loop: asyncio.AbstractEventLoop | None,
        conn_lost_cb: ConnLost | None = None, ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        running = loop if loop is not None else asyncio.get_running_loop()
        self.protocol = _Protocol(running, conn_lost_cb)
        self._client_task = running.create_task(
            running.create_connection(lambda: self.protocol, host, port, ssl=ssl_context))


def growth(client: aioimaplib.IMAP4) -> int:
    """How often the server has told ``client`` that its folder grew (see :class:`_Protocol`)."""
    protocol = client.protocol
    return protocol.grew if isinstance(protocol, _Protocol) else 0


async def connect(mb: MailboxSettings, *, timeout: float, conn_lost: ConnLost | None = None) -> aioimaplib.IMAP4:
    """Connect and log in; raises ImapError when the server is unreachable or refuses the login."""
    try:
        context = tls_context(mb.ca_file) if mb.tls == "ssl" else None
        client = _Client(host=mb.host, port=mb.port, timeout=timeout, conn_lost_cb=conn_lost, ssl_context=context)
        await asyncio.wait_for(client.wait_hello_from_server(), timeout)
        response = await asyncio.wait_for(client.login(mb.user, mb.password.get_secret_value()), timeout)
    except (OSError, TimeoutError, aioimaplib.AioImapException) as exc:
        raise unavailable(mb.name, f"cannot connect to {mb.host}:{mb.port} ({type(exc).__name__})") from exc
    if response.result != "OK":
        await close(client)
        raise unavailable(mb.name, f"login refused for {mb.user}")
    return client


async def close(client: aioimaplib.IMAP4, *, polite: bool = True) -> None:
    """Log out (when ``polite`` and the connection still works) and close the socket; never raises."""
    try:
        if polite:
            await asyncio.wait_for(client.logout(), 5)
    except Exception:  # noqa: S110 — the connection may already be gone
        pass
    transport = getattr(client.protocol, "transport", None)
    if transport is not None:
        transport.close()


def _check(response: aioimaplib.Response, mailbox: str, what: str) -> list[bytes]:
    if response.result != "OK":
        raise unavailable(mailbox, f"{what} answered {response.result}")
    return [bytes(line) for line in response.lines]


async def select(client: aioimaplib.IMAP4, mailbox: str, folder: str) -> Selected:
    """SELECT a folder read-write (we only ever PEEK, so \\Seen stays as it is)."""
    lines = _check(await client.select(quote(folder)), mailbox, f"SELECT {folder}")
    validity = next((int(m.group(1)) for line in lines if (m := _UIDVALIDITY.search(line))), None)
    if validity is None:
        raise unavailable(mailbox, f"SELECT {folder} gave no UIDVALIDITY")
    uidnext = next((int(m.group(1)) for line in lines if (m := _UIDNEXT.search(line))), None)
    exists = next((int(m.group(1)) for line in lines if (m := _EXISTS.match(line))), 0)
    return Selected(validity, uidnext, exists)


async def uid_search(client: aioimaplib.IMAP4, mailbox: str, *criteria: str) -> list[int]:
    """UIDs matching the criteria, ascending."""
    lines = _check(await client.uid_search(*criteria, charset=None), mailbox, "UID SEARCH")
    uids: list[int] = []
    for line in lines:
        if line.startswith(b"SEARCH") or (line and line[:1].isdigit() and b"SEARCH" not in line):
            uids.extend(int(tok) for tok in line.split() if tok.isdigit())
    return sorted(set(uids))


async def fetch_raw(client: aioimaplib.IMAP4, mailbox: str, uids: list[int]) -> dict[int, bytes]:
    """Raw bytes of the given UIDs with BODY.PEEK[] (never sets \\Seen)."""
    if not uids:
        return {}
    uid_set = ",".join(str(u) for u in uids)
    response = await client.uid("fetch", uid_set, "(UID BODY.PEEK[])")
    lines = response.lines
    if response.result != "OK":
        raise unavailable(mailbox, f"UID FETCH answered {response.result}")
    found: dict[int, bytes] = {}
    for i, line in enumerate(lines[:-1]):
        if isinstance(line, bytearray):
            continue
        head = bytes(line)
        if _LITERAL.search(head) and isinstance(lines[i + 1], bytearray):
            uid = _FETCH_UID.search(head)
            if uid:
                found[int(uid.group(1))] = bytes(lines[i + 1])
    return found


async def fetch_sizes(client: aioimaplib.IMAP4, mailbox: str, uids: list[int]) -> dict[int, int]:
    """RFC822.SIZE of the given UIDs (no body is read)."""
    if not uids:
        return {}
    response = await client.uid("fetch", ",".join(str(u) for u in uids), "(UID RFC822.SIZE)")
    sizes: dict[int, int] = {}
    for line in _check(response, mailbox, "UID FETCH RFC822.SIZE"):
        uid, size = _FETCH_UID.search(line), _SIZE.search(line)
        if uid and size:
            sizes[int(uid.group(1))] = int(size.group(1))
    return sizes


async def add_flags(client: aioimaplib.IMAP4, mailbox: str, uids: list[int], flag: str) -> None:
    """``UID STORE +FLAGS.SILENT (flag)`` on the given UIDs."""
    response = await client.uid("store", ",".join(str(u) for u in uids), "+FLAGS.SILENT", f"({flag})")
    _check(response, mailbox, f"UID STORE {flag}")


async def find_special_use(client: aioimaplib.IMAP4, mailbox: str, flag: str) -> str | None:
    """The name of the folder with a special-use flag such as \\Drafts, or None. Servers that offer
    SPECIAL-USE are asked for the flags (``LIST "" "*" RETURN (SPECIAL-USE)``: Cyrus shows them only
    then); others may still show them in a plain LIST (Dovecot does)."""
    asks = ['"*" RETURN (SPECIAL-USE)', "*"] if _offers(client, "SPECIAL-USE") else ["*"]
    for pattern in asks:
        response = await client.list('""', pattern)
        if response.result != "OK":
            continue
        for line in response.lines:
            match = _LIST.match(bytes(line))
            if match and flag.encode().lower() in match.group("flags").lower().split():
                return unquote(match.group("name").decode())
    return None


# The names mail programs commonly give these folders (modified UTF-7 as on the wire), tried in the
# personal namespace when the server marks none with a special-use flag.
COMMON_NAMES = {
    "\\Drafts": ("Drafts", "Draft", "Entw&APw-rfe", "Brouillons", "Borradores", "Bozze", "Concepten"),
    "\\Sent": ("Sent", "Sent Items", "Sent Messages", "Sent Mail", "Gesendet", "Gesendete Objekte",
                "Envoy&AOk-s", "Enviados", "Inviata", "Verzonden"),
}
_NAMESPACE_PERSONAL = re.compile(rb'^\(\("([^"]*)" (?:"([^"]*)"|NIL)')


def _offers(client: aioimaplib.IMAP4, capability: str) -> bool:
    try:
        return bool(client.has_capability(capability))
    except Exception:  # capabilities unknown: assume not
        return False


async def personal_namespace(client: aioimaplib.IMAP4) -> tuple[str, str]:
    """The personal namespace's prefix and separator (``("", "/")`` on most servers, ``("INBOX.", ".")``
    on some); ``("", "/")`` when the server does not say."""
    if _offers(client, "NAMESPACE"):
        response = await client.namespace()
        if response.result == "OK":
            for line in response.lines:
                match = _NAMESPACE_PERSONAL.match(bytes(line).removeprefix(b"NAMESPACE "))
                if match:
                    return match.group(1).decode(), (match.group(2) or b"/").decode()
    return "", "/"


async def find_folder(client: aioimaplib.IMAP4, mailbox: str, flag: str, configured: str | None) -> str | None:
    """The folder for ``flag`` (\\Drafts, \\Sent): the configured name; else the one with that special-use
    flag; else one of :data:`COMMON_NAMES` in the personal namespace (LIST, case-insensitive); else None."""
    if configured:
        return configured
    found = await find_special_use(client, mailbox, flag)
    if found:
        return found
    prefix, _separator = await personal_namespace(client)
    response = await client.list('""', quote(prefix + "*") if prefix else "*")
    names: dict[str, str] = {}
    for line in _check(response, mailbox, "LIST"):
        match = _LIST.match(line)
        if match and b"\\noselect" not in match.group("flags").lower():
            name = unquote(match.group("name").decode())
            names.setdefault(name.lower(), name)
    for candidate in COMMON_NAMES.get(flag, ()):
        for name in (prefix + candidate, candidate):
            if name.lower() in names:
                return names[name.lower()]
    return None


def missing_folder(mb_name: str, flag: str) -> Misconfigured:
    """The error for a mailbox without a Drafts (Sent) folder, naming the variable that fixes it."""
    what = flag.strip("\\")
    variable = f"IMAP_{mb_name.upper()}_{what.upper()}"
    return Misconfigured(f"IMAP {mb_name}: no {what} folder found (no special-use {flag} folder and none of the "
                         f"usual names); create one or set {variable} to the folder's name",
                         dependency=f"imap:{mb_name}")


async def append(client: aioimaplib.IMAP4, mailbox: str, raw: bytes, folder: str, flags: str) -> int | None:
    """APPEND a message; returns its UID when the server says (UIDPLUS)."""
    lines = _check(await client.append(raw, mailbox=quote(folder), flags=flags), mailbox, f"APPEND {folder}")
    for line in lines:
        match = _APPENDUID.search(line)
        if match:
            return int(match.group(1))
    return None


async def until_lost(step: Awaitable[T], lost: asyncio.Event, timeout: float, mailbox: str, what: str) -> T:
    """``step``'s result, or Dropped as soon as ``lost`` is set (the transport said the server closed the
    connection: aioimaplib would leave the command waiting for its whole timeout) or ``timeout`` passes."""
    task = asyncio.ensure_future(step)
    waiter = asyncio.ensure_future(lost.wait())
    try:
        done, _ = await asyncio.wait({task, waiter}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    except BaseException:
        task.cancel()
        raise
    finally:
        waiter.cancel()
    if task in done:
        failure = task.exception()
        if failure is None:
            return task.result()
        if not (lost.is_set() or isinstance(failure, ConnectionGone)):
            raise failure
        raise Dropped(f"IMAP {mailbox}: {what}: the server closed the connection",
                      dependency=f"imap:{mailbox}") from failure
    task.cancel()
    if lost.is_set():
        raise Dropped(f"IMAP {mailbox}: {what}: the server closed the connection", dependency=f"imap:{mailbox}")
    raise Dropped(f"IMAP {mailbox}: {what}: no answer within {timeout:g} s", dependency=f"imap:{mailbox}")


@contextlib.contextmanager
def guard(mailbox: str, what: str) -> Iterator[None]:
    """Turn driver exceptions (timeouts, resets, aioimaplib aborts) into ImapError."""
    try:
        yield
    except (OSError, TimeoutError, aioimaplib.AioImapException, asyncio.IncompleteReadError) as exc:
        raise unavailable(mailbox, f"{what} failed ({type(exc).__name__})") from exc


def quote(name: str) -> str:
    """An IMAP quoted string (folder names may hold spaces)."""
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def unquote(name: str) -> str:
    """The inverse of ``quote`` for names in LIST answers."""
    if len(name) >= 2 and name[0] == name[-1] == '"':
        return name[1:-1].replace('\\"', '"').replace("\\\\", "\\")
    return name


_INTERNALDATE = re.compile(rb'INTERNALDATE "([^"]{10,40})"')


@dataclass(frozen=True)
class HeaderFetch:
    """One message's INTERNALDATE (None when unreadable) and the header fields asked for."""

    internaldate: datetime | None
    header: bytes


async def fetch_headers(client: aioimaplib.IMAP4, mailbox: str, uids: list[int],
                        fields: str = "MESSAGE-ID") -> dict[int, HeaderFetch]:
    """INTERNALDATE and ``BODY.PEEK[HEADER.FIELDS (fields)]`` of the given UIDs (\\Seen untouched).
    Servers may put UID and INTERNALDATE before or after the literal: both sides are read."""
    if not uids:
        return {}
    response = await client.uid("fetch", ",".join(str(u) for u in uids),
                                f"(UID INTERNALDATE BODY.PEEK[HEADER.FIELDS ({fields})])")
    if response.result != "OK":
        raise unavailable(mailbox, f"UID FETCH headers answered {response.result}")
    found: dict[int, HeaderFetch] = {}
    lines = response.lines
    for i, line in enumerate(lines):
        if isinstance(line, bytearray) or not _LITERAL.search(bytes(line)):
            continue
        literal = lines[i + 1] if i + 1 < len(lines) and isinstance(lines[i + 1], bytearray) else None
        tail = bytes(lines[i + 2]) if literal is not None and i + 2 < len(lines) \
            and not isinstance(lines[i + 2], bytearray) else b""
        around = bytes(line) + b" " + tail
        uid = _FETCH_UID.search(around)
        if uid is None or literal is None:
            continue
        date = _INTERNALDATE.search(around)
        found[int(uid.group(1))] = HeaderFetch(_internaldate(date.group(1)) if date else None, bytes(literal))
    return found


def _internaldate(value: bytes) -> datetime | None:
    """``17-Jul-1996 02:44:25 -0700`` (the day may be space-padded) → an aware datetime, else None."""
    try:
        return datetime.strptime(value.decode("ascii").strip(), "%d-%b-%Y %H:%M:%S %z")
    except (ValueError, UnicodeDecodeError):
        return None
