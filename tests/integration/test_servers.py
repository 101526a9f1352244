"""The test servers themselves work with the real clients the service uses."""

from __future__ import annotations

import asyncio
import imaplib
import json
import secrets
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import aioimaplib
import asyncpg
import openai
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from recruiter.model import TRIAGE_JSON_SCHEMA, TriageResult, strict_schema
from tests.servers.dovecot import Dovecot, DovecotError, ImapUser, find_binary
from tests.servers.fake_llm import RELAY_KEY, RELAY_MODEL, FakeLLM
from tests.servers.postgres import PG_HOST, PG_PORT, PG_USER, create_database, drop_database, pg_database_exists

MAIL = b"From: Jane <jane@acme.example>\r\nTo: me@example.org\r\nSubject: A role\r\n\r\nHello!\r\n"


# --- Dovecot ------------------------------------------------------------------------------------------


@asynccontextmanager
async def imap_session(account: ImapUser, lost: asyncio.Event | None = None) -> AsyncIterator[aioimaplib.IMAP4]:
    """An aioimaplib client logged in with INBOX selected; torn down even if the server dropped it."""
    on_lost = (lambda _exc: lost.set()) if lost is not None else None
    client = aioimaplib.IMAP4(host=account.host, port=account.port, timeout=5, conn_lost_cb=on_lost)
    await client.wait_hello_from_server()
    assert (await client.login(account.user, account.password)).result == "OK"
    assert (await client.select("INBOX")).result == "OK"
    try:
        yield client
    finally:
        tasks = list(client.tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if client.protocol.transport is not None:
            client.protocol.transport.close()


async def wait_for_push(client: aioimaplib.IMAP4, word: bytes, timeout: float) -> bytes:
    """The first line pushed during IDLE that contains the token ``word``; fails after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        lines = await client.wait_server_push(timeout=left)
        assert lines != aioimaplib.STOP_WAIT_SERVER_PUSH, f"no {word!r} within {timeout} s"
        for line in lines:
            if isinstance(line, bytes | bytearray) and word in line.split():
                return bytes(line)
    raise AssertionError(f"no {word!r} within {timeout} s")


async def test_idle_client_is_pushed_exists_after_append(
    dovecot: Dovecot, imap_user: ImapUser, record_property: Callable[[str, object], None]
) -> None:
    async with imap_session(imap_user) as client:
        idle = await client.idle_start(timeout=10)
        started = time.monotonic()
        uid = await asyncio.to_thread(dovecot.append, imap_user.user, MAIL)
        line = await wait_for_push(client, b"EXISTS", timeout=3)
        delay = time.monotonic() - started
        client.idle_done()
        assert (await asyncio.wait_for(idle, 5)).result == "OK"
    record_property("append_to_exists_seconds", round(delay, 3))
    assert (uid, line) == (1, b"1 EXISTS")
    assert delay < 1.5  # Dovecot's inotify path waits a fixed 0.5 s


def test_append_returns_uids_and_messages_reads_them_back(dovecot: Dovecot, imap_user: ImapUser) -> None:
    first = dovecot.append(imap_user.user, MAIL)
    second = dovecot.append(imap_user.user, MAIL.replace(b"Hello", b"Again"), flags=("\\Seen", "\\Flagged"))
    draft = dovecot.append(imap_user.user, MAIL, folder="Drafts", flags=("\\Draft",))

    assert (first, second, draft) == (1, 2, 1)
    assert dovecot.messages(imap_user.user) == [
        (1, set(), MAIL),
        (2, {"\\Seen", "\\Flagged"}, MAIL.replace(b"Hello", b"Again")),
    ]
    assert dovecot.messages(imap_user.user, "Drafts") == [(1, {"\\Draft"}, MAIL)]
    assert dovecot.messages(imap_user.user, "Sent") == []
    assert dovecot.messages(imap_user.user) == dovecot.messages(imap_user.user)  # reading leaves \Seen alone


def test_new_user_has_special_use_drafts_and_sent(dovecot: Dovecot, imap_user: ImapUser) -> None:
    client = dovecot.connect(imap_user.user)
    try:
        status, lines = client.list()
    finally:
        client.logout()
    listing = b"\n".join(line for line in lines if isinstance(line, bytes))
    assert status == "OK"
    assert b'\\Drafts) "/" Drafts' in listing
    assert b'\\Sent) "/" Sent' in listing


def test_append_creates_a_missing_folder(dovecot: Dovecot, imap_user: ImapUser) -> None:
    assert dovecot.append(imap_user.user, MAIL, folder="Recruiters/Old Ones") == 1
    assert [uid for uid, _, _ in dovecot.messages(imap_user.user, "Recruiters/Old Ones")] == [1]


async def test_wrong_password_answers_no(imap_user: ImapUser) -> None:
    client = aioimaplib.IMAP4(host=imap_user.host, port=imap_user.port, timeout=5)
    await client.wait_hello_from_server()
    try:
        assert (await client.login(imap_user.user, "wrong")).result == "NO"
    finally:
        await client.logout()


def test_imap_account_makes_distinct_users(imap_account: Callable[[], ImapUser], dovecot: Dovecot) -> None:
    one, two = imap_account(), imap_account()
    assert one.user != two.user and one.user.endswith("@example.org")
    dovecot.append(one.user, MAIL)
    assert len(dovecot.messages(one.user)) == 1
    assert dovecot.messages(two.user) == []


def test_restart_keeps_port_users_and_mail(dovecot: Dovecot, imap_user: ImapUser) -> None:
    dovecot.append(imap_user.user, MAIL)
    port = dovecot.port
    dovecot.restart()
    assert dovecot.running and dovecot.port == port == imap_user.port
    assert dovecot.messages(imap_user.user) == [(1, set(), MAIL)]
    assert dovecot.append(imap_user.user, MAIL) == 2


async def test_kick_sends_bye_and_drops_the_connection(dovecot: Dovecot, imap_user: ImapUser) -> None:
    lost = asyncio.Event()
    async with imap_session(imap_user, lost) as client:
        await client.idle_start(timeout=10)
        await asyncio.to_thread(dovecot.kick, imap_user.user)
        bye = await wait_for_push(client, b"BYE", timeout=3)  # aioimaplib does not raise: BYE is pushed
        await asyncio.wait_for(lost.wait(), 3)
    assert bye == b"BYE Server shutting down."


def test_kick_without_connections_is_fine(dovecot: Dovecot, imap_user: ImapUser) -> None:
    dovecot.kick(imap_user.user)


def test_a_test_may_stop_dovecot_which_drops_its_clients(dovecot: Dovecot, imap_user: ImapUser) -> None:
    client = dovecot.connect(imap_user.user)
    try:
        client.select("INBOX")
        dovecot.stop()
        assert not dovecot.running
        with pytest.raises(imaplib.IMAP4.abort, match="Server shutting down"):
            client.noop()
    finally:
        client.shutdown()
    with pytest.raises(ConnectionRefusedError):
        imaplib.IMAP4(imap_user.host, imap_user.port, timeout=2)


def test_the_next_test_finds_dovecot_running_again(dovecot: Dovecot) -> None:
    assert dovecot.running


def test_a_missing_binary_is_named_with_the_install_command() -> None:
    with pytest.raises(DovecotError, match=r"not installed.*apt-get install"):
        find_binary("dovecot-that-does-not-exist")


# --- fake LLM ---------------------------------------------------------------------------------------------

RECRUITER_MAIL = (
    "Hi! I am recruiting for a Senior Engineer position.\n"
    "Company: Acme Corp\nRole: Senior Engineer\nFully remote.\n"
    "MEETING: 2030-05-06T10:00:00+02:00 45\n"
)
RESPONSE_FORMAT = {"type": "json_schema", "json_schema": {"name": "triage", "schema": TRIAGE_JSON_SCHEMA}}


def assert_triage_schema(answer: dict[str, object]) -> TriageResult:
    """Exactly the schema's keys (it allows no others), with values the service's model accepts."""
    assert sorted(answer) == sorted(TRIAGE_JSON_SCHEMA["required"])
    return TriageResult.model_validate(answer)


@asynccontextmanager
async def llm_client(fake: FakeLLM, timeout: float = 5) -> AsyncIterator[openai.AsyncOpenAI]:
    async with openai.AsyncOpenAI(
        base_url=f"{fake.url}/v1", api_key="x", max_retries=0, timeout=timeout
    ) as client:
        yield client


async def ask(client: openai.AsyncOpenAI, mail: str, triage: bool = True) -> str:
    """One chat request like the service's: triage asks for structured output, a draft does not."""
    messages: list[Any] = [
        {"role": "system", "content": "You triage mail."},
        {"role": "user", "content": f"<mail>\n{mail}\n</mail>"},
    ]
    extra: dict[str, Any] = {"response_format": RESPONSE_FORMAT} if triage else {}
    completion = await client.chat.completions.create(model="m", messages=messages, **extra)
    content: str | None = completion.choices[0].message.content
    assert content is not None
    return content


async def test_triage_answer_matches_the_schema(fake_llm: FakeLLM) -> None:
    async with llm_client(fake_llm) as client:
        answer = json.loads(await ask(client, RECRUITER_MAIL))
    result = assert_triage_schema(answer)
    assert (result.is_recruiter, result.kind, result.company, result.role, result.remote) == (
        True, "scheduling", "Acme Corp", "Senior Engineer", "remote",
    )
    assert [(m.start.isoformat(), m.duration_minutes) for m in result.meetings] == [
        ("2030-05-06T10:00:00+02:00", 45),
    ]
    assert len(fake_llm.triage_requests()) == 1 and fake_llm.draft_requests() == []
    assert fake_llm.requests[0]["response_format"] == RESPONSE_FORMAT


async def test_non_recruiter_mail_and_draft_answers(fake_llm: FakeLLM) -> None:
    async with llm_client(fake_llm) as client:
        answer = json.loads(await ask(client, "Your parcel ships tomorrow."))
        draft = await ask(client, RECRUITER_MAIL, triage=False)
    assert_triage_schema(answer)
    assert (answer["is_recruiter"], answer["kind"], answer["meetings"]) == (False, "other", [])
    assert draft.startswith("Thank you for reaching out")
    assert len(fake_llm.draft_requests()) == 1 and len(fake_llm.requests) == 2


async def test_answers_can_be_replaced(fake_llm: FakeLLM) -> None:
    fake_llm.draft_answer = lambda mail: f"echo {mail!r}"
    async with llm_client(fake_llm) as client:
        assert await ask(client, "abc", triage=False) == "echo '<mail>\\nabc\\n</mail>'"


async def test_scripted_502_raises_internal_server_error_once(fake_llm: FakeLLM) -> None:
    fake_llm.script(FakeLLM.Status(502, body="bad gateway"))
    async with llm_client(fake_llm) as client:
        with pytest.raises(openai.InternalServerError) as failure:
            await ask(client, RECRUITER_MAIL)
        assert failure.value.status_code == 502
        assert json.loads(await ask(client, RECRUITER_MAIL))["is_recruiter"] is True


async def test_scripted_delay_makes_the_client_time_out(fake_llm: FakeLLM) -> None:
    fake_llm.script(FakeLLM.Delay(5))
    started = time.monotonic()
    async with llm_client(fake_llm, timeout=0.3) as client:
        with pytest.raises(openai.APITimeoutError):
            await ask(client, RECRUITER_MAIL)
    assert time.monotonic() - started < 2


async def test_scripted_raw_content_is_returned_verbatim(fake_llm: FakeLLM) -> None:
    fake_llm.script(FakeLLM.Raw('{"is_recruiter": tru'))
    async with llm_client(fake_llm) as client:
        assert await ask(client, RECRUITER_MAIL) == '{"is_recruiter": tru'


async def test_fail_all_until_healed(fake_llm: FakeLLM) -> None:
    fake_llm.fail_all(503)
    async with llm_client(fake_llm) as client:
        for _ in range(3):
            with pytest.raises(openai.InternalServerError):
                await ask(client, RECRUITER_MAIL)
        fake_llm.fail_all(None)
        assert json.loads(await ask(client, RECRUITER_MAIL))["is_recruiter"] is True
    assert len(fake_llm.requests) == 4


async def test_models_list(fake_llm: FakeLLM) -> None:
    async with llm_client(fake_llm) as client:
        models = await client.models.list()
    assert [m.id for m in models.data] == ["fake-model"]


async def test_stopped_llm_refuses_connections() -> None:
    with FakeLLM() as fake:
        url = fake.url
    async with openai.AsyncOpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0, timeout=2) as client:
        with pytest.raises(openai.APIConnectionError):
            await client.models.list()


# --- fake LLM, strict (api.openai.com behind the relay tier) ----------------------------------------------


@asynccontextmanager
async def relay_client(fake: FakeLLM, key: str = RELAY_KEY) -> AsyncIterator[openai.AsyncOpenAI]:
    async with openai.AsyncOpenAI(base_url=f"{fake.url}/v1", api_key=key, max_retries=0, timeout=5) as client:
        yield client


async def relay_ask(client: openai.AsyncOpenAI, **extra: Any) -> str:
    messages: list[Any] = [{"role": "user", "content": f"<mail>\n{RECRUITER_MAIL}\n</mail>"}]
    completion = await client.chat.completions.create(model=extra.pop("model", RELAY_MODEL), messages=messages,
                                                      **extra)
    content: str | None = completion.choices[0].message.content
    assert content is not None
    return content


async def test_strict_relay_answers_a_documented_request_with_a_strict_schema(fake_relay: FakeLLM) -> None:
    response_format: Any = {"type": "json_schema", "json_schema": {
        "name": "triage", "strict": True, "schema": strict_schema(TRIAGE_JSON_SCHEMA)}}
    async with relay_client(fake_relay) as client:
        answer = json.loads(await relay_ask(client, response_format=response_format, max_completion_tokens=600,
                                            reasoning_effort="minimal"))
    assert assert_triage_schema(answer).is_recruiter


@pytest.mark.parametrize("field", ["chat_template_kwargs", "enable_thinking", "cache_prompt", "grammar"])
async def test_strict_relay_refuses_any_field_openai_does_not_document(fake_relay: FakeLLM, field: str) -> None:
    async with relay_client(fake_relay) as client:
        with pytest.raises(openai.BadRequestError) as failure:
            await relay_ask(client, extra_body={field: {"enable_thinking": False}})
    error = failure.value
    assert error.status_code == 400 and (error.param, error.code, error.type) == (None, None, "invalid_request_error")
    assert error.body == {"message": f"Unrecognized request argument supplied: {field}",
                          "type": "invalid_request_error", "param": None, "code": None}


async def test_strict_relay_refuses_a_schema_strict_mode_cannot_take(fake_relay: FakeLLM) -> None:
    response_format: Any = {"type": "json_schema",
                            "json_schema": {"name": "triage", "strict": True, "schema": TRIAGE_JSON_SCHEMA}}
    async with relay_client(fake_relay) as client:
        with pytest.raises(openai.BadRequestError) as failure:
            await relay_ask(client, response_format=response_format)
    error = failure.value
    assert (error.param, error.code) == ("response_format", "invalid_json_schema")
    assert error.body == {"message": "Invalid schema for response_format 'triage': In context=('properties', "
                                     "'company'), 'maxLength' is not permitted.", "type": "invalid_request_error",
                          "param": "response_format", "code": "invalid_json_schema"}


@pytest.mark.parametrize(("extra", "param"), [
    ({"temperature": 3}, "temperature"), ({"max_completion_tokens": 0}, "max_completion_tokens"),
    ({"reasoning_effort": "maximal"}, "reasoning_effort"),
    ({"response_format": {"type": "json_object"}}, "messages"),  # the word "json" must be in the messages
    ({"response_format": {"type": "json_schema", "json_schema": {"name": "has space", "schema": {}}}},
     "response_format.json_schema.name"),
])
async def test_strict_relay_refuses_bad_values(fake_relay: FakeLLM, extra: dict[str, Any], param: str) -> None:
    async with relay_client(fake_relay) as client:
        with pytest.raises(openai.BadRequestError) as failure:
            await relay_ask(client, **extra)
    assert failure.value.param == param


async def test_strict_relay_answers_a_wrong_key_with_openais_401(fake_relay: FakeLLM) -> None:
    async with relay_client(fake_relay, key="sk-old-key-0123456789") as client:
        with pytest.raises(openai.AuthenticationError) as failure:
            await relay_ask(client)
    error = failure.value
    assert (error.status_code, error.code, error.type) == (401, "invalid_api_key", "invalid_request_error")
    assert isinstance(error.body, dict)
    said = error.body["message"]
    assert said.startswith("Incorrect API key provided: sk-") and "0123456789" not in said
    fake_relay.api_key = "sk-old-key-0123456789"  # the key is accepted from now on
    async with relay_client(fake_relay, key="sk-old-key-0123456789") as client:
        assert await relay_ask(client)


async def test_strict_relay_answers_an_unknown_model_with_openais_404(fake_relay: FakeLLM) -> None:
    async with relay_client(fake_relay) as client:
        with pytest.raises(openai.NotFoundError) as failure:
            await relay_ask(client, model="gpt-renamed")
        models = await client.models.list()
    assert isinstance(failure.value.body, dict)
    assert (failure.value.code, failure.value.body["message"]) == (
        "model_not_found", "The model `gpt-renamed` does not exist or you do not have access to it.")
    assert [m.id for m in models.data] == [RELAY_MODEL]


@pytest.mark.parametrize("status", [404, 400])
async def test_llama_swap_answers_an_unknown_model_in_its_own_words(status: int) -> None:
    with FakeLLM(models={"qwen3-4b"}, unknown_model_status=status) as swap:
        async with llm_client(swap) as client:
            with pytest.raises(openai.APIStatusError) as failure:
                await client.chat.completions.create(model="qwen3-8b", messages=[{"role": "user", "content": "x"}])
            assert (await client.chat.completions.create(
                model="qwen3-4b", messages=[{"role": "user", "content": "x"}])).choices[0].message.content
    assert failure.value.status_code == status and failure.value.body == "could not find real modelID for qwen3-8b"


# --- PostgreSQL -----------------------------------------------------------------------------------------


async def test_pg_url_is_a_fresh_database(pg_url: str) -> None:
    engine = create_async_engine(pg_url)
    try:
        async with engine.begin() as conn:
            name = (await conn.execute(text("SELECT current_database()"))).scalar_one()
            tables = (await conn.execute(text("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")))
            assert tables.scalar_one() == 0
    finally:
        await engine.dispose()
    assert pg_url.endswith(f"/{name}") and name.startswith("rr_")
    assert pg_database_exists(name)


async def test_drop_database_ends_open_sessions_first() -> None:
    name = f"rr_drop_{secrets.token_hex(4)}"
    create_database(name)
    conn = await asyncpg.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, database=name)
    try:
        drop_database(name)
        assert not pg_database_exists(name)
        assert conn.is_closed() or await _connection_is_dead(conn)
    finally:
        conn.terminate()


async def _connection_is_dead(conn: asyncpg.Connection) -> bool:
    try:
        await conn.fetchval("SELECT 1")
    except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError):
        return True
    return False


async def test_db_url_works_with_sqlalchemy(db_url: str, request: pytest.FixtureRequest) -> None:
    backend = request.node.callspec.params["db_url"]
    assert db_url.startswith({"sqlite": "sqlite+aiosqlite:///", "postgresql": "postgresql+asyncpg://"}[backend])
    engine = create_async_engine(db_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)"))
            await conn.execute(text("INSERT INTO t (id, v) VALUES (1, 'x')"))
        async with engine.connect() as conn:
            assert (await conn.execute(text("SELECT v FROM t"))).scalar_one() == "x"
    finally:
        await engine.dispose()
