"""``GET /cb/send|decline|ignore?m=&exp=&sig=`` — the card's buttons, answered with a small HTML page.

The order of the checks is the order of what may be known: an over-long query (414) and malformed
parameters (400) before the signature; a bad or expired signature (403) before the store is asked
anything; then :class:`recruiter.actions.Actions` decides (404 unknown mail, 409 not a processed
recruiter mail or in progress, 503 SMTP not configured or a dependency down, 200 done or already done).
The action runs shielded from the request: a phone that closes the page does not cut a send in half.
"""

from __future__ import annotations

import asyncio
import html
import re
import time
from collections.abc import Awaitable, Callable

import structlog
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from recruiter.actions import Actions, Identity, Outcome
from recruiter.errors import RecruiterError, TransientError
from recruiter.links import ACTIONS, verify_link
from recruiter.llm.draft import load_profile, profile_name
from recruiter.mail.mailops import ImapMailbox
from recruiter.mail.smtp import SmtpSender, SmtpSettings
from recruiter.notify.telegram import Notifier
from recruiter.pipeline.budget import Budget
from recruiter.settings import Settings
from recruiter.store.repo import Store

log = structlog.get_logger()
MAX_QUERY_BYTES = 2048
_NUMBER = re.compile(r"[0-9]{1,15}")
_SIG = re.compile(r"[0-9a-fA-F]{1,128}")
_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",  # the page's URL carries a signature
    "X-Robots-Tag": "noindex",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
}
_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>body{{font-family:system-ui,-apple-system,sans-serif;margin:2rem auto;max-width:34rem;padding:0 1rem;
line-height:1.5;font-size:1.1rem}}h1{{font-size:1.5rem}}</style></head>
<body><h1>{title}</h1><p>{detail}</p>{sent}</body></html>
"""


def page(outcome: Outcome) -> HTMLResponse:
    """The outcome as a phone-sized HTML page, every text escaped."""
    sent = ("" if outcome.sent_text is None else
            f'<pre style="white-space:pre-wrap;font-size:1rem">{html.escape(outcome.sent_text)}</pre>')
    body = _PAGE.format(title=html.escape(outcome.title), detail=html.escape(outcome.detail), sent=sent)
    return HTMLResponse(body, status_code=outcome.status, headers=_HEADERS)


def callback_router(actions: Actions, secret: str, *, clock: Callable[[], float] = time.time) -> APIRouter:
    """The three ``/cb`` routes, checking links signed with ``secret`` (``WEBHOOK_BEARER_TOKEN``)."""
    router = APIRouter()

    async def handle(request: Request, action: str) -> HTMLResponse:
        if len(request.url.query.encode()) > MAX_QUERY_BYTES:
            return page(Outcome(414, "Link too long", "This is not a link from a card."))
        params = request.query_params
        values = {name: params.getlist(name) for name in ("m", "exp", "sig")}
        if set(params.keys()) - set(values) or any(len(v) != 1 for v in values.values()):
            return page(Outcome(400, "Broken link", "The link is incomplete or malformed."))
        m, exp, sig = (values[name][0] for name in ("m", "exp", "sig"))
        if not (_NUMBER.fullmatch(m) and _NUMBER.fullmatch(exp) and _SIG.fullmatch(sig)):
            return page(Outcome(400, "Broken link", "The link is incomplete or malformed."))
        if not verify_link(secret, action, int(m), int(exp), sig.lower(), now=clock()):
            log.warning("callback.refused", action=action, message_id=int(m))
            return page(Outcome(403, "Link not valid", "This link is not valid or has expired. Nothing was done."))
        task = asyncio.create_task(actions.run(action, int(m)), name=f"cb:{action}:{m}")
        try:
            outcome = await asyncio.shield(task)
        except TransientError as exc:
            log.warning("callback.failed", action=action, message_id=int(m), error=str(exc))
            outcome = Outcome(503, "Try again", f"A service this needs is unavailable ({exc}). Open the link "
                                                "again later.")
        except RecruiterError as exc:
            log.error("callback.failed", action=action, message_id=int(m), error=str(exc))
            outcome = Outcome(500, "Failed", f"This could not be done: {exc}")
        log.info("callback.answered", action=action, message_id=int(m), status=outcome.status)
        return page(outcome)

    def endpoint_for(action: str) -> Callable[[Request], Awaitable[HTMLResponse]]:
        async def endpoint(request: Request) -> HTMLResponse:
            return await handle(request, action)
        return endpoint

    for action in ACTIONS:
        router.add_api_route(f"/cb/{action}", endpoint_for(action), methods=["GET"], response_class=HTMLResponse,
                             name=f"cb_{action}", include_in_schema=False)
    return router


def build_actions(settings: Settings, store: Store, notifier: Notifier | None, budget: Budget | None = None) -> Actions:
    """The actions wired from Settings: SMTP when ``SMTP_HOST`` is set, one IMAP mailbox per watched one."""
    smtp = None
    if settings.smtp_host:
        smtp = SmtpSender(SmtpSettings(
            host=settings.smtp_host, port=settings.smtp_port, tls=settings.smtp_tls, user=settings.smtp_user,
            password=settings.smtp_password.get_secret_value(), from_addr=settings.smtp_from_addr,
            from_name=settings.smtp_from_name, ca_file=settings.smtp_ca_file, timeout=settings.smtp_timeout,
        ))
    profile = load_profile(settings.owner_profile)
    return Actions(
        store,
        mailboxes={mb.name: ImapMailbox(mb, timeout=settings.imap_timeout) for mb in settings.mailboxes},
        smtp=smtp,
        notifier=notifier,
        profile=profile,
        identity=Identity(name=settings.owner_name or settings.smtp_from_name or profile_name(profile, ""),
                          address=settings.smtp_from_addr),
        lease_seconds=settings.lease_seconds,
        budget=budget,
    )
