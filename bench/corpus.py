"""A realistic, generated mix of mail for the benchmarks: recruiter outreach, newsletters, notifications
and personal mail, in plain text and HTML, with quoted history, signatures and (optionally) large
attachments. Deterministic for a seed, but every run gets fresh Message-IDs.
"""

from __future__ import annotations

import random
import secrets
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime

COMPANIES = ("Acme", "Globex", "Initech", "Hooli", "Umbrella", "Stark Industries", "Wayne Tech", "Tyrell",
             "Cyberdyne", "Soylent", "Wonka Labs", "Vandelay Industries", "Massive Dynamic", "Aperture")
ROLES = ("Staff SRE", "Principal Engineer", "Platform Engineer", "Senior Backend Engineer", "Engineering Manager",
         "Site Reliability Lead", "DevOps Architect", "Senior Go Developer", "Head of Infrastructure")
FIRST = ("Jane", "Petra", "Tom", "Aisha", "Carlos", "Mei", "Olga", "Ravi", "Sofia", "Lukas", "Nora", "Idris")
LAST = ("Smith", "Weber", "Okafor", "Tanaka", "Novak", "Garcia", "Jensen", "Rossi", "Haddad", "Moreau")
FRIENDS = ("Sam", "Alex", "Robin", "Kim", "Chris", "Dana", "Jo", "Lee")
NEWSLETTERS = (("Weekly Digest", "digest@news.example"), ("Cloud Native Weekly", "hello@cnw.example"),
               ("Rust Times", "editor@rusttimes.example"), ("Deals of the day", "offers@shop.example"))
NOTIFIERS = (("GitHub", "notifications@github.example"), ("Jira", "jira@corp.example"),
             ("Bank", "no-reply@bank.example"), ("Calendar", "calendar-notification@cal.example"),
             ("Shipping", "noreply@parcel.example"))
# Personal mail avoids the words that make a keyword triager say "recruiter".
PERSONAL_LINES = ("Are we still on for dinner on Friday?", "Here are the photos from the weekend.",
                  "Can you send me the address of the cabin?", "Happy birthday! Hope you have a great day.",
                  "The plumber comes on Tuesday at nine, can you be home?", "Did you see the match yesterday?")
LOREM = ("We build systems that keep running when the network does not. Our teams own their services end to "
         "end, from design documents to on-call. ")


def _msgid(kind: str, index: int, nonce: str) -> str:
    return f"<{kind}-{index}-{nonce}-{secrets.token_hex(3)}@bench.example>"


def _base(sender: str, subject: str, msgid: str, when: datetime, to: str = "me@example.org") -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject
    msg["Date"] = format_datetime(when)
    msg["Message-ID"] = msgid
    return msg


def recruiter(index: int, rng: random.Random, nonce: str, *, tag: str = "") -> bytes:
    """Outreach from a recruiter: sometimes HTML, sometimes with meetings, quoted history, a signature."""
    company, role = rng.choice(COMPANIES), rng.choice(ROLES)
    name = f"{rng.choice(FIRST)} {rng.choice(LAST)}"
    subject = rng.choice((f"{role} role at {company}", f"Opportunity: {role} ({company})",
                          f"Quick chat about a {role} position?", f"{company} is hiring a {role}"))
    if tag:
        subject = f"{subject} [{tag}]"
    when = datetime.now(UTC) - timedelta(minutes=rng.randint(0, 60 * 24 * 90))
    msg = _base(f"{name} <{name.split()[0].lower()}@{company.split()[0].lower()}-talent.example>", subject,
                _msgid("rec", index, nonce), when)
    meeting = ""
    if rng.random() < 0.3:
        start = (datetime.now(UTC) + timedelta(days=rng.randint(2, 20))).replace(minute=0, second=0, microsecond=0)
        meeting = f"MEETING: {start.isoformat()} 30\n"
    body = (f"Hi Alex,\n\nI'm {name}, a recruiter at {company}. We're hiring a {role} and your profile "
            f"looks like a strong match.\nCompany: {company}\nRole: {role}\n\n{LOREM * rng.randint(2, 6)}\n"
            f"Would you be open to a 30 minute intro call next week?\n{meeting}\n"
            f"Best,\n{name}\n\n-- \n{name}\nSenior Talent Partner, {company}\n+1 555 0100\n")
    if rng.random() < 0.3:
        body += "\n" + "\n".join(f"> {line}" for line in (LOREM * 8).split(". "))
    if rng.random() < 0.25:
        html = "".join(f"<p>{line}</p>" for line in body.split("\n") if line)
        msg.set_content(body)
        msg.add_alternative(f"<html><body>{html}<img src='https://t.example/p.gif'></body></html>",
                            subtype="html")
    else:
        msg.set_content(body)
    return bytes(msg)


def newsletter(index: int, rng: random.Random, nonce: str) -> bytes:
    """A bulk HTML newsletter with List-Id / List-Unsubscribe (and job-alert words, on purpose)."""
    title, sender = rng.choice(NEWSLETTERS)
    msg = _base(f"{title} <{sender}>", f"{title} #{rng.randint(1, 400)}: roles, talks and releases",
                _msgid("news", index, nonce), datetime.now(UTC) - timedelta(hours=rng.randint(1, 2000)))
    msg["List-Id"] = f"<{sender.replace('@', '.')}>"
    msg["List-Unsubscribe"] = f"<mailto:unsubscribe@{sender.split('@')[1]}>"
    msg["Precedence"] = "bulk"
    items = "".join(f"<tr><td><h2>Story {i}</h2><p>{LOREM * 3}</p><a href='https://x.example/{i}'>Read</a></td></tr>"
                    for i in range(rng.randint(8, 30)))
    msg.set_content("View this newsletter in your browser.")
    msg.add_alternative(f"<html><body><table>{items}</table></body></html>", subtype="html")
    return bytes(msg)


def notification(index: int, rng: random.Random, nonce: str) -> bytes:
    """An automatic notification (CI, tickets, bank, parcels)."""
    title, sender = rng.choice(NOTIFIERS)
    msg = _base(f"{title} <{sender}>", f"[{title}] Update #{rng.randint(1000, 99999)}",
                _msgid("note", index, nonce), datetime.now(UTC) - timedelta(hours=rng.randint(1, 2000)))
    if rng.random() < 0.6:
        msg["Auto-Submitted"] = "auto-generated"
    msg.set_content(f"Something changed.\n\n{LOREM}\n\nYou receive this because you are watching it.\n")
    return bytes(msg)


def personal(index: int, rng: random.Random, nonce: str, *, attachment_bytes: int = 0) -> bytes:
    """Mail from a friend; optionally with a large (binary) attachment."""
    friend = rng.choice(FRIENDS)
    msg = _base(f"{friend} Friend <{friend.lower()}@friends.example>", rng.choice(("Hey", "Friday", "Photos", "Hi!")),
                _msgid("pers", index, nonce), datetime.now(UTC) - timedelta(hours=rng.randint(1, 2000)))
    msg.set_content(f"Hi Alex,\n\n{rng.choice(PERSONAL_LINES)}\n\nCheers,\n{friend}\n")
    if attachment_bytes:
        msg.add_attachment(rng.randbytes(attachment_bytes), maintype="application", subtype="octet-stream",
                           filename=f"photos-{index}.zip")
    return bytes(msg)


def mixed(count: int, *, seed: int = 5, recruiter_share: float = 0.2, big_attachment_every: int = 0,
          attachment_bytes: int = 2 * 1024 * 1024) -> Iterator[tuple[str, bytes]]:
    """``count`` mails, about ``recruiter_share`` of them recruiter mail, the rest split between
    newsletters, notifications and personal mail; every ``big_attachment_every``-th personal mail carries
    an attachment of ``attachment_bytes``. Yields (kind, raw)."""
    rng = random.Random(seed)
    nonce = secrets.token_hex(4)
    personal_seen = 0
    for index in range(count):
        roll = rng.random()
        if roll < recruiter_share:
            yield "recruiter", recruiter(index, rng, nonce)
        elif roll < recruiter_share + 0.35:
            yield "newsletter", newsletter(index, rng, nonce)
        elif roll < recruiter_share + 0.6:
            yield "notification", notification(index, rng, nonce)
        else:
            personal_seen += 1
            big = bool(big_attachment_every) and personal_seen % big_attachment_every == 0
            yield "personal", personal(index, rng, nonce, attachment_bytes=attachment_bytes if big else 0)
