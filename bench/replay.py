"""bench/replay — backlog throughput of `recruiter replay` against a bare UID FETCH of the same mail.

Real Dovecot with 5,000 unread messages (a generated mix: about 1 in 5 recruiter mail, the rest
newsletters, notifications and personal mail), the zero-latency loopback LLM, digest notifications to
the loopback Bot API. For each database, in the same run:

  bare     a bare aioimaplib client: SELECT, UID SEARCH UNSEEN, UID FETCH BODY.PEEK[] in batches of 100
  replay   `recruiter replay --own-worker --json` on a fresh database, wall time of the command
           (Python start-up included) and the command's own time (from its JSON summary)

Targets: ≥ 200 messages/s and ≤ 4× the bare fetch time, on SQLite and on PostgreSQL.

Run from the repository root:  .venv/bin/python -m bench.replay [--messages 5000] [--db both|sqlite|postgresql]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import imaplib
import json
import re
import subprocess
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as `python bench/replay.py`: the repository root is not on sys.path
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import aioimaplib

from bench import corpus
from bench.common import (
    PYTHON,
    add_user,
    cli,
    database,
    machine,
    resources,
    service_env,
    start_dovecot,
    start_llm,
    start_telegram,
    workdir,
)
from tests.servers.dovecot import ImapUser

TARGET_RATE, TARGET_RATIO = 200.0, 4.0
_LITERAL = re.compile(rb"\{(\d+)\}$")


def fill(user: ImapUser, count: int) -> collections.Counter[str]:
    """APPEND ``count`` unread mails of the mix over one connection; returns how many of each kind."""
    kinds: collections.Counter[str] = collections.Counter()
    client = imaplib.IMAP4(user.host, user.port, timeout=30)
    client.login(user.user, user.password)
    try:
        for kind, raw in corpus.mixed(count, seed=20):
            status, data = client.append("INBOX", None, None, raw)
            if status != "OK":
                raise SystemExit(f"APPEND answered {status} {data!r}")
            kinds[kind] += 1
    finally:
        client.logout()
    return kinds


async def bare_fetch(user: ImapUser, batch: int = 100) -> tuple[float, int, int]:
    """(seconds, messages, bytes) of SEARCH UNSEEN + UID FETCH BODY.PEEK[] of all of them, bare aioimaplib."""
    client = aioimaplib.IMAP4(host=user.host, port=user.port, timeout=60)
    await client.wait_hello_from_server()
    await client.login(user.user, user.password)
    started = time.monotonic()
    await client.select("INBOX")
    response = await client.uid_search("UNSEEN", charset=None)
    uids = [int(tok) for line in response.lines for tok in bytes(line).split() if tok.isdigit()]
    messages = size = 0
    for start in range(0, len(uids), batch):
        chunk = ",".join(str(u) for u in uids[start:start + batch])
        answer = await client.uid("fetch", chunk, "(UID BODY.PEEK[])")
        if answer.result != "OK":
            raise SystemExit(f"UID FETCH answered {answer.result}")
        for line in answer.lines:
            if isinstance(line, bytearray):
                messages += 1
                size += len(line)
    seconds = time.monotonic() - started
    await client.logout()
    return seconds, messages, size


def replay(env: dict[str, str], cwd: object) -> tuple[float, dict[str, object]]:
    started = time.monotonic()
    result = subprocess.run([PYTHON, "-m", "recruiter", "replay", "--own-worker", "--json"], env=env, cwd=cwd,
                            capture_output=True, text=True, timeout=3600, check=False)
    wall = time.monotonic() - started
    if result.returncode != 0:
        raise SystemExit(f"`recruiter replay` exited {result.returncode}:\n{result.stderr[-3000:]}")
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    return wall, summary


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--db", choices=("both", "sqlite", "postgresql"), default="both")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args()
    kinds = ("sqlite", "postgresql") if args.db == "both" else (args.db,)
    rows = []
    with resources() as stack:
        dovecot = start_dovecot(stack)
        user = add_user(dovecot)
        llm = start_llm(stack)
        telegram = start_telegram(stack)
        t0 = time.monotonic()
        mix = fill(user, args.messages)
        print(f"  {args.messages} unread messages appended in {time.monotonic() - t0:.1f} s: {dict(mix)}",
              file=sys.stderr, flush=True)
        for kind in kinds:
            cwd = workdir(stack)
            env = service_env(cwd, database(stack, kind, cwd), user, llm, telegram)
            cli(env, cwd, "migrate")
            bare_seconds, fetched, size = asyncio.run(bare_fetch(user))
            llm_before, cards_before = len(llm.requests), telegram.sent()
            wall, summary = replay(env, cwd)
            rows.append((kind, bare_seconds, fetched, size, wall, summary, len(llm.requests) - llm_before,
                         telegram.sent() - cards_before))
            print(f"  {kind}: bare fetch {bare_seconds:.2f} s, replay {wall:.2f} s", file=sys.stderr, flush=True)
    return 1 if not report(rows, args.messages, mix) and args.check else 0


def report(rows: list[tuple], count: int, mix: collections.Counter[str]) -> bool:  # type: ignore[type-arg]
    print(f"\nbench/replay — {count} unread messages {dict(mix)}")
    print(f"machine: {machine()}")
    print(f"{'db':11s} {'bare fetch':>11s} {'replay wall':>12s} {'replay own':>11s} {'msg/s wall':>11s} "
          f"{'msg/s own':>10s} {'× bare':>7s}  processed · recruiter · skipped · dead · LLM calls · digests")
    ok = True
    for kind, bare, fetched, size, wall, s, llm_calls, digests in rows:
        processed = int(s["processed"])  # type: ignore[call-overload]
        own = float(s["seconds"])  # type: ignore[arg-type]
        rate, ratio = processed / wall, wall / bare
        print(f"{kind:11s} {bare:10.2f}s {wall:11.2f}s {own:10.2f}s {rate:11.0f} {processed / own:10.0f} "
              f"{ratio:6.2f}×  {processed} · {s['recruiter']} · {s['skipped']} · {s['dead']} · {llm_calls} · "
              f"{digests}")
        print(f"{'':11s} (bare: {fetched} messages, {size / 1e6:.1f} MB)")
        met = rate >= TARGET_RATE and ratio <= TARGET_RATIO and processed == count
        ok = ok and met
        print(f"{'':11s} target ≥ {TARGET_RATE:.0f} msg/s: {'MET' if rate >= TARGET_RATE else 'MISSED'}; "
              f"≤ {TARGET_RATIO:.0f}× bare fetch: {'MET' if ratio <= TARGET_RATIO else 'MISSED'}"
              + ("" if processed == count else f"; only {processed} of {count} processed"))
    return ok


if __name__ == "__main__":
    sys.exit(main())
