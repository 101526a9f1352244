"""Telling the owner: a Telegram message with URL buttons, or the same card on stdout.

:class:`TelegramNotifier` drives python-telegram-bot's ``telegram.Bot`` (which never retries by
itself) and translates its errors into ours:

- ``RetryAfter`` (429) → :class:`TransientError` with ``retry_after`` seconds,
- ``TimedOut`` / ``NetworkError`` after the request was written (a read timeout, the connection reset
  or closed before the answer) → :class:`MaybeDone`: Telegram may have acted; never sent again,
- other ``TimedOut`` / ``NetworkError`` (5xx, refused, connect or pool timeout) → :class:`DependencyUnavailable`,
- ``BadRequest`` / ``Forbidden`` / ``InvalidToken`` and other 4xx → :class:`PermanentError`
  (``reason="telegram_4xx"``).

The bot token is part of every Bot API URL. It is scrubbed from our error messages, the library's
exception chain is dropped when it mentions the token, and a logging filter redacts it from the
records of ``httpx`` (which logs each request URL at INFO) and ``telegram`` (which logs the base URL
at DEBUG).
"""

from __future__ import annotations

import contextvars
import html
import itertools
import logging
import re
import warnings
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol, TextIO, TypeVar, runtime_checkable
from urllib.parse import quote

from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, LinkPreviewOptions, Message
from telegram import error as tg_error
from telegram.constants import ParseMode
from telegram.request import HTTPXRequest
from telegram.warnings import PTBDeprecationWarning

from recruiter.errors import DependencyUnavailable, MaybeDone, PermanentError, TransientError

_T = TypeVar("_T")
_LAST_STATUS: contextvars.ContextVar[int | None] = contextvars.ContextVar("telegram_status", default=None)
_REDACTED = "<redacted>"
# Logger filters apply only to records logged on that very logger, so name each one that can see URLs.
_LOGGERS = ("httpx", "telegram", "telegram.Bot", "telegram.ext.ExtBot",
            "telegram.request.BaseRequest", "telegram.request.HTTPXRequest")
# httpx errors that mean the request was written and its answer never came: Telegram may have acted.
_AFTER_WRITE = frozenset({"ReadTimeout", "ReadError", "RemoteProtocolError"})
# Telegram objects are immutable once built: one for every message instead of one per call.
_NO_LINK_PREVIEW = LinkPreviewOptions(is_disabled=True)


@dataclass(frozen=True)
class Button:
    """One inline URL button."""

    text: str
    url: str


@runtime_checkable
class Notifier(Protocol):
    """Where cards go. Each send returns a reference to the message (e.g. ``"<chat>:<message>"``)."""

    async def start(self) -> None:
        """Connect and check the credentials."""
        ...

    async def send_card(self, text: str, buttons: Sequence[Button]) -> str:
        """Send an HTML card with URL buttons in one row."""
        ...

    async def send_text(self, text: str) -> str:
        """Send a short HTML message without buttons (alerts, recovery notes)."""
        ...

    async def edit_card(self, ref: str, text: str) -> None:
        """Replace the text of a sent card (``ref`` from ``send_card``) and remove its buttons."""
        ...

    async def aclose(self) -> None:
        """Release connections."""
        ...


class _RedactFilter(logging.Filter):
    """Replaces registered secrets in log records of the HTTP and Telegram libraries.

    The forms to look for (each secret raw and URL-quoted) are worked out once, when a secret is
    registered, not for every record."""

    def __init__(self) -> None:
        super().__init__("recruiter-redact")
        self.secrets: set[str] = set()
        self._forms: tuple[str, ...] = ()

    def add(self, secret: str) -> None:
        if secret and secret not in self.secrets:
            self.secrets.add(secret)
            # Longest first: a quoted form that contains the raw one is replaced whole.
            self._forms = tuple(sorted({f for s in self.secrets for f in _forms(s)}, key=len, reverse=True))

    def filter(self, record: logging.LogRecord) -> bool:
        if self._forms:
            message = record.getMessage()
            if any(form in message for form in self._forms):
                for form in self._forms:
                    message = message.replace(form, _REDACTED)
                record.msg, record.args = message, None
        return True


_FILTER = _RedactFilter()


def _install_redaction(secret: str) -> None:
    _FILTER.add(secret)
    for name in _LOGGERS:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)


def _forms(secret: str) -> set[str]:
    """How ``secret`` may appear in a text: raw, and URL-quoted with or without ``/`` kept."""
    return {secret, quote(secret, safe=""), quote(secret)}


def redact(text: str, secrets: set[str] | frozenset[str]) -> str:
    """``text`` with every secret (raw or URL-quoted) replaced by ``<redacted>``."""
    for secret in secrets:
        if secret:
            for form in _forms(secret):
                text = text.replace(form, _REDACTED)
    return text


def _mentions(exc: BaseException, secret: str) -> bool:
    """Whether any exception in the chain carries ``secret`` in its text."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if redact(f"{current!s} {current!r}", {secret}) != f"{current!s} {current!r}":
            return True
        current = current.__cause__ or current.__context__
    return False


def _retry_after_seconds(exc: tg_error.RetryAfter) -> float:
    """The wait a 429 asks for, in seconds. python-telegram-bot 22 answers ``retry_after`` as a timedelta
    when the PTB_TIMEDELTA environment variable opts in, else as seconds with a PTBDeprecationWarning: this
    reads either, so the service needs (and sets) no such variable."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PTBDeprecationWarning)
        value = exc.retry_after
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


def _translate(exc: tg_error.TelegramError, what: str, token: str) -> Exception:
    """Our error for a python-telegram-bot error, with the token scrubbed from the text."""
    if isinstance(exc, tg_error.RetryAfter):
        # Written here, not taken from the library: its text follows PTB_TIMEDELTA ("0:00:07" or "7 seconds").
        seconds = _retry_after_seconds(exc)
        return TransientError(f"Telegram {what} failed: RetryAfter: Flood control exceeded. Retry in {seconds:g} "
                              "seconds", dependency="telegram", status=429, retry_after=seconds)
    detail = redact(f"{type(exc).__name__}: {exc.message}", {token})
    message = f"Telegram {what} failed: {detail}"
    if isinstance(exc, tg_error.BadRequest):  # a NetworkError subclass: test it first
        return PermanentError(message, reason="telegram_4xx", status=_LAST_STATUS.get() or 400)
    if isinstance(exc, tg_error.NetworkError) and type(exc.__cause__).__name__ in _AFTER_WRITE:
        return MaybeDone(f"{message} (the request was sent; no answer came)", dependency="telegram")
    if isinstance(exc, tg_error.TimedOut):
        return DependencyUnavailable(message, dependency="telegram")
    if isinstance(exc, tg_error.NetworkError):
        return DependencyUnavailable(message, dependency="telegram", status=_LAST_STATUS.get())
    status = _LAST_STATUS.get() or {tg_error.Forbidden: 403, tg_error.InvalidToken: 401}.get(type(exc))
    return PermanentError(message, reason="telegram_4xx", status=status)


class _StatusRecordingRequest(HTTPXRequest):
    """HTTPXRequest that remembers the last HTTP status in this task's context.

    python-telegram-bot's NetworkError for a 5xx carries the server's description, not the status.
    """

    async def do_request(self, *args: Any, **kwargs: Any) -> tuple[int, bytes]:
        code, payload = await super().do_request(*args, **kwargs)
        _LAST_STATUS.set(code)
        return code, payload


class TelegramNotifier:
    """Cards to one chat through the Bot API (``base_url`` like ``http://host:port/bot``)."""

    def __init__(self, token: str, chat_id: str, *, base_url: str | None = None, timeout: float = 20) -> None:
        if not token:
            raise ValueError("a Telegram bot token is required")
        self.chat_id = chat_id
        self._token = token
        _install_redaction(token)
        request = _StatusRecordingRequest(
            connect_timeout=timeout, read_timeout=timeout, write_timeout=timeout, pool_timeout=timeout
        )
        if base_url:
            self._bot = Bot(token, base_url=base_url, request=request)
        else:
            self._bot = Bot(token, request=request)
        self._started = False

    def __repr__(self) -> str:
        return f"TelegramNotifier(chat_id={self.chat_id!r})"

    async def _call(self, what: str, call: Awaitable[_T]) -> _T:
        _LAST_STATUS.set(None)
        try:
            return await call
        except tg_error.TelegramError as exc:
            failure = exc
        translated = _translate(failure, what, self._token)
        if _mentions(failure, self._token):
            # e.g. Bot.initialize() puts the token in InvalidToken's message: drop the whole chain
            # (raised outside the except block, so not even __context__ keeps it).
            raise translated
        raise translated from failure

    async def start(self) -> None:
        """Initialise the bot (``getMe``); idempotent."""
        if not self._started:
            await self._call("getMe", self._bot.initialize())
            self._started = True

    async def _send(self, text: str, markup: InlineKeyboardMarkup | None) -> str:
        await self.start()
        message: Message = await self._call("sendMessage", self._bot.send_message(
            chat_id=self.chat_id,
            text=text,
            parse_mode=ParseMode.HTML,
            reply_markup=markup,
            link_preview_options=_NO_LINK_PREVIEW,
        ))
        return f"{message.chat.id}:{message.message_id}"

    async def send_card(self, text: str, buttons: Sequence[Button]) -> str:
        """Send ``text`` (Telegram HTML) with the buttons in one row; return ``"<chat>:<message>"``."""
        row = [InlineKeyboardButton(text=b.text, url=b.url) for b in buttons]
        return await self._send(text, InlineKeyboardMarkup([row]) if row else None)

    async def send_text(self, text: str) -> str:
        """Send ``text`` (Telegram HTML) without buttons."""
        return await self._send(text, None)

    async def edit_card(self, ref: str, text: str) -> None:
        """editMessageText on ``"<chat>:<message>"`` with ``text`` (Telegram HTML) and no buttons."""
        chat, _, message_id = ref.rpartition(":")
        if not chat or not message_id.isdigit():
            raise PermanentError(f"not a Telegram message reference: {ref!r}", reason="telegram_ref")
        await self.start()
        await self._call("editMessageText", self._bot.edit_message_text(
            text=text, chat_id=chat, message_id=int(message_id), parse_mode=ParseMode.HTML,
            link_preview_options=_NO_LINK_PREVIEW, reply_markup=None,
        ))

    async def aclose(self) -> None:
        """Shut the bot's HTTP clients down (also after a failed :meth:`start`)."""
        self._started = False
        await self._call("shutdown", self._bot.shutdown())


_TAG = re.compile(r"<[^<>]*>")  # not [^>]: "<<<…" without ">" would be scanned from each "<"


def html_to_plain(text: str) -> str:
    """Telegram HTML → plain text: tags dropped, entities decoded."""
    return html.unescape(_TAG.sub("", text))


class StdoutNotifier:
    """The card as plain text on a stream, buttons listed underneath; for ``recruiter process``."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self._counter = itertools.count(1)

    async def start(self) -> None:
        """Nothing to connect."""

    def _print(self, text: str, buttons: Sequence[Button]) -> str:
        lines = [html_to_plain(text).rstrip()]
        if buttons:
            lines.append("")
            lines.extend(f"[{b.text}] {b.url}" for b in buttons)
        lines.append("-" * 72)
        out = "\n".join(lines) + "\n"
        try:
            self.stream.write(out)
        except UnicodeEncodeError:  # e.g. a latin-1 terminal: degrade, never crash the pipeline
            encoding = getattr(self.stream, "encoding", None) or "ascii"
            self.stream.write(out.encode(encoding, "replace").decode(encoding))
        self.stream.flush()
        return f"stdout:{next(self._counter)}"

    async def send_card(self, text: str, buttons: Sequence[Button]) -> str:
        """Print the card and its buttons; return ``"stdout:<n>"``."""
        return self._print(text, buttons)

    async def send_text(self, text: str) -> str:
        """Print a message; return ``"stdout:<n>"``."""
        return self._print(text, ())

    async def edit_card(self, ref: str, text: str) -> None:
        """Print the card's new text, naming the card it replaces."""
        self._print(f"(card {ref} updated)\n{text}", ())

    async def aclose(self) -> None:
        """Nothing to release."""
