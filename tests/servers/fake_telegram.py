"""A loopback fake of the Telegram Bot API, over real HTTP, for tests.

It answers ``POST /bot<token>/<method>`` with form-encoded or JSON bodies the way python-telegram-bot
sends them (form fields, nested objects JSON-encoded) for getMe, sendMessage, editMessageText,
editMessageReplyMarkup and deleteMessage; records every call; validates HTML text roughly like the
real API (unknown or unbalanced tags and bare ``&`` → 400 "can't parse entities", more than 4096
characters → 400 "message is too long"); and can be scripted to fail.
"""

from __future__ import annotations

import html
import json
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl

import pytest

TOKEN = "123456:TEST-token-abc"
BOT_USER = {"id": 123456, "is_bot": True, "first_name": "Recruiter", "username": "recruiter_test_bot"}
MAX_TEXT = 4096
ALLOWED_TAGS = {
    "b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "span", "tg-spoiler",
    "a", "tg-emoji", "code", "pre", "blockquote", "tg-time",
}
_TAG_RE = re.compile(r"<(/?)([a-zA-Z][\w-]*)((?:\s+[\w-]+(?:\s*=\s*(?:\"[^\"]*\"|'[^']*'|[^\s>]+))?)*)\s*>")
_ENTITY_RE = re.compile(r"&(lt|gt|amp|quot|#\d{1,7}|#x[0-9a-fA-F]{1,6});")
_JSON_FIELDS = ("reply_markup", "link_preview_options", "entities", "reply_parameters")


class ApiError(Exception):
    """An error answer: HTTP status, description and optional ``parameters``."""

    def __init__(self, status: int, description: str, parameters: dict[str, Any] | None = None) -> None:
        super().__init__(description)
        self.status = status
        self.description = description
        self.parameters = parameters


def utf16_len(text: str) -> int:
    """Length as Telegram counts it (UTF-16 code units)."""
    return len(text.encode("utf-16-le")) // 2


def parse_html(text: str) -> str:
    """The plain text of a Telegram-HTML message, or ApiError(400) as the real API would answer."""
    out: list[str] = []
    stack: list[str] = []
    pos = 0
    while pos < len(text):
        char = text[pos]
        if char == "<":
            match = _TAG_RE.match(text, pos)
            if match is None:
                raise _parse_error(f'Unclosed start tag at byte offset {len(text[:pos].encode())}')
            closing, name = match.group(1), match.group(2).lower()
            if name not in ALLOWED_TAGS:
                offset = len(text[:pos].encode())
                raise _parse_error(f'Unsupported start tag "{name}" at byte offset {offset}')
            if closing:
                if not stack or stack[-1] != name:
                    raise _parse_error(f'Can\'t find end tag corresponding to start tag "{name}"')
                stack.pop()
            else:
                stack.append(name)
            pos = match.end()
        elif char == "&":
            match = _ENTITY_RE.match(text, pos)
            if match is None:
                raise _parse_error(f"Unsupported HTML entity at byte offset {len(text[:pos].encode())}")
            out.append(html.unescape(match.group(0)))
            pos = match.end()
        elif char == ">":
            raise _parse_error(f"Unexpected end tag at byte offset {len(text[:pos].encode())}")
        else:
            out.append(char)
            pos += 1
    if stack:
        raise _parse_error(f'Can\'t find end tag corresponding to start tag "{stack[-1]}"')
    return "".join(out)


def _parse_error(detail: str) -> ApiError:
    return ApiError(400, f"Bad Request: can't parse entities: {detail}")


@dataclass(frozen=True)
class Status:
    """Answer the next matching call with this HTTP status (one-shot)."""

    status: int
    description: str | None = None
    retry_after: int | None = None
    method: str | None = None  # None: the next call other than getMe


@dataclass(frozen=True)
class Delay:
    """Sleep this long before answering the next matching call normally (for timeouts)."""

    seconds: float
    method: str | None = None


@dataclass(frozen=True)
class Drop:
    """Close the connection without answering the next matching call."""

    method: str | None = None


@dataclass(frozen=True)
class Late:
    """Act on the next matching call (the message is delivered), then answer only after ``seconds``: the
    client has given up by then (a slow network, a proxy) though Telegram did what it was asked."""

    seconds: float
    method: str | None = None


@dataclass(frozen=True)
class ActThenDrop:
    """Act on the next matching call, then close the connection without answering."""

    method: str | None = None


Scripted = Status | Delay | Drop | Late | ActThenDrop


class FakeTelegram:
    """State and behaviour of the fake; the HTTP handler calls :meth:`handle`."""

    Status = Status
    Delay = Delay
    Drop = Drop
    Late = Late
    ActThenDrop = ActThenDrop

    def __init__(self) -> None:
        self.token = TOKEN
        self.base_url = ""
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.accepted: list[tuple[str, dict[str, Any]]] = []
        self.chats: dict[str, dict[int, dict[str, Any]]] = {}
        self._script: list[Scripted] = []
        self._fail_all: int | None = None
        self._next_id = 1
        self._lock = threading.Lock()

    # --- test-facing API -------------------------------------------------------------------
    def script(self, *items: Scripted) -> None:
        """Queue one-shot behaviours, consumed in order by the calls they match."""
        with self._lock:
            self._script.extend(items)

    def fail_all(self, status: int | None) -> None:
        """Answer every call with ``status`` until called again with None."""
        with self._lock:
            self._fail_all = status

    def messages(self) -> list[dict[str, Any]]:
        """The params of every accepted sendMessage (reply_markup etc. decoded from JSON)."""
        with self._lock:
            return [dict(p) for m, p in self.accepted if m == "sendMessage"]

    def calls_to(self, method: str) -> list[dict[str, Any]]:
        """The params of every call to ``method`` (accepted or not)."""
        with self._lock:
            return [dict(p) for m, p in self.calls if m == method]

    # --- request handling ---------------------------------------------------------------------
    def take_scripted(self, method: str) -> Scripted | None:
        """The first queued behaviour that matches ``method``, removed from the queue."""
        with self._lock:
            for index, item in enumerate(self._script):
                if item.method == method or (item.method is None and method != "getMe"):
                    return self._script.pop(index)
            return None

    def handle(self, token: str, method: str, params: dict[str, Any], scripted: Scripted | None) -> Any:
        """Record the call and return its ``result`` or raise ApiError."""
        with self._lock:
            self.calls.append((method, params))
            if token != self.token:
                raise ApiError(401, "Unauthorized")
            if self._fail_all is not None:
                raise ApiError(self._fail_all, _default_description(self._fail_all))
            if isinstance(scripted, Status):
                extra = {"retry_after": scripted.retry_after} if scripted.retry_after is not None else None
                raise ApiError(scripted.status, scripted.description or _default_description(scripted.status),
                               extra)
            handler = getattr(self, f"_m_{method}", None)
            if handler is None:
                raise ApiError(404, "Not Found")
            result = handler(params)
            self.accepted.append((method, params))
            return result

    def _m_getMe(self, params: dict[str, Any]) -> dict[str, Any]:
        return dict(BOT_USER)

    def _message(self, chat_id: str, message_id: int, text: str, markup: Any) -> dict[str, Any]:
        chat_num = int(chat_id) if chat_id.lstrip("-").isdigit() else 1000
        message: dict[str, Any] = {
            "message_id": message_id, "date": int(time.time()), "text": text,
            "chat": {"id": chat_num, "type": "private" if chat_num > 0 else "group"},
            "from": dict(BOT_USER),
        }
        if markup:
            message["reply_markup"] = markup
        return message

    def _m_sendMessage(self, params: dict[str, Any]) -> dict[str, Any]:
        chat_id = _required(params, "chat_id")
        text = _checked_text(params)
        _check_markup(params.get("reply_markup"))
        message_id, self._next_id = self._next_id, self._next_id + 1
        message = self._message(chat_id, message_id, text, params.get("reply_markup"))
        self.chats.setdefault(chat_id, {})[message_id] = message
        return message

    def _stored(self, params: dict[str, Any], action: str) -> dict[str, Any]:
        chat = self.chats.get(_required(params, "chat_id"), {})
        message = chat.get(int(_required(params, "message_id")))
        if message is None:
            raise ApiError(400, f"Bad Request: message to {action} not found")
        return message

    def _m_editMessageText(self, params: dict[str, Any]) -> dict[str, Any]:
        message = self._stored(params, "edit")
        text = _checked_text(params)
        markup = params.get("reply_markup")
        _check_markup(markup)
        if text == message["text"] and markup == message.get("reply_markup"):
            raise ApiError(400, "Bad Request: message is not modified: specified new message content "
                                "and reply markup are exactly the same as a current content and reply "
                                "markup of the message")
        message["text"] = text
        message.pop("reply_markup", None)
        if markup:
            message["reply_markup"] = markup
        message["edit_date"] = int(time.time())
        return message

    def _m_editMessageReplyMarkup(self, params: dict[str, Any]) -> dict[str, Any]:
        message = self._stored(params, "edit")
        markup = params.get("reply_markup")
        _check_markup(markup)
        message.pop("reply_markup", None)
        if markup:
            message["reply_markup"] = markup
        return message

    def _m_deleteMessage(self, params: dict[str, Any]) -> bool:
        self._stored(params, "delete")
        del self.chats[params["chat_id"]][int(params["message_id"])]
        return True


def _default_description(status: int) -> str:
    return {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden: bot was blocked by the user",
            404: "Not Found", 429: "Too Many Requests: retry later", 500: "Internal Server Error",
            502: "Bad Gateway"}.get(status, f"Error {status}")


def _required(params: dict[str, Any], name: str) -> str:
    value = params.get(name)
    if value is None or value == "":
        problem = "is empty" if name == "text" else "is required"
        raise ApiError(400, f"Bad Request: {name} {problem}")
    return str(value)


def _checked_text(params: dict[str, Any]) -> str:
    text = _required(params, "text")
    mode = str(params.get("parse_mode") or "").lower()
    plain = parse_html(text) if mode == "html" else text
    if not plain.strip():
        raise ApiError(400, "Bad Request: message text is empty")
    if utf16_len(plain) > MAX_TEXT:
        raise ApiError(400, "Bad Request: message is too long")
    return plain


def _check_markup(markup: Any) -> None:
    if markup is None:
        return
    rows = markup.get("inline_keyboard") if isinstance(markup, dict) else None
    if not isinstance(rows, list):
        raise ApiError(400, "Bad Request: can't parse reply keyboard markup JSON object")
    for row in rows:
        for button in row:
            if not button.get("text"):
                raise ApiError(400, "Bad Request: text buttons are unallowed in the inline keyboard")
            url = button.get("url")
            if url is not None and not re.match(r"^(https?|tg)://\S+$", url):
                raise ApiError(400, f"Bad Request: inline keyboard button URL '{url}' is invalid")


def decode_body(content_type: str, body: bytes) -> dict[str, Any]:
    """Form or JSON body → params; the JSON-encoded nested fields decoded."""
    if content_type.startswith("application/json"):
        params: dict[str, Any] = json.loads(body or b"{}")
    else:
        params = dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
    for name in _JSON_FIELDS:
        if isinstance(params.get(name), str):
            try:
                params[name] = json.loads(params[name])
            except ValueError:
                raise ApiError(400, f"Bad Request: can't parse {name} JSON object") from None
    return params


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes on a kept-alive connection: with Nagle's algorithm on,
    # the body waits ~40 ms for the client's delayed ACK, a delay the real Bot API does not add.
    disable_nagle_algorithm = True
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""

    def _answer(self, status: int, payload: dict[str, Any]) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        self.do_POST()

    def do_POST(self) -> None:
        fake = self.server.fake
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        match = re.fullmatch(r"/bot([^/]+)/(\w+)", self.path.split("?", 1)[0])
        if match is None:
            self._answer(404, {"ok": False, "error_code": 404, "description": "Not Found"})
            return
        token, method = match.groups()
        scripted = fake.take_scripted(method)
        if isinstance(scripted, Drop):
            self.close_connection = True
            self.connection.shutdown(2)
            return
        if isinstance(scripted, Delay):
            time.sleep(scripted.seconds)
        try:
            params = decode_body(self.headers.get("Content-Type", ""), body)
            result = fake.handle(token, method, params, scripted)
        except ApiError as exc:
            payload: dict[str, Any] = {"ok": False, "error_code": exc.status, "description": exc.description}
            if exc.parameters:
                payload["parameters"] = exc.parameters
            self._answer(exc.status, payload)
            return
        if isinstance(scripted, ActThenDrop):
            self.close_connection = True
            self.connection.shutdown(2)
            return
        if isinstance(scripted, Late):
            time.sleep(scripted.seconds)
        self._answer(200, {"ok": True, "result": result})


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    fake: FakeTelegram


@pytest.fixture
def fake_telegram() -> Iterator[FakeTelegram]:
    """A fresh fake Bot API on a free loopback port for each test."""
    fake = FakeTelegram()
    server = _Server(("127.0.0.1", 0), _Handler)
    server.fake = fake
    fake.base_url = f"http://127.0.0.1:{server.server_address[1]}/bot"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), name="fake-telegram", daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
