"""bench/memory — RSS of `recruiter run` while 10,000 messages pass through it.

Real Dovecot, `recruiter run` as a subprocess (shipped defaults), the zero-latency loopback LLM and Bot API.
A generated mix (about 1 in 5 recruiter mail; newsletters, notifications, personal mail; every 25th
personal mail with a 2 MiB attachment) is APPENDed to the INBOX while the service runs; the service's
VmRSS is sampled every 0.2 s from the first APPEND until every message is done or skipped. The run is cut
into four quarters of time; each quarter's peak and median (steady) RSS is printed.

Helper processes count: the service's VmRSS plus its fork server's and CPU-budget helpers' is what is
checked (Pss, which counts shared pages once, is printed too).

Targets: peak ≤ 130 MB with the LLM tier configured (the default here: the openai SDK is loaded), ≤ 120 MB
with ``--rules`` (no LLM tier: the shipped rules-only default); the last quarter no higher than the second.

Run from the repository root:  .venv/bin/python -m bench.memory [--messages 10000] [--db sqlite|postgresql] [--rules]
"""

from __future__ import annotations

import argparse
import asyncio
import imaplib
import statistics
import sys
import threading
import time
from pathlib import Path

if __package__ in (None, ""):  # run as `python bench/memory.py`: the repository root is not on sys.path
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import corpus
from bench.common import (
    add_user,
    cli,
    cpu_seconds,
    database,
    machine,
    resources,
    rss_kb,
    service_env,
    start_dovecot,
    start_llm,
    start_service,
    start_telegram,
    wait_for,
    workdir,
)
from recruiter.budget import descendants
from recruiter.store.models import DEAD, DONE, SKIPPED
from recruiter.store.repo import Store

TARGET_PEAK_MB = 130.0  # an LLM tier configured (the openai SDK loaded)
TARGET_PEAK_RULES_MB = 120.0  # the rules-only default


def pss_kb(pid: int) -> int:
    """Pss of a process in KiB (its private pages plus its share of pages shared with others), 0 when gone."""
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except (OSError, ValueError):
        return 0
    return 0


class Sampler(threading.Thread):
    """Samples every ``every`` seconds until stopped, for the service and its helper processes (the CPU
    budget's fork server and helpers, see recruiter.budget): (time, service VmRSS, the sum of
    VmRSS over the service and its descendants, the sum of their Pss), KiB. The VmRSS sum counts pages
    the fork server shares with the helpers once per process (an upper bound); the Pss sum counts them once."""

    def __init__(self, pid: int, every: float = 0.2) -> None:
        super().__init__(name="rss-sampler", daemon=True)
        self.pid, self.every = pid, every
        self.samples: list[tuple[float, int, int, int]] = []
        self.helpers = 0  # the most descendants seen at once
        self.halt = threading.Event()

    def run(self) -> None:
        while not self.halt.is_set():
            kb = rss_kb(self.pid)
            if kb is not None:
                children = descendants(self.pid)
                self.helpers = max(self.helpers, len(children))
                tree = kb + sum(rss_kb(child) or 0 for child in children)
                pss = sum(pss_kb(p) for p in (self.pid, *children))
                self.samples.append((time.monotonic(), kb, tree, pss))
            self.halt.wait(self.every)


def feed(user_host: str, port: int, user: str, password: str, count: int, fed: list[int]) -> None:
    """APPEND ``count`` generated mails over one connection (stdlib imaplib, as another mail client would)."""
    client = imaplib.IMAP4(user_host, port, timeout=30)
    client.login(user, password)
    try:
        for _kind, raw in corpus.mixed(count, seed=10, big_attachment_every=25):
            status, data = client.append("INBOX", None, None, raw)
            if status != "OK":
                raise RuntimeError(f"APPEND answered {status} {data!r}")
            fed[0] += 1
    finally:
        client.logout()


async def finished(db_url: str) -> tuple[int, dict[str, int]]:
    store = Store.from_url(db_url)
    try:
        counts = await store.counts_by_state()
    finally:
        await store.aclose()
    return sum(counts.get(s, 0) for s in (DONE, SKIPPED, DEAD)), counts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--timeout", type=float, default=1800.0, help="for the whole run, seconds")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument("--rules", action="store_true", help="no LLM tier (the rules-only default)")
    args = parser.parse_args()
    with resources() as stack:
        cwd = workdir(stack)
        dovecot = start_dovecot(stack)
        user = add_user(dovecot)
        llm = start_llm(stack)
        telegram = start_telegram(stack)
        db_url = database(stack, args.db, cwd)
        env = service_env(cwd, db_url, user, llm, telegram, **({"LLAMA_SWAP_URL": ""} if args.rules else {}))
        cli(env, cwd, "migrate")
        service = start_service(stack, env, cwd)
        wait_for(lambda: service.events("imap.first_start"), timeout=60, what="the watcher's first start",
                 service=service)
        idle_kb = rss_kb(service.pid) or 0
        sampler = Sampler(service.pid)
        sampler.start()
        stack.callback(sampler.halt.set)
        fed = [0]
        started = time.monotonic()
        cpu_before = cpu_seconds(service.pid)
        feeder = threading.Thread(target=feed, args=(user.host, user.port, user.user, user.password,
                                                     args.messages, fed), daemon=True)
        feeder.start()
        last_print = 0.0
        while True:
            done, counts = asyncio.run(finished(db_url))
            if time.monotonic() - last_print >= 10:
                print(f"  {time.monotonic() - started:6.0f} s  fed {fed[0]:6d}  finished {done:6d}  "
                      f"rss {(rss_kb(service.pid) or 0) / 1024:6.1f} MB", file=sys.stderr, flush=True)
                last_print = time.monotonic()
            if done >= args.messages:
                break
            if not service.alive():
                raise SystemExit(f"the service died:\n{service.tail()}")
            if time.monotonic() - started > args.timeout:
                raise SystemExit(f"timed out: {done} of {args.messages} finished ({counts})")
            time.sleep(1.0)
        elapsed = time.monotonic() - started
        cpu = cpu_seconds(service.pid) - cpu_before
        sampler.halt.set()
        sampler.join()
        feeder.join(timeout=10)
        ok = report(sampler.samples, started, elapsed, idle_kb, counts, args, cpu, len(telegram.arrivals),
                    sampler.helpers)
    return 1 if args.check and not ok else 0


def report(samples: list[tuple[float, int, int, int]], started: float, elapsed: float, idle_kb: int,
           counts: dict[str, int], args: argparse.Namespace, cpu: float, cards: int, helpers: int) -> bool:
    """The figures; the target is checked against the VmRSS sum over the service and its helpers."""
    mb = [tree / 1024 for _, _, tree, _ in samples]
    target = TARGET_PEAK_RULES_MB if args.rules else TARGET_PEAK_MB
    print(f"\nbench/memory — {args.messages} messages through `recruiter run` in {elapsed:.1f} s "
          f"({args.messages / elapsed:.0f} msg/s), database {args.db}, "
          f"{'rules tier only' if args.rules else 'LLM tier llama-swap (loopback)'}")
    print(f"machine: {machine()}")
    print(f"states: {counts}; cards sent: {cards}; service CPU {cpu:.1f} s")
    print(f"RSS of the service before the first message: {idle_kb / 1024:.1f} MB; {len(samples)} samples every "
          f"0.2 s; up to {helpers} helper processes (fork server and CPU-budget helpers)")
    print(f"service alone: peak VmRSS {max(s[1] for s in samples) / 1024:.1f} MB; service + helpers: peak VmRSS "
          f"sum {max(s[2] for s in samples) / 1024:.1f} MB, peak Pss sum {max(s[3] for s in samples) / 1024:.1f} MB")
    quarters: list[list[float]] = [[], [], [], []]
    for (at, _, tree, _) in samples:
        quarters[min(3, int((at - started) / elapsed * 4))].append(tree / 1024)
    print("service + helpers, VmRSS sum:")
    print(f"{'quarter':10s} {'peak MB':>9s} {'median MB':>10s} {'samples':>8s}")
    for index, values in enumerate(quarters, 1):
        if values:
            print(f"Q{index:<9d} {max(values):9.1f} {statistics.median(values):10.1f} {len(values):8d}")
    peak = max(mb)
    q2, q4 = quarters[1] or [0.0], quarters[3] or [0.0]
    grew = statistics.median(q4) > statistics.median(q2)
    print(f"peak {peak:.1f} MB; steady (median) Q2 {statistics.median(q2):.1f} MB → Q4 {statistics.median(q4):.1f} MB")
    print(f"target peak ≤ {target:.0f} MB: {'MET' if peak <= target else 'MISSED'}; "
          f"last quarter no higher than the second: {'MISSED' if grew else 'MET'}")
    return peak <= target and not grew


if __name__ == "__main__":
    sys.exit(main())
