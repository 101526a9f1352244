"""A loopback stand-in for an OpenAI-compatible chat server (llama-swap, llama.cpp, OpenAI).

Real HTTP on ``127.0.0.1`` in a background thread, speaking enough of the API for the real ``openai``
client: ``POST /v1/chat/completions`` (non-streaming), ``GET /v1/models`` and ``GET /health``.
A request with ``response_format`` is a triage request and gets ``triage_answer(text)`` as JSON; one
without is a draft request and gets ``draft_answer(text)``. ``text`` is the text of the user messages.

Failures are scripted: :meth:`FakeLLM.script` queues one-shot behaviours (an HTTP status, a delay, raw
content) consumed one per request; :meth:`FakeLLM.fail_all` answers every request with a status until
healed, and takes precedence over everything else (the script's items then wait).

Configuration is checked as the real servers check it: with ``api_key`` set, a request without that
bearer key gets OpenAI's 401 (``invalid_api_key``); with ``models`` set, a request for another model
gets a 404 — OpenAI's ``model_not_found`` body in strict mode, llama-swap's plain ``{"error": ...}``
otherwise (``unknown_model_status=400`` for the newer llama-swap's status). Both can change while the
server runs (a key fixed, a model renamed).

``strict=True`` is the relay's double, api.openai.com's behaviour: a body field outside the ones the
chat completions API documents (an allowlist, :data:`OPENAI_CHAT_FIELDS`) is refused with OpenAI's
400 ``Unrecognized request argument supplied: X``; so is a bad value of a documented field, and a
strict ``json_schema`` that OpenAI's structured outputs refuse (a property missing from ``required``,
``additionalProperties`` not false, a keyword outside the supported subset such as ``maxLength``), each
with OpenAI's message, ``type``, ``param`` and ``code``.
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


# The request body fields of POST /v1/chat/completions in OpenAI's API reference (and the SDK's
# ``completion_create_params``, generated from it). Anything else is "Unrecognized request argument".
OPENAI_CHAT_FIELDS = frozenset({
    "messages", "model", "audio", "frequency_penalty", "function_call", "functions", "logit_bias", "logprobs",
    "max_completion_tokens", "max_tokens", "metadata", "modalities", "moderation", "n", "parallel_tool_calls",
    "prediction", "presence_penalty", "prompt_cache_key", "prompt_cache_options", "prompt_cache_retention",
    "reasoning_effort", "response_format", "safety_identifier", "seed", "service_tier", "stop", "store", "stream",
    "stream_options", "temperature", "tool_choice", "tools", "top_logprobs", "top_p", "user", "verbosity",
    "web_search_options",
})
_ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})
_EFFORTS = frozenset({"none", "minimal", "low", "medium", "high", "xhigh"})
# JSON Schema keywords OpenAI's strict structured outputs support; any other one "is not permitted".
_STRICT_SCHEMA_KEYWORDS = frozenset({
    "type", "properties", "required", "additionalProperties", "items", "enum", "const", "anyOf", "description",
    "title", "$ref", "$defs", "definitions", "pattern", "format", "minimum", "maximum", "exclusiveMinimum",
    "exclusiveMaximum", "multipleOf", "minItems", "maxItems",
})
_STRICT_FORMATS = frozenset({"date-time", "time", "date", "duration", "email", "hostname", "ipv4", "ipv6", "uuid"})
_SCHEMA_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class OpenAIRefusal(Exception):
    """A 4xx with OpenAI's error object."""

    def __init__(self, status: int, message: str, *, param: str | None = None, code: str | None = None,
                 kind: str = "invalid_request_error") -> None:
        super().__init__(message)
        self.status, self.param, self.code, self.kind = status, param, code, kind

    def reply(self) -> _Reply:
        error = {"message": str(self), "type": self.kind, "param": self.param, "code": self.code}
        return _Reply(self.status, json.dumps({"error": error}).encode())


def check_openai_body(body: dict[str, Any]) -> None:
    """Refuse (OpenAIRefusal) what api.openai.com refuses in a chat completions body."""
    for name in body:
        if name not in OPENAI_CHAT_FIELDS:
            raise OpenAIRefusal(400, f"Unrecognized request argument supplied: {name}")
    for name in ("model", "messages"):
        if name not in body:
            raise OpenAIRefusal(400, f"Missing required parameter: '{name}'.", param=name,
                                code="missing_required_parameter")
    messages = body["messages"]
    if not isinstance(messages, list) or not messages:
        raise OpenAIRefusal(400, "Invalid 'messages': empty array. Expected an array with minimum length 1, "
                                 "but got an empty array instead.", param="messages", code="empty_array")
    for index, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in _ROLES:
            raise OpenAIRefusal(400, f"Invalid value: '{message.get('role') if isinstance(message, dict) else ''}'. "
                                     "Supported values are: 'system', 'assistant', 'user', 'function', 'tool', "
                                     "and 'developer'.", param=f"messages[{index}].role", code="invalid_value")
    _check_number(body, "temperature", 0, 2)
    _check_number(body, "top_p", 0, 1)
    for name in ("max_tokens", "max_completion_tokens"):
        value = body.get(name)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
            raise OpenAIRefusal(400, f"Invalid '{name}': integer below minimum value. Expected a value >= 1, "
                                     f"but got {value} instead.", param=name, code="integer_below_min_value")
    effort = body.get("reasoning_effort")
    if effort is not None and effort not in _EFFORTS:
        raise OpenAIRefusal(400, f"Invalid value: '{effort}'. Supported values are: 'none', 'minimal', 'low', "
                                 "'medium', 'high', and 'xhigh'.", param="reasoning_effort", code="invalid_value")
    if "response_format" in body:
        _check_response_format(body["response_format"], messages)


def _check_number(body: dict[str, Any], name: str, low: float, high: float) -> None:
    value = body.get(name)
    if value is None:
        return
    if not isinstance(value, int | float) or isinstance(value, bool) or not low <= value <= high:
        raise OpenAIRefusal(400, f"Invalid '{name}': decimal out of range. Expected a value between {low} and "
                                 f"{high}, but got {value} instead.", param=name, code="decimal_out_of_range")


def _check_response_format(response_format: Any, messages: list[Any]) -> None:
    kind = response_format.get("type") if isinstance(response_format, dict) else None
    if kind not in ("text", "json_object", "json_schema"):
        raise OpenAIRefusal(400, f"Invalid value: '{kind}'. Supported values are: 'text', 'json_object', and "
                                 "'json_schema'.", param="response_format.type", code="invalid_value")
    if kind == "json_object" and "json" not in json.dumps(messages).lower():
        raise OpenAIRefusal(400, "'messages' must contain the word 'json' in some form, to use 'response_format' "
                                 "of type 'json_object'.", param="messages")
    if kind != "json_schema":
        return
    spec = response_format.get("json_schema")
    name = spec.get("name") if isinstance(spec, dict) else None
    if not isinstance(name, str) or not _SCHEMA_NAME.match(name):
        raise OpenAIRefusal(400, "Invalid 'response_format.json_schema.name': string does not match pattern. "
                                 "Expected a string that matches the pattern '^[a-zA-Z0-9_-]+$'.",
                            param="response_format.json_schema.name", code="invalid_value")
    assert isinstance(spec, dict)
    schema = spec.get("schema")
    if spec.get("strict") is True:
        problem = strict_schema_problem(schema)
        if problem is not None:
            raise OpenAIRefusal(400, f"Invalid schema for response_format '{name}': {problem}",
                                param="response_format", code="invalid_json_schema")


def strict_schema_problem(schema: Any, context: tuple[str, ...] = ()) -> str | None:
    """Why OpenAI's strict structured outputs would refuse ``schema`` (its wording), or None."""
    if not isinstance(schema, dict):
        return f"In context={context!r}, schema must be an object."
    if not context and schema.get("type") != "object":
        return f"schema must be a JSON Schema of 'type: \"object\"', got 'type: \"{schema.get('type')}\"'."
    for keyword in schema:
        if keyword not in _STRICT_SCHEMA_KEYWORDS:
            return f"In context={context!r}, '{keyword}' is not permitted."
    if "format" in schema and schema["format"] not in _STRICT_FORMATS:
        return f"In context={context!r}, '{schema['format']}' is not a valid format."
    types = schema.get("type")
    if types == "object" or (isinstance(types, list) and "object" in types) or "properties" in schema:
        if schema.get("additionalProperties") is not False:
            return f"In context={context!r}, 'additionalProperties' is required to be supplied and to be false."
        properties = schema.get("properties") or {}
        required = schema.get("required")
        missing = [key for key in properties if not isinstance(required, list) or key not in required]
        if missing:
            return (f"In context={context!r}, 'required' is required to be supplied and to be an array including "
                    f"every key in properties. Missing '{missing[0]}'.")
        for key, sub in properties.items():
            problem = strict_schema_problem(sub, (*context, "properties", key))
            if problem is not None:
                return problem
    if isinstance(schema.get("items"), dict):
        problem = strict_schema_problem(schema["items"], (*context, "items"))
        if problem is not None:
            return problem
    for index, sub in enumerate(schema.get("anyOf") or []):
        problem = strict_schema_problem(sub, (*context, "anyOf", str(index)))
        if problem is not None:
            return problem
    return None


def _masked(key: str) -> str:
    """A key as OpenAI shows it in a 401: its first and last characters."""
    return f"{key[:3]}{'*' * max(4, len(key) - 7)}{key[-4:]}" if len(key) > 8 else "*" * len(key)


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
        "level": None,
        "equity": None,
        "industry": None,
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

    def __init__(self, model: str = "fake-model", *, strict: bool = False, api_key: str | None = None,
                 models: set[str] | None = None, unknown_model_status: int = 404) -> None:
        self.model = model
        self.strict = strict
        self.api_key = api_key  # None: any key (or none) is accepted
        self.models = models  # None: every model is served
        self.unknown_model_status = unknown_model_status
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

    def _record(self, body: dict[str, Any], headers: dict[str, str]) -> ScriptItem | int | _Reply | None:
        """Store the request; return the persistent failure status, else a refusal of the request as
        configured (key, model, strict body), else the next script item."""
        with self._lock:
            self.requests.append(body)
            self.request_headers.append(headers)
            if self._fail_status is not None:
                return self._fail_status
            refusal = self._refusal(body, headers)
            if refusal is not None:
                return refusal
            return self._script.popleft() if self._script else None

    def _refusal(self, body: dict[str, Any], headers: dict[str, str]) -> _Reply | None:
        """What api.openai.com (strict) or llama-swap would refuse in this request, as its answer."""
        bearer = headers.get("authorization", "")
        if self.api_key is not None and bearer != f"Bearer {self.api_key}":
            if not bearer.startswith("Bearer "):
                return OpenAIRefusal(401, "You didn't provide an API key. You need to provide your API key in an "
                                          "Authorization header using Bearer auth (i.e. Authorization: Bearer "
                                          "YOUR_KEY).").reply()
            return OpenAIRefusal(401, f"Incorrect API key provided: {_masked(bearer[7:])}. You can find your API "
                                      "key at https://platform.openai.com/account/api-keys.",
                                 code="invalid_api_key").reply()
        try:
            if self.strict:
                check_openai_body(body)
        except OpenAIRefusal as refusal:
            return refusal.reply()
        model = body.get("model")
        if self.models is not None and model not in self.models:
            if self.strict:
                return OpenAIRefusal(404, f"The model `{model}` does not exist or you do not have access to it.",
                                     code="model_not_found").reply()
            return _Reply(self.unknown_model_status, json.dumps({"error": f"could not find real modelID for {model}"})
                          .encode())
        return None

    def chat(self, body: dict[str, Any], headers: dict[str, str] | None = None) -> _Reply:
        step = self._record(body, headers or {})
        if isinstance(step, _Reply):
            return step
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

    def model_list(self) -> _Reply:
        served = sorted(self.models) if self.models is not None else [self.model]
        data = [{"id": model, "object": "model", "created": 0, "owned_by": "fake"} for model in served]
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
            self._send(self.fake.model_list())
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


RELAY_KEY = "sk-relay-test-0123456789abcdef"
RELAY_MODEL = "gpt-4o-mini"


@pytest.fixture
def fake_llm() -> Iterator[FakeLLM]:
    """A fresh fake LLM for one test: default answers, nothing scripted, stopped afterwards."""
    with FakeLLM() as llm:
        yield llm


@pytest.fixture
def fake_relay() -> Iterator[FakeLLM]:
    """A strict fake of api.openai.com behind the relay tier: key ``RELAY_KEY``, model ``RELAY_MODEL``."""
    with FakeLLM(RELAY_MODEL, strict=True, api_key=RELAY_KEY, models={RELAY_MODEL}) as relay:
        yield relay
