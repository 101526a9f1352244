"""bench/latency — how fast a recruiter mail becomes a Telegram card, against the IMAP server's own push delay.

Real Dovecot (or Cyrus: `--server cyrus`), `recruiter run` as a subprocess (shipped defaults), the zero-latency
loopback LLM and Bot API.
Recruiter mails are APPENDed one at a time. For each one, in the same run:

  push     APPEND returning → a bare aioimaplib IDLE client sees the EXISTS (the server's push delay)
  card     APPEND returning → the fake Bot API receives the card's sendMessage
  overhead card − push, per mail: what the service adds above the server

Run from the repository root:  .venv/bin/python -m bench.latency [--mails 200] [--db sqlite|postgresql]
                               [--server dovecot|cyrus]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import re
import secrets
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

if __package__ in (None, ""):  # run as `python bench/latency.py`: the repository root is not on sys.path
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import aioimaplib

from bench import corpus
from bench.common import (
    TimedTelegram,
    add_user,
    cli,
    cpu_seconds,
    database,
    machine,
    ms,
    percentile,
    resources,
    service_env,
    start_cyrus,
    start_dovecot,
    start_llm,
    start_service,
    start_telegram,
    wait_for,
    workdir,
)
from tests.servers.dovecot import ImapUser

TARGET_P50, TARGET_P99 = 0.050, 0.250
_EXISTS = re.compile(rb"^(\d+) EXISTS")


@dataclass
class Sample:
    push: float
    card: float

    @property
    def overhead(self) -> float:
        return self.card - self.push


class BareIdle:
    """A bare aioimaplib client in IDLE that notes when each EXISTS arrives, by message count."""

    def __init__(self, user: ImapUser) -> None:
        self.user = user
        self.seen: dict[int, float] = {}
        self.client: aioimaplib.IMAP4 | None = None
        self.task: asyncio.Task[None] | None = None
        self.idle: asyncio.Future[object] | None = None

    async def start(self) -> int:
        client = aioimaplib.IMAP4(host=self.user.host, port=self.user.port, timeout=30)
        await client.wait_hello_from_server()
        await client.login(self.user.user, self.user.password)
        response = await client.select("INBOX")
        exists = next(int(m.group(1)) for line in response.lines if (m := _EXISTS.match(bytes(line))))
        self.client = client
        self.idle = await client.idle_start(timeout=25 * 60)
        self.task = asyncio.create_task(self._listen())
        return exists

    async def _listen(self) -> None:
        assert self.client is not None
        while True:
            push = await self.client.wait_server_push()
            at = time.monotonic()
            if push == aioimaplib.STOP_WAIT_SERVER_PUSH:
                return
            for line in push:
                match = _EXISTS.match(bytes(line))
                if match:
                    self.seen.setdefault(int(match.group(1)), at)

    async def stop(self) -> None:
        if self.client is None:
            return
        if self.client.has_pending_idle():
            self.client.idle_done()
        if self.task is not None:
            self.task.cancel()
        try:
            if self.idle is not None:
                await asyncio.wait_for(self.idle, 5)
            await asyncio.wait_for(self.client.logout(), 5)
        except Exception:
            pass


async def measure(user: ImapUser, telegram: TimedTelegram, mails: int, warmup: int, gap: float,
                  timeout: float) -> tuple[list[Sample], list[Sample]]:
    bare = BareIdle(user)
    base = await bare.start()
    appender = aioimaplib.IMAP4(host=user.host, port=user.port, timeout=30)
    await appender.wait_hello_from_server()
    await appender.login(user.user, user.password)
    rng, nonce = random.Random(1), secrets.token_hex(3)
    samples: list[Sample] = []
    warm: list[Sample] = []
    try:
        for index in range(warmup + mails):
            tag = f"lat-{nonce}-{index:04d}"
            raw = corpus.recruiter(index, rng, nonce, tag=tag).replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
            response = await appender.append(raw, mailbox="INBOX")
            appended = time.monotonic()
            if response.result != "OK":
                raise SystemExit(f"APPEND answered {response.result}: {response.lines}")
            seq = base + index + 1
            deadline = appended + timeout
            card_at = None
            while time.monotonic() < deadline:
                if card_at is None:
                    card_at = next((at for at, text in reversed(telegram.arrivals) if tag in text), None)
                if card_at is not None and seq in bare.seen:
                    break
                await asyncio.sleep(0.002)
            else:
                raise SystemExit(f"mail {index}: no {'card' if card_at is None else 'EXISTS'} within {timeout:.0f} s")
            sample = Sample(push=bare.seen[seq] - appended, card=card_at - appended)
            (warm if index < warmup else samples).append(sample)
            if (index + 1) % 25 == 0:
                print(f"  {index + 1 - warmup:4d} mails  last: push {ms(sample.push)}  card {ms(sample.card)}",
                      file=sys.stderr, flush=True)
            # Quiet time: Dovecot starts its 500 ms notify timer on any change of the folder (the service's
            # FETCH updates the index), so mail appended sooner than that reaches a long-idling client early.
            await asyncio.sleep(gap + 0.4 * random.random())
    finally:
        await bare.stop()
        try:
            await asyncio.wait_for(appender.logout(), 5)
        except Exception:
            pass
    return warm, samples


def report(samples: list[Sample], warm: list[Sample], db: str) -> bool:
    rows = (("push (bare IDLE client: APPEND → EXISTS)", [s.push for s in samples]),
            ("card (service: APPEND → sendMessage)", [s.card for s in samples]),
            ("overhead (card − push, per mail)", [s.overhead for s in samples]))
    print(f"\nbench/latency — {len(samples)} recruiter mails one at a time, database {db}")
    print(f"machine: {machine()}")
    print(f"{'':44s} {'p50':>11s} {'p90':>11s} {'p99':>11s} {'max':>11s}")
    for label, values in rows:
        print(f"{label:44s} {ms(percentile(values, 50))} {ms(percentile(values, 90))} "
              f"{ms(percentile(values, 99))} {ms(max(values))}")
    over = [s.overhead for s in samples]
    p50, p99 = percentile(over, 50), percentile(over, 99)
    card50, push50 = percentile([s.card for s in samples], 50), percentile([s.push for s in samples], 50)
    print(f"ratio card/push at p50: {card50 / push50:.2f}×")
    if warm:
        print(f"warm-up (not counted, first connections): {', '.join(ms(s.card).strip() for s in warm)} to the card")
    ok = p50 <= TARGET_P50 and p99 <= TARGET_P99
    print(f"target overhead p50 ≤ {TARGET_P50 * 1000:.0f} ms: {'MET' if p50 <= TARGET_P50 else 'MISSED'} "
          f"({p50 * 1000:.1f} ms); p99 ≤ {TARGET_P99 * 1000:.0f} ms: {'MET' if p99 <= TARGET_P99 else 'MISSED'} "
          f"({p99 * 1000:.1f} ms)")
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mails", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=3, help="mails sent first and not counted (default 3)")
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--server", choices=("dovecot", "cyrus"), default="dovecot",
                        help="the IMAP server (Cyrus: installed as .ci/run does, see tests/servers/cyrus.py)")
    parser.add_argument("--gap", type=float, default=0.6,
                        help="quiet time after each card before the next APPEND, seconds (plus 0–0.4 s random)")
    parser.add_argument("--timeout", type=float, default=30.0, help="per mail, seconds")
    parser.add_argument("--idle-check", default="30s",
                        help="Dovecot's mailbox_idle_check_interval (default: Dovecot's own 30s; the tests use 1s)")
    parser.add_argument("--profile", metavar="FILE", help="run the service under cProfile, stats written here")
    parser.add_argument("--keep-log", metavar="FILE", help="copy the service's log here at the end")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args()
    with resources() as stack:
        cwd = workdir(stack)
        server = start_dovecot(stack, idle_check=args.idle_check) if args.server == "dovecot" else start_cyrus(stack)
        user = add_user(server)
        llm = start_llm(stack)
        telegram = start_telegram(stack)
        env = service_env(cwd, database(stack, args.db, cwd), user, llm, telegram)
        cli(env, cwd, "migrate")
        service = start_service(stack, env, cwd, profile=args.profile and str(Path(args.profile).resolve()))
        wait_for(lambda: service.events("imap.first_start"), timeout=60, what="the watcher's first start",
                 service=service)
        cpu_before = cpu_seconds(service.pid)
        warm, samples = asyncio.run(measure(user, telegram, args.mails, args.warmup, args.gap, args.timeout))
        cpu = cpu_seconds(service.pid) - cpu_before
        if not service.alive():
            raise SystemExit(f"the service died:\n{service.tail()}")
        ok = report(samples, warm, f"{args.db}, IMAP server {args.server}")
        print(f"service CPU: {cpu / (len(samples) + len(warm)) * 1000:.1f} ms per mail (user + system)")
        if args.keep_log:
            shutil.copyfile(service.log_path, args.keep_log)
    return 1 if args.check and not ok else 0


if __name__ == "__main__":
    sys.exit(main())
