"""A draft is identified exactly (issue 12): against real Dovecot, the SMTP sink and the loopback Bot API.

SEARCH HEADER is a substring match, so it only narrows: the key is compared exactly, versions of one draft
are sent newest-first and all deleted, and a draft that lost our header counts only when its In-Reply-To
is exactly the mail's Message-ID and it is the only one. The draft stage's resume check uses the same rule.
"""

from __future__ import annotations

import email
import secrets
from collections.abc import AsyncIterator
from email import policy
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path

import pytest

from recruiter.ingest.describe import describe
from recruiter.reply.compose import KEY_HEADER
from recruiter.reply.drafts import ImapDrafts
from recruiter.settings import settings_from
from tests.mailfactory import make_mail
from tests.servers.dovecot import Dovecot, ImapUser
from tests.servers.fake_telegram import FakeTelegram
from tests.servers.smtp import SmtpSink
from tests.support.callbacks import World, bare_world, env_for, process, uidvalidity

pytestmark = [pytest.mark.filterwarnings("ignore:Session.login_data is deprecated:DeprecationWarning"),
              pytest.mark.both_imap_servers]

JANE = "jane@acme-talent.example"
BOB = "bob@initech-jobs.example"


@pytest.fixture
async def bare(tmp_path: Path, db_url: str, dovecot: Dovecot, imap_user: ImapUser, fake_telegram: FakeTelegram,
               smtp_sink: SmtpSink) -> AsyncIterator[World]:
    """A World with no mail processed yet (``message_id``/``key`` are filled in by :func:`deliver`)."""
    settings = settings_from(env_for(tmp_path, db_url, imap_user, fake_telegram, smtp_sink))
    async with bare_world(settings, dovecot, imap_user, fake_telegram, smtp_sink) as world:
        yield world


async def deliver(world: World, raw: bytes) -> tuple[int, str]:
    """Process one mail through the real pipeline; its stored id and key."""
    message_id, _ = await process(world.runtime, world.dovecot, world.user, raw)
    row = await world.runtime.store.get(message_id)
    assert row is not None and (row.state, row.is_recruiter) == ("done", True), row and row.last_error
    return message_id, row.key


def send_link(world: World, message_id: int) -> str:
    for card in world.telegram.messages():
        if "reply_markup" in card:
            url = card["reply_markup"]["inline_keyboard"][0][0]["url"]
            if f"m={message_id}&" in url:
                return str(url)
    raise AssertionError(f"no card for message {message_id}")


def drafts(world: World) -> list[tuple[int, EmailMessage]]:
    return [(uid, parse(raw)) for uid, _, raw in world.drafts()]


def parse(raw: bytes) -> EmailMessage:
    message = email.message_from_bytes(raw, policy=policy.default)
    assert isinstance(message, EmailMessage)
    return message


def draft_for(world: World, key: str) -> tuple[int, EmailMessage]:
    [found] = [(uid, d) for uid, d in drafts(world) if d[KEY_HEADER] == key]
    return found


def edit(world: World, uid: int, body: str, *, to: str | None = None, keep_key: bool = False,
         expunge_old: bool = True) -> EmailMessage:
    """What a mail program does when the owner edits and saves a draft: a new message (our header dropped
    unless ``keep_key``) replaces the old one."""
    [old] = [d for u, d in drafts(world) if u == uid]
    if not keep_key:
        del old[KEY_HEADER]
    del old["Message-ID"]
    old["Message-ID"] = make_msgid(domain="example.org")
    if to is not None:
        del old["To"]
        old["To"] = to
    old.set_content(body)
    world.dovecot.append(world.user.user, old.as_bytes(policy=policy.SMTP), "Drafts", ("\\Draft",))
    if expunge_old:
        client = world.dovecot.connect(world.user.user)
        try:
            client.select("Drafts")
            client.uid("STORE", str(uid), "+FLAGS", "(\\Deleted)")
            client.expunge()
        finally:
            client.logout()
    return old


def body(mail: EmailMessage) -> str:
    return str(mail.get_content()).replace("\r\n", "\n").strip()


def sent(world: World) -> list[tuple[tuple[str, ...], EmailMessage]]:
    return [(tuple(m.rcpt_tos), parse(m.content)) for m in world.sink.messages]


async def test_message_ids_that_contain_each_other_get_their_own_drafts(bare: World) -> None:
    tag = secrets.token_hex(4)
    first, first_key = await deliver(bare, make_mail(message_id=f"<{tag}@x.example>", subject="SRE role at Acme"))
    second, second_key = await deliver(bare, make_mail(
        message_id=f"<z{tag}@x.example>", sender=f"Bob <{BOB}>", subject="Platform role at Initech"))
    assert first_key in second_key  # SEARCH HEADER for the first key finds both drafts

    response = await bare.tap(send_link(bare, first))

    assert response.status_code == 200 and "<h1>Sent</h1>" in response.text, response.text
    [(rcpts, mail)] = sent(bare)
    assert rcpts == (JANE,) and mail["In-Reply-To"] == f"<{tag}@x.example>"
    [(_, left)] = drafts(bare)  # only the first mail's draft was deleted
    assert left[KEY_HEADER] == second_key

    response = await bare.tap(send_link(bare, second))
    assert response.status_code == 200 and "<h1>Sent</h1>" in response.text, response.text
    assert [r for r, _ in sent(bare)] == [(JANE,), (BOB,)] and drafts(bare) == []


async def test_a_follow_up_in_the_thread_never_takes_the_first_mails_edited_draft(bare: World) -> None:
    tag = secrets.token_hex(4)
    first_id, follow_id = f"<first-{tag}@acme.example>", f"<follow-{tag}@acme.example>"
    first, first_key = await deliver(bare, make_mail(message_id=first_id))
    follow, follow_key = await deliver(bare, make_mail(
        message_id=follow_id, subject="Re: Staff SRE role at Acme",
        body="Hi Alex, just following up on my note about the Staff SRE role. Any interest?\n",
        headers={"In-Reply-To": first_id, "References": first_id}))
    follow_uid, follow_draft = draft_for(bare, follow_key)
    assert first_id in follow_draft["References"] and follow_draft["In-Reply-To"] == follow_id
    # The owner edits both drafts in a client that drops our header; the follow-up's is the newer one.
    first_uid, _ = draft_for(bare, first_key)
    edited_first = edit(bare, first_uid, "Hi Jane,\n\nEDITED FIRST: tell me more.\n\nAlex\n",
                        to="Jane Private <jane.private@acme-talent.example>")
    follow_uid, _ = draft_for(bare, follow_key)
    edit(bare, follow_uid, "Hi Jane,\n\nEDITED FOLLOW-UP\n\nAlex\n")

    response = await bare.tap(send_link(bare, first))

    assert response.status_code == 200 and "<h1>Sent</h1>" in response.text, response.text
    [(rcpts, mail)] = sent(bare)
    assert rcpts == ("jane.private@acme-talent.example",)  # the edited draft's recipient
    assert body(mail) == body(edited_first)
    assert "EDITED FIRST" in response.text and "jane.private@acme-talent.example" in response.text
    [(_, left)] = drafts(bare)
    assert "EDITED FOLLOW-UP" in left.get_content()

    response = await bare.tap(send_link(bare, follow))
    assert response.status_code == 200 and "<h1>Sent</h1>" in response.text, response.text
    assert "EDITED FOLLOW-UP" in sent(bare)[1][1].get_content() and drafts(bare) == []


async def test_versions_with_the_exact_key_newest_sent_all_deleted(bare: World) -> None:
    tag = secrets.token_hex(4)
    first, key = await deliver(bare, make_mail(message_id=f"<{tag}@x.example>"))
    await deliver(bare, make_mail(message_id=f"<z{tag}@x.example>", sender=f"Bob <{BOB}>"))
    uid, _ = draft_for(bare, key)
    edit(bare, uid, "Hi Jane,\n\nVERSION TWO\n\nAlex\n", keep_key=True, expunge_old=False)
    newest = [u for u, d in drafts(bare) if d[KEY_HEADER] == key][-1]
    edit(bare, newest, "Hi Jane,\n\nVERSION THREE\n\nAlex\n", keep_key=True, expunge_old=False)

    response = await bare.tap(send_link(bare, first))

    assert response.status_code == 200, response.text
    [(rcpts, mail)] = sent(bare)
    assert rcpts == (JANE,) and "VERSION THREE" in mail.get_content()
    assert [d[KEY_HEADER] for _, d in drafts(bare)] == [f"z{tag}@x.example"]


async def test_competing_drafts_without_the_key_send_nothing_and_say_which(bare: World) -> None:
    tag = secrets.token_hex(4)
    original_id = f"<{tag}@acme.example>"
    first, key = await deliver(bare, make_mail(message_id=original_id))
    uid, _ = draft_for(bare, key)
    edit(bare, uid, "Hi Jane,\n\nMY EDIT\n\nAlex\n")
    # The owner also started a reply of their own in the mail program (no key, same In-Reply-To).
    own = make_mail(sender=bare.user.user, to=JANE, subject="Re: Staff SRE role at Acme (my own words)",
                    body="Jane, a second attempt.\n", headers={"In-Reply-To": original_id})
    bare.dovecot.append(bare.user.user, own, "Drafts", ("\\Draft",))
    before = [u for u, _ in drafts(bare)]

    response = await bare.tap(send_link(bare, first))

    assert response.status_code == 409, response.text
    assert "Nothing was sent" in response.text and "(my own words)" in response.text
    for competing in before:
        assert f"draft {competing}" in response.text
    assert bare.sink.data_received == [] and [u for u, _ in drafts(bare)] == before
    # The owner deletes the one not wanted; the link works again and sends the other.
    client = bare.dovecot.connect(bare.user.user)
    try:
        client.select("Drafts")
        client.uid("STORE", str(before[-1]), "+FLAGS", "(\\Deleted)")
        client.expunge()
    finally:
        client.logout()
    response = await bare.tap(send_link(bare, first))
    assert response.status_code == 200 and "<h1>Sent</h1>" in response.text, response.text
    [(_, mail)] = sent(bare)
    assert "MY EDIT" in mail.get_content() and drafts(bare) == []


async def test_a_reply_to_another_mail_is_never_taken_and_only_what_was_sent_is_deleted(bare: World) -> None:
    tag = secrets.token_hex(4)
    original_id = f"<{tag}@acme.example>"
    first, key = await deliver(bare, make_mail(message_id=original_id))
    uid, _ = draft_for(bare, key)
    edit(bare, uid, "Hi Jane,\n\nTHE ONE\n\nAlex\n")
    # An unrelated draft whose References (not In-Reply-To) hold the original: never a candidate, never deleted.
    other = make_mail(sender=bare.user.user, to=BOB, subject="Re: something else",
                      headers={"In-Reply-To": f"<other-{tag}@initech.example>",
                               "References": f"{original_id} <other-{tag}@initech.example>"})
    bare.dovecot.append(bare.user.user, other, "Drafts", ("\\Draft",))

    response = await bare.tap(send_link(bare, first))

    assert response.status_code == 200, response.text
    [(rcpts, mail)] = sent(bare)
    assert rcpts == (JANE,) and "THE ONE" in mail.get_content()
    [(_, left)] = drafts(bare)
    assert left["Subject"] == "Re: something else"


async def test_the_resume_check_finds_only_its_own_draft(bare: World) -> None:
    tag = secrets.token_hex(4)
    mb = bare.settings.mailboxes[0]
    sink = ImapDrafts(mb, timeout=5)
    original_id = f"<{tag}@x.example>"
    try:
        # Another mail's draft whose key contains ours, and a reply threaded under ours only by References.
        longer = make_mail(sender=bare.user.user, to=BOB, headers={KEY_HEADER: f"z{tag}@x.example"})
        bare.dovecot.append(bare.user.user, longer, "Drafts", ("\\Draft",))
        assert await sink.find(f"{tag}@x.example", original_id) is None
        # A resumed message at the draft stage writes its own draft instead of "finding" that one.
        raw = make_mail(message_id=original_id)
        uid = bare.dovecot.append(bare.user.user, raw)
        new = describe(raw, mailbox="me", folder="INBOX", uidvalidity=uidvalidity(bare.dovecot, bare.user.user),
                       uid=uid)
        message_id = await bare.runtime.store.add_message(new)
        assert message_id is not None
        [row] = await bare.runtime.store.claim("test", limit=1, lease_seconds=30)
        await bare.runtime.store.release(row.id, "test", stage="draft", is_recruiter=True, triage_tier="rules",
                                         triage={"is_recruiter": True, "confidence": 0.9},
                                         draft_text="Hi Jane,\n\nRESUMED DRAFT\n\nAlex\n")
        await bare.runtime.worker.drain()
        done = await bare.runtime.store.get(message_id)
        assert done is not None and done.state == "done", done and done.last_error
        assert await sink.find(f"{tag}@x.example", original_id) is not None
        mine = [d for _, d in drafts(bare) if d[KEY_HEADER] == f"{tag}@x.example"]
        assert len(mine) == 1 and "RESUMED DRAFT" in mine[0].get_content()
        # The exact key is found again on a second resume: no second draft.
        assert len(drafts(bare)) == 2
        # An edited version without our header that is the only reply counts as the draft.
        edit(bare, next(u for u, d in drafts(bare) if d[KEY_HEADER] == f"{tag}@x.example"), "EDITED\n")
        assert await sink.find(f"{tag}@x.example", original_id) is not None
        assert await sink.find(f"{tag}@x.example", None) is None
    finally:
        await sink.aclose()
