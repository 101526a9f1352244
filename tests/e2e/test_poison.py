"""No single mail may stop the service: `recruiter run` with real Dovecot on SQLite and PostgreSQL.

Each crafted mail — the three of the report (700 nested comments in From, a utf-7 subject that decodes
to a lone surrogate, a 900-character Message-ID), and others of their kind — is followed by a normal
recruiter mail, whose card must still arrive. Mail that cannot be read at all is quarantined: dead in the
DLQ with its reason (CLI and API), counted in /metrics, and the owner is told in one batched notice.
"""

from __future__ import annotations

import time
from typing import Any

import httpx

from tests.mailfactory import make_mail
from tests.servers.dovecot import Dovecot, free_port
from tests.servers.fake_telegram import FakeTelegram
from tests.support.poll import wait_for
from tests.support.service import card_ids, cli, start, stored

CRAFTED: dict[str, bytes] = {
    "nested-comments": b"From: Bob " + b"(" * 700 + b")" * 700 + b" <bob@x.example>\r\nSubject: nested\r\n"
                       b"Message-ID: <nested-700@x.example>\r\n\r\nhello\r\n",
    "unbalanced-comments": b"From: Bob " + b"(" * 3000 + b" <bob@x.example>\r\nTo: " + b"(" * 3000 + b"\r\n"
                           b"Subject: unbalanced\r\nMessage-ID: <unbalanced@x.example>\r\n\r\nhi\r\n",
    "utf7-surrogate": b"From: a@x.example\r\nSubject: =?utf-7?Q?+2AA-?=\r\nMessage-ID: <utf7@x.example>\r\n\r\nhi\r\n",
    "unicode-escape": b"From: =?unicode-escape?Q?=5Cud800=5Cx00?= <c@x.example>\r\n"
                      b"Subject: =?unicode-escape?B?XHVkZmZmXHgwMA==?=\r\nMessage-ID: <ue@x.example>\r\n\r\nhi\r\n",
    "long-message-id": make_mail(subject="a long id", message_id=f"<{'m' * 900}@x.example>"),
    "nul-bytes": b"From: nul\x00@x.example\r\nSubject: a\x00b\r\nMessage-ID: <nul\x00@x.example>\r\n\r\n\x00\x00\r\n",
    "huge-header": b"From: d@x.example\r\nSubject: " + b"s" * 300_000 + b"\r\nMessage-ID: <huge@x>\r\n\r\nhi\r\n",
    "no-header-block": b"\x00\x01\x02 this is not a mail at all \xff\xfe\r\n\r\n",
}


def _card_for(fake_telegram: FakeTelegram, subject: str) -> bool:
    return any(subject in m["text"] and "reply_markup" in m for m in fake_telegram.messages())


def test_no_crafted_mail_stops_the_mailbox(setup: dict[str, Any], dovecot: Dovecot,
                                           fake_telegram: FakeTelegram) -> None:
    port = free_port()
    setup["env"].update({"HTTP_PORT": str(port), "DEAD_NOTICE_SECONDS": "3"})
    user = setup["user"]
    service = start(setup)
    try:
        for number, (name, raw) in enumerate(CRAFTED.items()):
            dovecot.append(user.user, raw)
            subject = f"Recruiting: Staff role #{number} after {name}"
            dovecot.append(user.user, make_mail(subject=subject))
            wait_for(lambda subject=subject: _card_for(fake_telegram, subject), timeout=30,  # type: ignore[misc]
                     what=f"the card of the mail after {name}")
            assert service.proc.poll() is None, f"the service exited after {name}"
            assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200

        rows = wait_for(lambda: (r := stored(setup["env"], setup["cwd"])) and len(r) == 2 * len(CRAFTED)
                        and all(m["state"] in {"done", "skipped", "dead"} for m in r) and r,
                        timeout=60, what="every mail stored and finished")
        dead = [r for r in rows if r["state"] == "dead"]
        assert [r["dead_reason"] for r in dead] == ["unparseable"], dead  # only the mail that is no mail
        assert {r["subject"] for r in rows if r["state"] == "done"} >= {
            f"Recruiting: Staff role #{i} after {n}" for i, n in enumerate(CRAFTED)}

        listed = cli(setup["env"], setup["cwd"], "dlq", "list", "--json")
        assert listed.returncode == 0 and '"unparseable"' in listed.stdout
        api = httpx.get(f"http://127.0.0.1:{port}/api/dlq", headers={"Authorization": "Bearer crash-secret-1"},
                        timeout=10).json()
        assert [m["dead_reason"] for m in api["messages"]] == ["unparseable"], api
        metrics = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
        assert "recruiter_quarantined_messages 1.0" in metrics
        assert 'recruiter_dlq_messages{reason="unparseable"} 1.0' in metrics

        notice = wait_for(lambda: [m["text"] for m in fake_telegram.messages()
                                   if "could not be processed" in m["text"]], timeout=30, what="the dead notice")
        assert len(notice) == 1 and f"recruiter dlq retry {dead[0]['id']}" in notice[0], notice
        time.sleep(4)  # no second notice for the same death
        assert len([m for m in fake_telegram.messages() if "could not be processed" in m["text"]]) == 1
        assert service.proc.poll() is None
    finally:
        code = service.stop()
        print("".join(service.lines[-40:]))
    assert code == 0
    assert set(card_ids(fake_telegram).values()) == {1}  # one card per recruiter mail, nothing twice
