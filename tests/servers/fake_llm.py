"""A loopback stand-in for an OpenAI-compatible chat server (llama-swap, llama.cpp, OpenAI).

Real HTTP on ``127.0.0.1`` in a background thread, speaking enough of the API for the real ``openai``
client: ``POST /v1/chat/completions`` (non-streaming), ``GET /v1/models`` and ``GET /health``.
A request with ``response_format`` is a triage request and gets ``triage_answer(text)`` as JSON; one
without is a draft request and gets ``draft_answer(text)``. ``text`` is the text of the user messages.

Failures are scripted: :meth:`FakeLLM.script` queues one-shot behaviours (an HTTP status, a delay, raw
content) consumed one per request; :meth:`FakeLLM.fail_all` answers every request with a status until
healed, and takes precedence over the script (whose items then wait).
"""

from __future__ import annotations

import json
import re
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

RECRUITER_WORDS = (
    "recruit", "opportunit", "role", "position", "hiring", "talent", "vacature", "stelle", "poste",
)
_MEETING = re.compile(r"^[ \t]*MEETING:[ \t]*(\S+)[ \t]+(\d+)", re.MULTILINE)
_COMPANY = re.compile(r"^[ \t]*Company:[ \t]*(\S.*?)[ \t]*$", re.MULTILINE | re.IGNORECASE)
_ROLE = re.compile(r"^[ \t]*Role:[ \t]*(\S.*?)[ \t]*$", re.MULTILINE | re.IGNORECASE)


@dataclass(frozen=True)
class Status:
    """Answer with this HTTP status. ``body``: a dict (sent as JSON), text, or None for an OpenAI-style
    error object."""

    status: int
    body: dict[str, Any] | str | bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Delay:
    """Wait ``seconds`` (cut short when the server stops), then answer normally."""

    seconds: float


@dataclass(frozen=True)
class Raw:
    """Answer normally, but with ``text`` verbatim as the message content (e.g. broken JSON)."""

    text: str


ScriptItem = Status | Delay | Raw


@dataclass(frozen=True)
class _Reply:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


def user_text(body: dict[str, Any]) -> str:
    """The text of all user messages in a chat request, joined by newlines."""
    parts: list[str] = []
    for message in body.get("messages") or []:
        if not isinstance(message, dict) or message.get("role") != "user":
            continue
        content = message.get("content")
        if isinstance(content, str):
            parts.append(content)
        elif isinstance(content, list):
            parts += [p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text"]
    return "\n".join(parts)


_REMOTE_WORDS = (("hybrid", "hybrid"), ("remote", "remote"), ("on-site", "onsite"), ("onsite", "onsite"))


def _remote(lowered: str) -> str:
    return next((value for word, value in _REMOTE_WORDS if word in lowered), "unknown")


def default_triage_answer(text: str) -> dict[str, Any]:
    """A TRIAGE_JSON_SCHEMA object guessed from keywords and ``MEETING:``/``Company:``/``Role:`` lines."""
    lowered = text.lower()
    recruiter = any(word in lowered for word in RECRUITER_WORDS)
    company_match, role_match = _COMPANY.search(text), _ROLE.search(text)
    company = company_match.group(1)[:200] if company_match else None
    title = f"Call with {company}"[:200] if company else "Call"
    meetings = [
        {"start": start, "duration_minutes": int(minutes), "title": title}
        for start, minutes in _MEETING.findall(text)
    ]
    kind = ("scheduling" if meetings else "outreach") if recruiter else "other"
    summary = f"Recruiter mail from {company or 'an unknown company'}" if recruiter else "Not recruiter mail"
    return {
        "is_recruiter": recruiter,
        "confidence": 0.9 if recruiter else 0.8,
        "kind": kind,
        "company": company,
        "role": role_match.group(1)[:200] if role_match else None,
        "location": None,
        "remote": _remote(lowered),
        "compensation": None,
        "meetings": meetings,
        "summary": summary,
    }


def default_draft_answer(text: str) -> str:
    """A short, polite reply."""
    return (
        "Thank you for reaching out. I am interested in hearing more about the role; "
        "could you share more details?\n\nBest regards"
    )


def _error_body(status: int, message: str) -> bytes:
    error = {"message": message, "type": "server_error" if status >= 500 else "invalid_request_error",
             "param": None, "code": str(status)}
    return json.dumps({"error": error}).encode()


def _encode(body: dict[str, Any] | str | bytes) -> bytes:
    if isinstance(body, dict):
        return json.dumps(body).encode()
    return body.encode() if isinstance(body, str) else body


class FakeLLM:
    """The fake server. ``url`` is ``http://127.0.0.1:PORT``; give clients ``base_url=f"{url}/v1"``."""

    Status = Status
    Delay = Delay
    Raw = Raw

    url: str
    requests: list[dict[str, Any]]
    request_headers: list[dict[str, str]]  # of each chat request, names lower-cased
    triage_answer: Callable[[str], dict[str, Any]]
    draft_answer: Callable[[str], str]

    def __init__(self, model: str = "fake-model") -> None:
        self.model = model
        self.requests = []
        self.request_headers = []
        self.triage_answer = default_triage_answer
        self.draft_answer = default_draft_answer
        self._lock = threading.Lock()
        self._script: deque[ScriptItem] = deque()
        self._fail_status: int | None = None
        self._closing = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._server.fake = self  # type: ignore[attr-defined]
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._serve, name="fake-llm", daemon=True)

    # --- lifecycle --------------------------------------------------------------------------------

    def start(self) -> FakeLLM:
        self._thread.start()
        return self

    def _serve(self) -> None:
        self._server.serve_forever(poll_interval=0.02)  # shutdown() waits up to one poll

    def stop(self) -> None:
        """Stop serving; requests still sleeping in a Delay are woken and dropped."""
        self._closing.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> FakeLLM:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- steering and inspection ------------------------------------------------------------------

    def script(self, *items: ScriptItem) -> None:
        """Queue one-shot behaviours; each request consumes the next one before the default applies."""
        with self._lock:
            self._script.extend(items)

    def fail_all(self, status: int | None) -> None:
        """Answer every request with ``status`` from now on; ``None`` heals."""
        with self._lock:
            self._fail_status = status

    def triage_requests(self) -> list[dict[str, Any]]:
        """The request bodies that asked for structured output (``response_format``)."""
        with self._lock:
            return [r for r in self.requests if "response_format" in r]

    def draft_requests(self) -> list[dict[str, Any]]:
        """The request bodies without ``response_format``."""
        with self._lock:
            return [r for r in self.requests if "response_format" not in r]

    # --- answering (called from handler threads) ---------------------------------------------------

    def _record(self, body: dict[str, Any], headers: dict[str, str]) -> ScriptItem | int | None:
        """Store the request; return the persistent failure status, else the next script item."""
        with self._lock:
            self.requests.append(body)
            self.request_headers.append(headers)
            if self._fail_status is not None:
                return self._fail_status
            return self._script.popleft() if self._script else None

    def chat(self, body: dict[str, Any], headers: dict[str, str] | None = None) -> _Reply:
        step = self._record(body, headers or {})
        if isinstance(step, int):
            return _Reply(step, _error_body(step, f"fake LLM: fail_all({step})"))
        if isinstance(step, Status):
            default = _error_body(step.status, f"fake LLM: scripted {step.status}")
            return _Reply(step.status, default if step.body is None else _encode(step.body), step.headers)
        if isinstance(step, Delay):
            self._closing.wait(step.seconds)
        content = step.text if isinstance(step, Raw) else self._answer(body)
        return _Reply(200, json.dumps(self._completion(body, content)).encode())

    def _answer(self, body: dict[str, Any]) -> str:
        text = user_text(body)
        if "response_format" in body:
            return json.dumps(self.triage_answer(text))
        return self.draft_answer(text)

    def _completion(self, body: dict[str, Any], content: str) -> dict[str, Any]:
        # Like a real server's count without its tokenizer: about four characters per token, plus the
        # chat template's few tokens per message. Counting characters, not JSON bytes: "é" is one.
        prompt_tokens = sum(len(str(m.get("content") or "")) // 4 + 4
                            for m in body.get("messages") or [] if isinstance(m, dict)) + 1
        completion_tokens = len(content) // 4 + 1
        return {
            "id": f"chatcmpl-{secrets.token_hex(12)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": str(body.get("model") or self.model),
            "choices": [{
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "logprobs": None,
                "finish_reason": "stop",
            }],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }

    def models(self) -> _Reply:
        data = [{"id": self.model, "object": "model", "created": 0, "owned_by": "fake"}]
        return _Reply(200, json.dumps({"object": "list", "data": data}).encode())


class _Handler(BaseHTTPRequestHandler):
    """HTTP/1.1 with keep-alive, as llama-swap and llama.cpp's server speak it (a client reuses its
    connection instead of paying a connect per call). An idle connection is closed after ``timeout``
    seconds, and none is kept once the server stops, so no handler thread outlives it for long."""

    server_version = "FakeLLM/1.0"
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body are two writes: no delayed-ACK wait between them
    timeout = 5.0

    @property
    def fake(self) -> FakeLLM:
        return self.server.fake  # type: ignore[attr-defined,no-any-return]

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: pytest output stays readable."""

    def do_GET(self) -> None:
        path = self.path.split("?")[0].rstrip("/")
        if path == "/v1/models":
            self._send(self.fake.models())
        elif path == "/health":
            self._send(_Reply(200, b'{"status": "ok"}'))
        else:
            self._send(_Reply(404, _error_body(404, f"fake LLM: no route GET {self.path}")))

    def do_POST(self) -> None:
        if self.path.split("?")[0].rstrip("/") != "/v1/chat/completions":
            self._send(_Reply(404, _error_body(404, f"fake LLM: no route POST {self.path}")))
            return
        length = int(self.headers.get("Content-Length") or 0)
        try:
            body = json.loads(self.rfile.read(length))
        except ValueError as exc:
            self._send(_Reply(400, _error_body(400, f"fake LLM: body is not JSON: {exc}")))
            return
        if not isinstance(body, dict) or body.get("stream"):
            self._send(_Reply(400, _error_body(400, "fake LLM: expects a JSON object, without stream")))
            return
        try:
            reply = self.fake.chat(body, {k.lower(): v for k, v in self.headers.items()})
        except Exception as exc:  # a broken triage_answer/draft_answer must show up, not hang the client
            reply = _Reply(500, _error_body(500, f"fake LLM: answer function raised {exc!r}"))
        self._send(reply)

    def _send(self, reply: _Reply) -> None:
        try:
            self.send_response(reply.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(reply.body)))
            for name, value in reply.headers.items():
                self.send_header(name, value)
            if self.fake._closing.is_set():
                self.send_header("Connection", "close")
                self.close_connection = True
            self.end_headers()
            self.wfile.write(reply.body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (timeout): nothing to tell it


@pytest.fixture
def fake_llm() -> Iterator[FakeLLM]:
    """A fresh fake LLM for one test: default answers, nothing scripted, stopped afterwards."""
    with FakeLLM() as llm:
        yield llm
