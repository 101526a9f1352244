"""Reasons nobody thought of, made real with PostgreSQL triggers under a running `recruiter run`:

* the store refuses one mail's row with an error code that says nothing about values (a trigger's
  RAISE): it takes other writes, so the mail is quarantined and the next mail flows;
* the store refuses every row for one UID (the mail, its quarantine row, the minimal row): the mailbox
  stalls there, and the owner gets one alert naming the mailbox, the UID and the error class, and one
  message when it moves again.
"""

from __future__ import annotations

import re
import time
from typing import Any
from urllib.parse import urlparse

import asyncpg

from tests.mailfactory import make_mail
from tests.servers.dovecot import Dovecot, ImapUser
from tests.servers.fake_llm import FakeLLM
from tests.servers.fake_telegram import FakeTelegram
from tests.servers.postgres import PG_HOST, PG_PORT, _run_in_thread
from tests.support.poll import wait_for
from tests.support.service import card_ids, cli, finished, service_env, start, stored


def _in_database(url: str, sql: str) -> None:
    database = urlparse(url).path.lstrip("/")

    async def run() -> None:
        conn = await asyncpg.connect(host=PG_HOST, port=PG_PORT, user="postgres", database=database)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    _run_in_thread(run)


REFUSE_SUBJECT = """
CREATE FUNCTION refuse_mail() RETURNS trigger AS $$
BEGIN
  IF NEW.subject LIKE '%refuse me%' AND NEW.key NOT LIKE 'sha256:%' THEN
    RAISE EXCEPTION 'refused by policy';  -- SQLSTATE P0001: nothing about the values as such
  END IF;
  RETURN NEW;
END $$ LANGUAGE plpgsql;
CREATE TRIGGER refuse_mail BEFORE INSERT ON messages FOR EACH ROW EXECUTE FUNCTION refuse_mail();
"""


def _world(tmp_path: Any, pg_url: str, imap_user: ImapUser, fake_llm: FakeLLM,
           fake_telegram: FakeTelegram) -> dict[str, Any]:
    env = service_env(tmp_path, pg_url, imap_user, fake_llm, fake_telegram)
    env.update({"IMAP_ALERT_AFTER_SECONDS": "6", "DEAD_NOTICE_SECONDS": "2"})
    assert cli(env, tmp_path, "migrate").returncode == 0
    return {"env": env, "cwd": tmp_path, "user": imap_user}


def _texts(fake_telegram: FakeTelegram) -> list[str]:
    return [re.sub(r"<[^>]+>", "", m["text"]) for m in fake_telegram.messages() if "reply_markup" not in m]


def test_a_mail_the_store_refuses_for_an_unknown_reason_is_quarantined(
    tmp_path: Any, dovecot: Dovecot, imap_user: ImapUser, pg_url: str, fake_llm: FakeLLM,
    fake_telegram: FakeTelegram,
) -> None:
    world = _world(tmp_path, pg_url, imap_user, fake_llm, fake_telegram)
    _in_database(pg_url, REFUSE_SUBJECT)
    service = start(world)
    try:
        dovecot.append(imap_user.user, make_mail(subject="Recruiting: please refuse me"))
        dovecot.append(imap_user.user, make_mail(subject="Recruiting: the next role"))
        rows = wait_for(lambda: finished(world["env"], world["cwd"], 2),
                        timeout=40, what="both mails stored and finished")
    finally:
        code = service.stop()
        print("".join(service.lines[-40:]))
    assert code == 0
    by_subject = {r["subject"]: r for r in rows}
    refused = by_subject["Recruiting: please refuse me"]
    assert refused["state"] == "dead" and refused["dead_reason"] == "store_rejected", refused
    assert by_subject["Recruiting: the next role"]["state"] == "done"
    assert len(card_ids(fake_telegram)) == 1
    assert not any(t.startswith("⚠️ The database is unavailable") for t in _texts(fake_telegram))


def test_a_mailbox_stuck_at_one_uid_is_told_once_and_when_it_moves(
    tmp_path: Any, dovecot: Dovecot, imap_user: ImapUser, pg_url: str, fake_llm: FakeLLM,
    fake_telegram: FakeTelegram,
) -> None:
    world = _world(tmp_path, pg_url, imap_user, fake_llm, fake_telegram)
    service = start(world)
    try:
        dovecot.append(imap_user.user, make_mail(subject="Recruiting: before"))
        wait_for(lambda: finished(world["env"], world["cwd"], 1), timeout=30, what="the first mail")
        _in_database(pg_url, """
            CREATE FUNCTION refuse_uid() RETURNS trigger AS $$
            BEGIN
              IF NEW.uid = 2 THEN RAISE EXCEPTION 'UID 2 is cursed'; END IF;
              RETURN NEW;
            END $$ LANGUAGE plpgsql;
            CREATE TRIGGER refuse_uid BEFORE INSERT ON messages FOR EACH ROW EXECUTE FUNCTION refuse_uid();
        """)
        dovecot.append(imap_user.user, make_mail(subject="Recruiting: cursed"))
        dovecot.append(imap_user.user, make_mail(subject="Recruiting: behind it"))
        alert = wait_for(lambda: [t for t in _texts(fake_telegram) if "is stuck" in t], timeout=60,
                         what="the stalled-mailbox alert")
        assert len(alert) == 1 and "Mailbox me is stuck" in alert[0], alert
        assert "Stuck at UID: 2" in alert[0] and "IngestBlocked" in alert[0], alert[0]
        time.sleep(8)
        assert len([t for t in _texts(fake_telegram) if "is stuck" in t]) == 1  # once
        assert not any("cannot connect" in t or "database is unavailable" in t for t in _texts(fake_telegram))
        assert service.proc.poll() is None
        _in_database(pg_url, "DROP TRIGGER refuse_uid ON messages")
        wait_for(lambda: finished(world["env"], world["cwd"], 3), timeout=90, what="the mailbox moving again")
        wait_for(lambda: any("Mailbox me moves again" in t for t in _texts(fake_telegram)), timeout=30,
                 what="the recovery message")
        rows = stored(world["env"], world["cwd"])
    finally:
        code = service.stop()
        print("".join(service.lines[-40:]))
    assert code == 0
    assert {r["subject"]: r["state"] for r in rows} == {
        "Recruiting: before": "done", "Recruiting: cursed": "done", "Recruiting: behind it": "done"}
