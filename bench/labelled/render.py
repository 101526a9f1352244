"""One labelled Sample → deterministic RFC 5322 bytes (fixed boundaries, no generated dates or ids)."""

from __future__ import annotations

from email import policy
from email.message import EmailMessage

from bench.labelled.corpus import Sample


def render(sample: Sample) -> bytes:
    """The raw mail for ``sample``: plain, HTML-only, or plain+HTML, with an optional .ics part."""
    msg = EmailMessage(policy=policy.SMTP)
    msg["From"] = sample.sender
    msg["To"] = sample.to
    msg["Subject"] = sample.subject
    msg["Date"] = sample.date
    msg["Message-ID"] = sample.message_id
    for name, value in sample.headers:
        msg[name] = value
    if sample.text is not None:
        msg.set_content(sample.text)
        if sample.html is not None:
            msg.add_alternative(sample.html, subtype="html")
    else:
        msg.set_content(sample.html or "", subtype="html")
    if sample.ics is not None:
        if not msg.is_multipart():
            msg.make_mixed()
        msg.add_attachment(sample.ics, subtype="calendar", filename="invite.ics")
    for number, part in enumerate(msg.walk()):
        if part.is_multipart():
            part.set_boundary(f"=_{sample.slug}_{number}")
    return msg.as_bytes()
