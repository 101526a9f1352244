"""A UIDVALIDITY change loses nothing: `recruiter run` with real Dovecot, the folder's UIDVALIDITY changed
with ``doveadm mailbox update --uid-validity`` while the service is down, read and unread mail in between.
The service compares the folder with the store and stores what is missing, exactly once; killed with
kill -9 half-way through that re-scan, it re-scans on its next start and still stores each mail once."""

from __future__ import annotations

import signal
import time
from collections import Counter
from typing import Any

from tests.mailfactory import make_mail
from tests.servers.dovecot import Dovecot
from tests.servers.fake_telegram import FakeTelegram
from tests.support.poll import wait_for
from tests.support.service import Service, card_ids, finished, start, stored

BETWEEN = 120  # newsletters while the service is down (prefiltered: no LLM), for a re-scan that takes a while


def _newsletter(i: int) -> bytes:
    return make_mail(subject=f"Weekly digest #{i}", sender="news@lists.example",
                     headers={"List-Id": "<weekly.lists.example>", "List-Unsubscribe": "<mailto:u@lists.example>",
                              "Precedence": "bulk"})


def test_uidvalidity_change_with_a_kill_during_the_rescan_stores_each_mail_once(
    setup: dict[str, Any], dovecot: Dovecot, fake_telegram: FakeTelegram,
) -> None:
    user = setup["user"]
    service = start(setup)
    try:
        dovecot.append(user.user, make_mail(subject="Recruiting: stored before the change"))
        wait_for(lambda: finished(setup["env"], setup["cwd"], 1), timeout=30, what="the first mail")
    finally:
        assert service.stop() == 0

    dovecot.append(user.user, make_mail(subject="Recruiting: unread, between"))
    dovecot.append(user.user, make_mail(subject="Recruiting: read, between"), flags=("\\Seen",))
    for i in range(BETWEEN):
        dovecot.append(user.user, _newsletter(i), flags=("\\Seen",) if i % 2 else ())
    dovecot.set_uidvalidity(user.user, int(time.time()) + 1000)

    killed = Service(setup["env"], setup["cwd"])
    try:
        wait_for(lambda: killed.events("imap.uidvalidity_changed"), timeout=30, what="the re-scan starting")
        wait_for(lambda: len(killed.events("mail.received")) >= 5, timeout=30, what="the re-scan storing mail")
        killed.proc.send_signal(signal.SIGKILL)
        killed.proc.wait(timeout=10)
        assert not killed.events("imap.rescanned"), "the re-scan finished before the kill: make it longer"
    finally:
        if killed.proc.poll() is None:
            killed.proc.kill()

    service = start(setup)
    try:
        wait_for(lambda: service.events("imap.rescanned"), timeout=60, what="the re-scan after the restart")
        dovecot.append(user.user, make_mail(subject="Recruiting: after the change"))
        rows = wait_for(lambda: finished(setup["env"], setup["cwd"], 4 + BETWEEN),
                        timeout=90, what="every mail processed")
        time.sleep(2)
        rows = stored(setup["env"], setup["cwd"])
    finally:
        assert service.stop() == 0
    subjects = Counter(r["subject"] for r in rows)
    assert len(rows) == 4 + BETWEEN and set(subjects.values()) == {1}, subjects.most_common(3)
    assert {r["state"] for r in rows} <= {"done", "skipped"}
    assert len(card_ids(fake_telegram)) == 4 and set(card_ids(fake_telegram).values()) == {1}
    assert service.events("imap.rescanned")[0]["stored"] < 3 + BETWEEN  # the killed run had stored some
