"""bench/economy: what 100 mixed mails cost the shared GPU. Run: ``python bench/economy.py [--json]``.

The mix (fixed, deterministic): 20 recruiter mails drawn from the labelled set (bench/labelled), all 34
of its non-recruiter mails (personal, work, newsletters, notifications and the hard cases: job alerts
and marketing written like outreach without list headers, a sales pitch, a user-research invitation),
and 46 generated bulk and automatic mails carrying the headers real senders of such mail set.

They go through the real pipeline (``recruiter process``'s code path: SQLite store, prefilter, triage,
draft, calendar to .ics, cards to a buffer) against a loopback OpenAI-compatible server that records
every request and answers triage with the mix's ground truth, so the happy path is measured, not the
fake's judgement. Requests are attributed to mails by the Subject line inside the prompt.

Prompt tokens are estimated without a tokenizer: characters / 4 per message plus 4 per message for
the chat template (``recruiter.llm.client.estimate_prompt_tokens``).
"""

from __future__ import annotations

import asyncio
import io
import json
import random
import re
import statistics
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.labelled.corpus import OTHER, RECRUITER, Sample  # noqa: E402
from bench.labelled.render import render  # noqa: E402
from recruiter.app import process_paths  # noqa: E402
from recruiter.llm.client import estimate_prompt_tokens  # noqa: E402
from recruiter.log import configure_logging  # noqa: E402
from recruiter.mail.parse import parse_message  # noqa: E402
from recruiter.settings import LLMEndpoint, Settings  # noqa: E402
from recruiter.triage.llm import SYSTEM_PROMPT, user_message  # noqa: E402
from recruiter.triage.prefilter import skip_reason  # noqa: E402
from tests.servers.fake_llm import FakeLLM, default_triage_answer  # noqa: E402

TOKEN_TARGET = 1500
_SUBJECT = re.compile(r"^Subject: (.*)$", re.MULTILINE)
_MARKERS = ("list-id", "list-unsubscribe", "precedence", "auto-submitted", "x-autoreply", "x-auto-response-suppress")
_UNATTENDED = re.compile(r"^(?:no-?reply|noreply|notifications?|mailer-daemon|invitations|feedback|"
                         r"calendar-notification|jobs-listings)@", re.IGNORECASE)


@dataclass(frozen=True)
class Mail:
    """One mail of the mix, with what it really is."""

    raw: bytes
    subject: str
    category: str  # recruiter, personal, bulk, automatic, unmarked
    is_recruiter: bool


# --- the mix ----------------------------------------------------------------------------------------

def _group(sample: Sample) -> str:
    """recruiter; bulk/automatic when the mail carries a marker a mail program sets (list, precedence or
    auto-submitted headers, or an unattended sender address); personal for people; unmarked otherwise."""
    if sample.is_recruiter:
        return "recruiter"
    names = {name.lower() for name, _ in sample.headers}
    address = sample.sender.rpartition("<")[2].rstrip(">")
    if names & set(_MARKERS) or _UNATTENDED.match(address):
        return "automatic" if sample.category in ("notification",) else "bulk"
    return "personal" if sample.category in ("personal", "work") else "unmarked"


_BULK = (
    ("Cloud Native Weekly <hello@cnw-news.example>", "Cloud Native Weekly #{n}: operators, eBPF and cost",
     "This week in cloud native: operators that don't page you, eBPF tracing in production, and FinOps."),
    ("Shop Outdoor <deals@shop-outdoor.example>", "Winter sale: {n}% off jackets this weekend",
     "Our winter sale starts now: jackets, boots and tents at reduced prices. Free shipping over EUR 50."),
    ("The Rust Times <editor@rusttimes.example>", "Issue {n}: async closures are stable",
     "Highlights: async closures, a faster borrow checker and three talks worth watching."),
    ("Streaming+ <news@streamingplus.example>", "New this week on Streaming+ ({n} titles)",
     "New series and films this week, picked for you. Continue watching where you left off."),
    ("Berliner Kulturkalender <newsletter@kulturkalender.example>", "Wochenende in Berlin: {n} Tipps",
     "Konzerte, Ausstellungen und Flohmärkte am Wochenende. Viel Spaß beim Entdecken!"),
    ("Job Digest <digest@careerweekly.example>", "{n} new Staff Engineer jobs this week",
     "New jobs this week: Staff Engineer at Tidewater, Platform Lead at Larkspur, SRE at Quarry Labs. Apply now."),
)
_AUTOMATIC = (
    ("GitLab <gitlab@gitlab.bigcorp.example>", "Pipeline #{n} has failed for main",
     (("Auto-Submitted", "auto-generated"), ("X-GitLab-Pipeline-Id", "{n}")),
     "Pipeline #{n} triggered by Lena Fischer has failed. Job: integration-tests."),
    ("Sentry <noreply@sentry.example>", "[platform] TimeoutError: lease renewal took {n} ms",
     (), "A new issue was detected in platform-api: TimeoutError in lease renewal."),
    ("PagerDuty <no-reply@pagerduty.example>", "[Resolved] Incident #{n}: API latency above SLO",
     (("Auto-Submitted", "auto-generated"),), "Incident #{n} has been resolved by the on-call engineer."),
    ("Online Shop <noreply@online-shop.example>", "Your order #{n} has shipped",
     (), "Your order #{n} is on its way. Track your parcel in your account."),
    ("Cloud Billing <billing-noreply@cloudhost.example>", "Your invoice for November (#{n})",
     (), "Your invoice #{n} is available in the console. Amount due: EUR 41.20."),
    ("Lena Fischer <lena.fischer@bigcorp.example>", "Automatic reply: sprint review {n}",
     (("Auto-Submitted", "auto-replied"),), "I'm out of the office until Monday with limited access to email."),
)


def _generated(index: int, rng: random.Random) -> Mail:
    """One bulk (list headers, as bulk senders must send them) or automatic mail."""
    msg = EmailMessage()
    n = rng.randint(10, 999)
    if index % 2 == 0:
        sender, subject, body = _BULK[index // 2 % len(_BULK)]
        domain = sender.rpartition("@")[2].rstrip(">")
        headers: tuple[tuple[str, str], ...] = (
            ("List-Unsubscribe", f"<https://{domain}/u/{n}>, <mailto:unsubscribe@{domain}>"),
            ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"), ("Precedence", "bulk"))
        category = "bulk"
    else:
        sender, subject, raw_headers, body = _AUTOMATIC[index // 2 % len(_AUTOMATIC)]
        headers = tuple((name, value.format(n=n)) for name, value in raw_headers)
        category = "automatic"
    msg["From"] = sender
    msg["To"] = "Alex Example <alex@example.net>"
    msg["Subject"] = subject.format(n=f"{n}.{index}")
    msg["Date"] = f"Tue, 24 Nov 2026 {index % 24:02d}:{n % 60:02d}:00 +0000"
    msg["Message-ID"] = f"<economy-{index}@bench.example>"
    for name, value in headers:
        msg[name] = value
    msg.set_content(f"Hi Alex,\n\n{body.format(n=n)}\n\nManage your preferences in your account.\n")
    return Mail(bytes(msg), str(msg["Subject"]), category, False)


def mix() -> list[Mail]:
    """The 100 mails: 20 labelled recruiter mails, the 34 labelled others, 46 generated bulk/automatic."""
    rng = random.Random(5)
    chosen = sorted(rng.sample(range(len(RECRUITER)), 20))
    labelled = [RECRUITER[i] for i in chosen] + list(OTHER)
    mails = [Mail(render(s), s.subject, _group(s), s.is_recruiter) for s in labelled]
    mails += [_generated(index, rng) for index in range(100 - len(mails))]
    return mails


# --- the run ----------------------------------------------------------------------------------------

def _subject_key(subject: str) -> str:
    return re.sub(r"\s+", " ", subject).strip()[:300]


async def run_pipeline(mails: list[Mail]) -> tuple[FakeLLM, dict[str, int]]:
    """Every mail through the real pipeline against the loopback LLM; returns it with its requests."""
    truth = {_subject_key(parse_message(m.raw).subject): m.is_recruiter for m in mails}
    if len(truth) != len(mails):
        raise SystemExit("the mix needs unique subjects to attribute requests")

    def triage_answer(text: str) -> dict[str, Any]:
        answer = default_triage_answer(text)
        found = _SUBJECT.search(text)
        recruiter = truth.get(found.group(1).strip(), False) if found else False
        return {**answer, "is_recruiter": recruiter, "kind": "outreach" if recruiter else "other"}

    fake = FakeLLM(model="bench-model").start()
    fake.triage_answer = triage_answer
    with tempfile.TemporaryDirectory(prefix="economy-") as tmp:
        folder = Path(tmp) / "mail"
        folder.mkdir()
        for index, mail in enumerate(mails):
            (folder / f"{index:03d}.eml").write_bytes(mail.raw)
        settings = Settings(db_url=f"sqlite+aiosqlite:///{tmp}/economy.db",
                            llm_tiers=(LLMEndpoint("llama-swap", fake.url, "bench-model"),), llm_timeout=10,
                            ics_dir=Path(tmp) / "events", drafts_dir=Path(tmp) / "drafts",
                            webhook_token="economy-bench-" + "x" * 32, log_level="WARNING")
        try:
            summary = await process_paths(settings, [folder], stdout=io.StringIO())
        finally:
            fake.stop()
    return fake, summary


def figures(mails: list[Mail], fake: FakeLLM, summary: dict[str, int]) -> dict[str, Any]:
    """The economy figures and whether each meets its target."""
    triage: Counter[str] = Counter()
    drafts: Counter[str] = Counter()
    tokens: dict[str, int] = {}
    for request in fake.requests:
        user = "\n".join(m.get("content", "") for m in request["messages"] if m.get("role") == "user")
        found = _SUBJECT.search(user)
        key = found.group(1).strip() if found else "?"
        if "response_format" in request:
            triage[key] += 1
            tokens.setdefault(key, estimate_prompt_tokens(request["messages"]))
        else:
            drafts[key] += 1
    keyed = [(_subject_key(parse_message(m.raw).subject), m) for m in mails]
    groups = Counter(m.category for m in mails)
    others = [(k, m) for k, m in keyed if not m.is_recruiter]
    reached = [k for k, _ in others if triage[k]]
    marked = [(k, m) for k, m in keyed if m.category in ("bulk", "automatic")]
    recruiters = [(k, m) for k, m in keyed if m.is_recruiter]
    typical = statistics.median(tokens.values()) if tokens else 0
    happy = [(triage[k], drafts[k]) for k, _ in recruiters]
    result = {
        "mails": len(mails), "groups": dict(groups), "pipeline": summary,
        "llm_requests": len(fake.requests), "triage_requests": sum(triage.values()),
        "draft_requests": sum(drafts.values()),
        "bulk_automatic_llm_requests": sum(triage[k] + drafts[k] for k, _ in marked),
        "non_recruiter_never_llm_share": round(1 - len(reached) / len(others), 4),
        "non_recruiter_reaching_llm": sorted(reached),
        "prefilter_recruiter_recall": round(sum(1 for k, _ in recruiters if triage[k]) / len(recruiters), 4),
        "labelled_recruiter_prefilter_recall": _labelled_recall(),
        "labelled_triage_prompt_tokens": _labelled_tokens(),
        "triage_prompt_tokens": {"median": typical, "max": max(tokens.values(), default=0),
                                 "p90": _p90(list(tokens.values())), "estimate": "chars/4 + 4 per message"},
        "recruiter_calls": {"exactly_one_triage_one_draft": sum(1 for h in happy if h == (1, 1)),
                            "of": len(happy), "shapes": dict(Counter(f"{t}+{d}" for t, d in happy))},
    }
    result["targets"] = {
        "bulk/automatic LLM requests = 0": result["bulk_automatic_llm_requests"] == 0,
        "non-recruiter never reaching the LLM >= 80%": result["non_recruiter_never_llm_share"] >= 0.8,
        "prefilter recruiter recall = 100%": result["prefilter_recruiter_recall"] == 1.0
                                             and result["labelled_recruiter_prefilter_recall"] == 1.0,
        f"typical triage prompt <= {TOKEN_TARGET} tokens": typical <= TOKEN_TARGET,
        "1 triage + 1 draft per recruiter mail": all(h == (1, 1) for h in happy),
    }
    return result


def _labelled_recall() -> float:
    """Prefilter recall over every recruiter mail of the labelled set, not only the 20 in the mix."""
    passed = sum(1 for s in RECRUITER if skip_reason(parse_message(render(s))) is None)
    return round(passed / len(RECRUITER), 4)


def _labelled_tokens() -> dict[str, float]:
    """Triage prompt tokens of every labelled mail that passes the prefilter, built as triage builds them."""
    sizes = []
    for sample in [*RECRUITER, *OTHER]:
        mail = parse_message(render(sample))
        if skip_reason(mail) is None:
            messages = [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": user_message(mail)}]
            sizes.append(estimate_prompt_tokens(messages))
    return {"mails": len(sizes), "median": statistics.median(sizes), "p90": _p90(sizes), "max": max(sizes)}


def _p90(values: list[int]) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return float(ordered[min(len(ordered) - 1, round(0.9 * (len(ordered) - 1)))])


def show(result: dict[str, Any]) -> None:
    """The figures as lines of text."""
    tokens = result["triage_prompt_tokens"]
    calls = result["recruiter_calls"]
    groups = ", ".join(f"{v} {k}" for k, v in sorted(result["groups"].items()))
    print(f"bench/economy: {result['mails']} mails ({groups})")
    print(f"  pipeline outcome:                      {result['pipeline']}")
    print(f"  LLM requests:                          {result['llm_requests']} "
          f"({result['triage_requests']} triage, {result['draft_requests']} draft)")
    print(f"  LLM requests for bulk/automatic mail:  {result['bulk_automatic_llm_requests']}  (target 0)")
    print(f"  non-recruiter mail never at the LLM:   {result['non_recruiter_never_llm_share']:.1%}  (target >= 80%)")
    for subject in result["non_recruiter_reaching_llm"]:
        print(f"      reached the LLM: {subject}")
    print(f"  prefilter recruiter recall (mix):      {result['prefilter_recruiter_recall']:.0%}  (target 100%)")
    print(f"  prefilter recall (all labelled):       {result['labelled_recruiter_prefilter_recall']:.0%}")
    print(f"  triage prompt tokens ({tokens['estimate']}): median {tokens['median']:.0f}, "
          f"p90 {tokens['p90']:.0f}, max {tokens['max']}  (target typical <= {TOKEN_TARGET})")
    labelled = result["labelled_triage_prompt_tokens"]
    print(f"  the same over the {labelled['mails']} labelled mails the prefilter lets through: median "
          f"{labelled['median']:.0f}, p90 {labelled['p90']:.0f}, max {labelled['max']}")
    print(f"  recruiter mails with 1 triage + 1 draft: {calls['exactly_one_triage_one_draft']} of {calls['of']} "
          f"{calls['shapes']}")
    for name, ok in result["targets"].items():
        print(f"  [{'ok' if ok else 'MISSED'}] {name}")


def main() -> int:
    configure_logging(level="WARNING", fmt="console", stream=sys.stderr)
    mails = mix()
    fake, summary = asyncio.run(run_pipeline(mails))
    result = figures(mails, fake, summary)
    if "--json" in sys.argv[1:]:
        print(json.dumps(result, ensure_ascii=False, indent=2))
    else:
        show(result)
    return 0 if all(result["targets"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
