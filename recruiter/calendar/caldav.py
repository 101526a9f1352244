"""Where tentative interview events go.

A :class:`CalendarSink` stores an iCalendar object (built by :func:`recruiter.calendar.ics.build_event`, re-exported
here) under its UID — :class:`IcsDirCalendar` as a ``.ics`` file, :class:`CalDavCalendar` on a CalDAV
server. Putting the same UID again replaces the event; it never adds a second one.

``busy`` answers what is already there at a time (:mod:`recruiter.calendar.conflicts`): the ``.ics``
directory reads its own files; CalDAV asks the owner's calendars (all of the account, or those listed)
with a time-range REPORT, recurrences expanded.
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import math
import os
import re
import tempfile
import threading
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, cast, runtime_checkable
from urllib.parse import quote

from recruiter.calendar.conflicts import MARGIN, Busy, DaySpan, busy_in
from recruiter.calendar.ics import build_event, event_uid
from recruiter.errors import DependencyUnavailable, PermanentError, RecruiterError

if TYPE_CHECKING:  # caldav and its HTTP client weigh ~15 MB: loaded only when CalDAV is configured
    from caldav.aio import AsyncDAVClient

__all__ = [
    "CalDavCalendar", "CalendarSink", "IcsDirCalendar", "build_event", "event_uid", "safe_file_name",
]

_SAFE_NAME = re.compile(r"[^A-Za-z0-9@._-]")
_T = TypeVar("_T")


@runtime_checkable
class CalendarSink(Protocol):
    """Where events go. ``put_event`` with a UID already there replaces that event."""

    async def put_event(self, uid: str, ics: bytes) -> str:
        """Store ``ics`` under ``uid``; return a reference (file path or URL)."""
        ...

    async def has_event(self, uid: str) -> bool:
        """Whether an event with this UID is stored."""
        ...

    async def busy(self, start: datetime, end: datetime, *, ignore_uids: frozenset[str] = frozenset()) -> list[Busy]:
        """Events already there that overlap [start, end) (aware), except those whose UID is in ``ignore_uids``;
        raises DependencyUnavailable / PermanentError when the calendar cannot be asked."""
        ...

    async def aclose(self) -> None:
        """Release connections."""
        ...


def safe_file_name(uid: str) -> str:
    """A file name for ``uid``: unsafe characters replaced, a hash added when anything changed."""
    name = _SAFE_NAME.sub("_", uid).lstrip(".")[:120]
    if name != uid or not name:
        name = f"{name}-{hashlib.sha256(uid.encode()).hexdigest()[:12]}"
    return f"{name}.ics"


class IcsDirCalendar:
    """Events as ``<directory>/<uid>.ics`` files, written atomically (temp file + rename)."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        # file name -> ((mtime_ns, size), its calendar, the days it touches): each file is parsed once, not
        # at every conflict check (a backlog writes thousands of events; parsing all per slot is quadratic)
        self._parsed: dict[str, tuple[tuple[int, int], Any, DaySpan]] = {}
        self._parsed_lock = threading.Lock()  # checks run in threads, several at once

    def path_for(self, uid: str) -> Path:
        """The file that holds the event ``uid``."""
        return self.directory / safe_file_name(uid)

    def _write(self, uid: str, ics: bytes) -> str:
        self.directory.mkdir(parents=True, exist_ok=True)
        target = self.path_for(uid)
        fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".tmp-", suffix=".ics")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(ics)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return str(target)

    async def put_event(self, uid: str, ics: bytes) -> str:
        """Write (or overwrite) the event's file; return its path."""
        try:
            return await asyncio.to_thread(self._write, uid, ics)
        except OSError as exc:
            raise DependencyUnavailable(
                f"cannot write event file in {self.directory}: {exc.strerror or exc}", dependency="ics_dir"
            ) from exc

    async def has_event(self, uid: str) -> bool:
        """Whether the event's file exists."""
        return await asyncio.to_thread(self.path_for(uid).is_file)

    def _read_near(self, start: datetime, end: datetime) -> list[Any]:
        """The calendars of the directory's files that may have an event in [start, end); a file is parsed
        again only when its modification time or size changed."""
        with self._parsed_lock:
            return self._read_near_locked(start, end)

    def _read_near_locked(self, start: datetime, end: datetime) -> list[Any]:
        import icalendar

        calendars: list[Any] = []
        if not self.directory.is_dir():
            self._parsed.clear()
            return calendars
        seen: set[str] = set()
        for path in sorted(self.directory.glob("*.ics")):
            if path.name.startswith(".tmp-"):
                continue
            try:
                info = path.stat()
                stamp = (info.st_mtime_ns, info.st_size)
                cached = self._parsed.get(path.name)
                if cached is None or cached[0] != stamp:
                    calendar = icalendar.Calendar.from_ical(path.read_bytes())
                    cached = self._parsed[path.name] = (stamp, calendar, DaySpan.of(calendar))
            except (ValueError, OSError):  # a file being replaced, or not iCalendar: not an event of ours
                continue
            seen.add(path.name)
            if cached[2].may_touch(start, end):
                calendars.append(cached[1])
        for gone in set(self._parsed) - seen:
            self._parsed.pop(gone, None)
        return calendars

    async def busy(self, start: datetime, end: datetime, *, ignore_uids: frozenset[str] = frozenset()) -> list[Busy]:
        """The events of this directory's ``.ics`` files that overlap [start, end)."""
        try:
            calendars = await asyncio.to_thread(self._read_near, start, end)
        except OSError as exc:
            raise DependencyUnavailable(
                f"cannot read event files in {self.directory}: {exc.strerror or exc}", dependency="ics_dir"
            ) from exc
        return busy_in(calendars, start, end, ignore_uids=ignore_uids)

    async def aclose(self) -> None:
        """Nothing to release."""


async def _resolved(value: Any) -> Any:
    """caldav's domain objects answer a value or, on an async client, a coroutine: await the latter."""
    return await value if inspect.isawaitable(value) else value


def _slug(name: str) -> str:
    """A collection id for the calendar ``name`` (stable, so two creators race for the same URL)."""
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:40]
    return f"{slug or 'calendar'}-{hashlib.sha256(name.encode()).hexdigest()[:8]}"


def _status_error(status: int, what: str, retry_after: float | None = None) -> Exception:
    """The error for a CalDAV answer ``status`` (not 2xx)."""
    if status >= 500 or status in (408, 429):
        return DependencyUnavailable(
            f"CalDAV {what}: HTTP {status}", dependency="caldav", status=status, retry_after=retry_after
        )
    return PermanentError(f"CalDAV {what}: HTTP {status}", reason="caldav_4xx", status=status)


def _dav_error() -> type[Exception]:
    """caldav's DAVError, imported on first use (only a configured CalDAV calendar needs it)."""
    from caldav.lib.error import DAVError

    return DAVError


def _driver_error(exc: Exception, what: str) -> Exception:
    """Translate an exception of the caldav library or its HTTP client."""
    status = getattr(exc, "status", None)
    if isinstance(exc, _dav_error()) and status is not None:
        retry_after = getattr(exc, "retry_after_seconds", None)
        return _status_error(status, what, retry_after)
    detail = " ".join(str(exc).split())[:300]
    return DependencyUnavailable(f"CalDAV {what}: {type(exc).__name__}: {detail}", dependency="caldav")


class CalDavCalendar:
    """Events on a CalDAV server, in the calendar whose display name is ``calendar_name``.

    Uses ``caldav.aio.AsyncDAVClient``. The calendar is looked up once (created if missing, under a
    collection id derived from its name) and cached. Each event lives at ``<calendar>/<uid>.ics``,
    so a second PUT of the same UID replaces the first.
    """

    def __init__(
        self,
        url: str,
        username: str | None,
        password: str | None,
        calendar_name: str,
        *,
        timeout: float = 30,
        conflict_calendars: Sequence[str] = (),
    ) -> None:
        self.url = url
        self.calendar_name = calendar_name
        self.conflict_calendars = tuple(c.strip() for c in conflict_calendars if c.strip())
        self._username = username
        self._password = password
        self._timeout = timeout
        self._client: AsyncDAVClient | None = None
        self._calendar_url: str | None = None
        self._lock = asyncio.Lock()

    def _get_client(self) -> AsyncDAVClient:
        if self._client is None:
            from caldav.aio import AsyncDAVClient

            self._client = AsyncDAVClient(
                url=self.url,
                username=self._username,
                password=self._password,
                timeout=max(1, math.ceil(self._timeout)),
                enable_rfc6764=False,
                rate_limit_handle=False,
            )
        return self._client

    async def _call(self, what: str, operation: Callable[[], Awaitable[_T]]) -> _T:
        """Run one server interaction with an overall deadline and our error classes."""
        try:
            async with asyncio.timeout(self._timeout * 2):
                return await operation()
        except (RecruiterError, asyncio.CancelledError):
            raise
        except TimeoutError as exc:
            raise DependencyUnavailable(f"CalDAV {what}: timed out", dependency="caldav") from exc
        except Exception as exc:
            if isinstance(exc, OSError | _dav_error()):
                raise _driver_error(exc, what) from exc
            raise

    async def _find(self, principal: Any) -> str | None:
        for calendar in await _resolved(principal.get_calendars()):
            if await _resolved(calendar.get_display_name()) == self.calendar_name:
                return str(calendar.url)
        return None

    async def _find_or_create(self) -> str:
        principal = await self._get_client().get_principal()
        found = await self._find(principal)
        if found is not None:
            return found
        name = self.calendar_name
        try:
            created = await _resolved(principal.make_calendar(name=name, cal_id=_slug(name)))
        except _dav_error():
            # Another replica may have created it meanwhile: look again before giving up.
            found = await self._find(principal)
            if found is None:
                raise
            return found
        return str(created.url)

    async def calendar_url(self) -> str:
        """The calendar's URL, found or created on first use, then cached."""
        async with self._lock:
            if self._calendar_url is None:
                found = await self._call("find calendar", self._find_or_create)
                self._calendar_url = found.rstrip("/") + "/"
            return self._calendar_url

    async def _event_url(self, uid: str) -> str:
        return await self.calendar_url() + quote(safe_file_name(uid), safe="")

    async def put_event(self, uid: str, ics: bytes) -> str:
        """PUT the event at its UID's URL (create or replace); return that URL.

        A 404/409 (the cached calendar was deleted meanwhile) triggers one fresh lookup and retry.
        """
        body = ics.decode("utf-8")
        for attempt in (1, 2):
            url = await self._event_url(uid)
            status = await self._put(url, body)
            if 200 <= status < 300:
                return url
            if status not in (404, 409) or attempt == 2:
                break
            async with self._lock:
                self._calendar_url = None
        raise _status_error(status, "put event")

    async def _put(self, url: str, body: str) -> int:
        headers = {"Content-Type": "text/calendar; charset=utf-8"}
        response = await self._call("put event", lambda: self._get_client().put(url, body, headers))
        return response.status

    async def has_event(self, uid: str) -> bool:
        """Whether the event's URL answers 200 (404: no)."""
        url = await self._event_url(uid)
        response = await self._call("get event", lambda: self._get_client().request(url, "GET"))
        if response.status == 404:
            return False
        if not 200 <= response.status < 300:
            raise _status_error(response.status, "get event")
        return True

    async def _calendars_to_check(self) -> list[Any]:
        """The calendars ``busy`` asks: every calendar of the account, or those CALDAV_CONFLICT_CALENDARS names
        (by display name, URL or path)."""
        client = self._get_client()
        principal = await client.get_principal()
        every = list(await _resolved(principal.get_calendars()))
        if not self.conflict_calendars:
            return every
        chosen: dict[str, Any] = {}
        for wanted in self.conflict_calendars:
            if "/" in wanted:
                target = wanted.rstrip("/") + "/"
                match = [c for c in every if str(c.url) == target or str(c.url).endswith(target)]
                if not match and target.startswith(("http://", "https://")):
                    from caldav.collection import Calendar

                    match = [Calendar(client=cast(Any, client), url=target)]  # dual-mode: the async client works
            else:
                match = [c for c in every if await _resolved(c.get_display_name()) == wanted]
            if not match:
                raise PermanentError(f"CalDAV conflicts: no calendar {wanted!r} (CALDAV_CONFLICT_CALENDARS)",
                                     reason="caldav_no_calendar")
            for calendar in match:
                chosen.setdefault(str(calendar.url), calendar)
        return list(chosen.values())

    async def _busy(self, start: datetime, end: datetime, ignore_uids: frozenset[str]) -> list[Busy]:
        import icalendar

        found: list[Any] = []
        for calendar in await self._calendars_to_check():
            # Unexpanded: the server's time-range filter finds a recurring event by any of its occurrences,
            # and busy_in expands each master itself (the same code as for .ics files).
            results = await _resolved(calendar.search(start=start - MARGIN, end=end + MARGIN, event=True,
                                                      expand=False))
            for item in results:
                data = getattr(item, "data", None)
                if not data:
                    continue
                try:
                    found.append(icalendar.Calendar.from_ical(data))
                except ValueError:
                    continue
        return busy_in(found, start, end, ignore_uids=ignore_uids)

    async def busy(self, start: datetime, end: datetime, *, ignore_uids: frozenset[str] = frozenset()) -> list[Busy]:
        """Events on the owner's calendars that overlap [start, end): a calendar-query REPORT with a
        VEVENT time-range filter per calendar, recurrences expanded here."""
        return await self._call("search events", lambda: self._busy(start, end, ignore_uids))

    async def aclose(self) -> None:
        """Close the HTTP session."""
        client, self._client = self._client, None
        if client is not None:
            await client.close()
