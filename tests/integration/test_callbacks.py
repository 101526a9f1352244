"""The card's one-tap links against real servers: Dovecot (Drafts, Sent, INBOX flags), an aiosmtpd sink with
STARTTLS, a self-signed CA and AUTH, the loopback Bot API, on SQLite and PostgreSQL.

Each test first runs the real pipeline over one recruiter mail delivered to Dovecot (draft APPENDed,
card sent with signed links), then taps the card's links through the service's HTTP app.
"""

from __future__ import annotations

import asyncio
import email
import json
import time
from collections.abc import AsyncIterator
from email import policy
from email.utils import make_msgid
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlparse

import pytest

from recruiter.app import build_runtime
from recruiter.notify.links import sign_link
from recruiter.reply.compose import KEY_HEADER
from recruiter.settings import settings_from
from recruiter.store.migrate import upgrade_head
from tests.mailfactory import make_mail
from tests.servers.dovecot import Dovecot, ImapUser
from tests.servers.fake_telegram import FakeTelegram
from tests.servers.smtp import SmtpSink
from tests.support.callbacks import SECRET, World, app_for, env_for, process

# aiosmtpd 1.4 warns about its own deprecated attribute on every successful AUTH (in its thread).
pytestmark = pytest.mark.filterwarnings("ignore:Session.login_data is deprecated:DeprecationWarning")

RECRUITER = "jane@acme-talent.example"


@pytest.fixture
async def world(tmp_path: Path, db_url: str, dovecot: Dovecot, imap_user: ImapUser, fake_telegram: FakeTelegram,
                smtp_sink: SmtpSink) -> AsyncIterator[World]:
    settings = settings_from(env_for(tmp_path, db_url, imap_user, fake_telegram, smtp_sink))
    await upgrade_head(db_url)
    runtime = await build_runtime(settings)
    raw = make_mail(to=imap_user.user)
    try:
        message_id, uid = await process(runtime, dovecot, imap_user, raw)
        row = await runtime.store.get(message_id)
        assert row is not None and (row.state, row.is_recruiter) == ("done", True), row and row.last_error
        async with app_for(settings, runtime) as client:
            yield World(settings, runtime, dovecot, imap_user, fake_telegram, smtp_sink, message_id, row.key, raw,
                        uid, client)
    finally:
        await runtime.aclose()


def edit_draft(world: World, body: str, *, keep_key: bool = True, old: str = "expunge") -> bytes:
    """What a mail program does when the owner edits a draft: a new message replaces the old one, which it
    expunges, only flags ``\\Deleted`` (``old="flag"``), or leaves as it is (``old="keep"``)."""
    old_uid, _, old_raw = world.drafts()[-1]
    msg = email.message_from_bytes(old_raw, policy=policy.default)
    if not keep_key:
        del msg[KEY_HEADER]
    del msg["Message-ID"]
    msg["Message-ID"] = make_msgid(domain="example.org")
    msg.set_content(body)
    edited = msg.as_bytes(policy=policy.SMTP)
    world.dovecot.append(world.user.user, edited, "Drafts", ("\\Draft",))
    if old != "keep":
        delete_uid(world, "Drafts", old_uid, expunge=old == "expunge")
    return edited


def delete_uid(world: World, folder: str, uid: int, *, expunge: bool = True) -> None:
    client = world.dovecot.connect(world.user.user)
    try:
        client.select(folder)
        client.uid("STORE", str(uid), "+FLAGS", "(\\Deleted)")
        if expunge:
            client.expunge()
    finally:
        client.logout()


def sent_mail(world: World) -> email.message.EmailMessage:
    [received] = world.sink.messages
    message = email.message_from_bytes(received.content, policy=policy.default)
    assert isinstance(message, email.message.EmailMessage)
    return message


@pytest.mark.both_imap_servers
async def test_send_delivers_the_edited_draft_once_and_tidies_up(world: World) -> None:
    original_id = email.message_from_bytes(world.original)["Message-ID"]
    edit_draft(world, "Hi Jane,\n\nan earlier edit\n", old="keep")  # two versions: the newest one counts
    edit_draft(world, "Hi Jane,\n\nEDITED BY THE OWNER: happy to read more in writing.\n\nAlex\n", old="keep")

    response = await world.tap(world.links()["send"])

    assert response.status_code == 200, response.text
    assert "<h1>Sent</h1>" in response.text and 'name="viewport"' in response.text
    [received] = world.sink.messages
    assert received.rcpt_tos == (RECRUITER,) and received.mail_from == world.user.user
    sent = sent_mail(world)
    assert "EDITED BY THE OWNER" in sent.get_content()
    assert KEY_HEADER not in sent and sent["In-Reply-To"] == original_id and original_id in sent["References"]
    assert sent["Date"] and sent["Message-ID"]
    [(_, flags, copy)] = world.folder("Sent")
    assert "\\Seen" in flags and email.message_from_bytes(copy)["Message-ID"] == sent["Message-ID"]
    assert world.drafts() == []
    [(uid, flags, _)] = world.folder("INBOX")
    assert uid == world.original_uid and "\\Answered" in flags and "\\Seen" not in flags
    [edit] = world.telegram.calls_to("editMessageText")
    assert "Sent" in edit["text"] and RECRUITER in edit["text"] and not edit.get("reply_markup")
    effects = await world.effects()
    assert {"action", "smtp-intent", "smtp", "sent-copy", "draft-deleted", "answered", "handled"} <= set(effects)
    assert json.loads(effects["handled"])["done"] == "sent"

    again = await world.tap(world.links()["send"])
    assert again.status_code == 200 and "Sent" in again.text
    assert len(world.sink.data_received) == 1 and len(world.folder("Sent")) == 1
    assert len(world.telegram.calls_to("editMessageText")) == 1
    other = await world.tap(world.links()["decline"])  # another button of the same card does nothing either
    assert other.status_code == 200 and "Sent" in other.text and len(world.sink.data_received) == 1


@pytest.mark.both_imap_servers
async def test_send_finds_an_edited_draft_without_our_header(world: World) -> None:
    # The client dropped our header and only flagged the old version \Deleted: that one is not the draft.
    edit_draft(world, "Hi Jane,\n\nNO HEADER VERSION\n\nAlex\n", keep_key=False, old="flag")

    response = await world.tap(world.links()["send"])

    assert response.status_code == 200, response.text
    assert "NO HEADER VERSION" in sent_mail(world).get_content()
    assert world.drafts() == []


async def test_two_concurrent_taps_send_one_message(world: World) -> None:
    # A second replica: its own Store (own connections) and its own app, tapping at the same moment.
    other = await build_runtime(world.settings)
    world.sink.stalled.set()
    try:
        async with app_for(world.settings, other) as second:
            link = world.links()["send"]
            first_tap = asyncio.create_task(world.tap(link))
            second_tap = asyncio.create_task(world.tap(link, second))
            await asyncio.sleep(1.0)
            world.sink.stalled.clear()
            responses = await asyncio.gather(first_tap, second_tap)
    finally:
        world.sink.stalled.clear()
        await other.aclose()
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200, 409], [r.text for r in responses]
    assert any("In progress" in r.text for r in responses)
    assert len(world.sink.data_received) == 1 and len(world.sink.messages) == 1
    assert len(world.folder("Sent")) == 1
    later = await world.tap(world.links()["send"])
    assert later.status_code == 200 and "<h1>Sent</h1>" in later.text and len(world.sink.data_received) == 1


async def test_bad_or_expired_links_are_refused_and_change_nothing(world: World) -> None:
    send = world.links()["send"]
    query = parse_qs(urlparse(send).query)
    tampered_sig = send[:-4] + ("0000" if not send.endswith("0000") else "1111")
    other_message = send.replace(f"m={world.message_id}&", f"m={world.message_id + 1}&")
    wrong_action = send.replace("/cb/send?", "/cb/ignore?")
    expired = sign_link("https://rr.example.org", SECRET, "send", world.message_id, int(time.time()) - 5)
    other_key = sign_link("https://rr.example.org", "another-secret-value", "send", world.message_id,
                          int(query["exp"][0]))
    before = await world.effects()
    for url in (tampered_sig, other_message, wrong_action, expired, other_key):
        response = await world.tap(url)
        assert response.status_code == 403, (url, response.text)
        assert "Nothing was done" in response.text
    for query_string, status in ((f"m=abc&exp=1&sig={'0' * 64}", 400), ("m=1&exp=2", 400),
                                 (f"m={world.message_id}&m=2&exp=1&sig={'0' * 64}", 400),
                                 (urlencode({"m": 1, "exp": 1, "sig": "0" * 64, "x": "y" * 2100}), 414)):
        response = await world.client.get(f"/cb/send?{query_string}")
        assert response.status_code == status, (query_string, response.text)
    assert await world.effects() == before
    assert world.sink.data_received == [] and len(world.drafts()) == 1 and world.folder("Sent") == []
    assert world.telegram.calls_to("editMessageText") == []


async def test_unknown_and_unfinished_messages(world: World) -> None:
    unknown = sign_link("https://rr.example.org", SECRET, "send", 999_999, int(time.time()) + 60)
    assert (await world.tap(unknown)).status_code == 404
    bulk = make_mail(subject="Weekly digest", headers={"List-Unsubscribe": "<mailto:u@list.example>"})
    skipped, _ = await process(world.runtime, world.dovecot, world.user, bulk)
    link = sign_link("https://rr.example.org", SECRET, "ignore", skipped, int(time.time()) + 60)
    response = await world.tap(link)
    assert response.status_code == 409 and "not a processed recruiter mail" in response.text


@pytest.mark.both_imap_servers
async def test_decline_sends_a_polite_decline_and_deletes_the_draft(world: World) -> None:
    original_id = email.message_from_bytes(world.original)["Message-ID"]

    response = await world.tap(world.links()["decline"])

    assert response.status_code == 200, response.text
    assert "<h1>Declined</h1>" in response.text
    sent = sent_mail(world)
    body = sent.get_content()
    assert "isn't the right fit" in body and "Alex Example" in body
    assert sent["In-Reply-To"] == original_id and sent["To"].addresses[0].addr_spec == RECRUITER
    assert KEY_HEADER not in sent
    assert world.drafts() == [] and len(world.folder("Sent")) == 1
    [(_, flags, _)] = world.folder("INBOX")
    assert "\\Answered" in flags
    [edit] = world.telegram.calls_to("editMessageText")
    assert "Declined" in edit["text"]
    again = await world.tap(world.links()["decline"])
    assert again.status_code == 200 and len(world.sink.data_received) == 1


async def test_ignore_marks_handled_and_sends_nothing(world: World) -> None:
    response = await world.tap(world.links()["ignore"])

    assert response.status_code == 200 and "<h1>Ignored</h1>" in response.text
    assert world.sink.data_received == [] and len(world.drafts()) == 1 and world.folder("Sent") == []
    assert json.loads((await world.effects())["handled"])["done"] == "ignored"
    [edit] = world.telegram.calls_to("editMessageText")
    assert "Ignored" in edit["text"]
    send = await world.tap(world.links()["send"])
    assert send.status_code == 200 and "Ignored" in send.text and world.sink.data_received == []


async def test_smtp_down_leaves_the_link_usable(world: World) -> None:
    world.sink.stop()
    response = await world.tap(world.links()["send"])
    assert response.status_code == 503 and "try again" in response.text.lower()
    effects = await world.effects()
    assert not {"action", "smtp-intent", "smtp", "handled"} & set(effects)
    assert len(world.drafts()) == 1 and world.telegram.calls_to("editMessageText") == []

    world.sink.start()
    response = await world.tap(world.links()["send"])
    assert response.status_code == 200 and "<h1>Sent</h1>" in response.text
    assert len(world.sink.messages) == 1 and world.drafts() == []


async def test_a_refused_recipient_is_reported_and_nothing_is_recorded_as_sent(world: World) -> None:
    world.sink.refuse_recipients = True
    response = await world.tap(world.links()["send"])
    assert response.status_code == 502 and "refused" in response.text
    assert not {"smtp", "smtp-intent", "handled", "action"} & set(await world.effects())
    world.sink.refuse_recipients = False
    assert (await world.tap(world.links()["send"])).status_code == 200
    assert len(world.sink.messages) == 1


@pytest.mark.both_imap_servers
async def test_imap_down_after_the_send_is_finished_by_a_later_tap(world: World) -> None:
    world.sink.on_data = world.dovecot.stop  # the mail server takes the reply, then IMAP goes away
    patient = world.settings.model_copy(update={"smtp_timeout": 60})  # stopping Dovecot may take a while
    async with app_for(patient, world.runtime) as client:
        response = await world.tap(world.links()["send"], client)
    world.sink.on_data = None
    assert response.status_code == 503 and "was sent" in response.text and "not be sent again" in response.text
    effects = await world.effects()
    assert "smtp" in effects and not {"handled", "action", "sent-copy"} & set(effects)

    world.dovecot.start()
    response = await world.tap(world.links()["send"])
    assert response.status_code == 200 and "<h1>Sent</h1>" in response.text
    assert len(world.sink.data_received) == 1 and len(world.folder("Sent")) == 1 and world.drafts() == []
    [(_, flags, _)] = world.folder("INBOX")
    assert "\\Answered" in flags


async def test_a_send_cut_off_after_the_data_is_never_repeated(world: World) -> None:
    world.sink.stalled.set()  # the data arrives, the answer never does (the client times out after 5 s)
    response = await world.tap(world.links()["send"])
    world.sink.stalled.clear()
    assert response.status_code == 200 and "May have been sent" in response.text
    assert "will not be sent again" in response.text and "Sent folder" in response.text
    assert len(world.drafts()) == 1  # kept: the owner may need it
    again = await world.tap(world.links()["send"])
    assert "May have been sent" in again.text and len(world.sink.data_received) == 1
    [edit] = world.telegram.calls_to("editMessageText")
    assert "May have been sent" in edit["text"]


async def test_smtp_not_configured_answers_503_and_changes_nothing(
    tmp_path: Path, db_url: str, dovecot: Dovecot, imap_user: ImapUser, fake_telegram: FakeTelegram,
) -> None:
    settings = settings_from(env_for(tmp_path, db_url, imap_user, fake_telegram, None))
    await upgrade_head(db_url)
    runtime = await build_runtime(settings)
    try:
        message_id, _ = await process(runtime, dovecot, imap_user, make_mail(to=imap_user.user))
        [card] = fake_telegram.messages()
        urls = [b["url"] for b in card["reply_markup"]["inline_keyboard"][0]]
        async with app_for(settings, runtime) as client:
            for url in urls[:2]:
                parsed = urlparse(url)
                response = await client.get(f"{parsed.path}?{parsed.query}")
                assert response.status_code == 503 and "SMTP is not configured" in response.text
            kinds = {e.kind for e in await runtime.store.effects_for(message_id)}
            assert kinds and not kinds & {"action", "smtp-intent", "smtp", "handled"}
            parsed = urlparse(urls[2])
            assert (await client.get(f"{parsed.path}?{parsed.query}")).status_code == 200  # ignore needs no SMTP
    finally:
        await runtime.aclose()


async def test_a_digest_card_shared_with_other_mails_is_left_as_it_is(world: World) -> None:
    ref = (await world.effects())["notify"]
    other, _ = await process(world.runtime, world.dovecot, world.user,
                             make_mail(to=world.user.user, subject="Platform Engineer role at Initech"))
    assert await world.runtime.store.claim_effect(other, "digest-member:notify", "notify", ref)

    response = await world.tap(world.links()["ignore"])

    assert response.status_code == 200 and "<h1>Ignored</h1>" in response.text
    assert world.telegram.calls_to("editMessageText") == []
