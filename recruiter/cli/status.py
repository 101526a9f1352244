"""`recruiter status`: ask the running service, or say what the store alone knows."""

from __future__ import annotations

from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

from recruiter.errors import RecruiterError
from recruiter.settings import Settings
from recruiter.store.migrate import prepare_database
from recruiter.store.repo import Store


async def fetch_status(settings: Settings, url: str, *, timeout: float = 10.0) -> dict[str, Any]:
    """The service's `/api/status` report, with ``service`` saying how it was obtained.

    When the service does not answer, the report holds the store's view and ``ready`` is False.
    """
    endpoint = f"{url.rstrip('/')}/api/status"
    token = settings.webhook_token.get_secret_value()
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    problem: str
    try:
        async with httpx.AsyncClient(timeout=timeout) as client:
            response = await client.get(endpoint, headers=headers)
        if response.status_code in (200, 503) and response.headers.get("content-type", "").startswith(
                "application/json") and "ready" in (body := response.json()):
            return {"service": {"url": url, "reachable": True}, **body}
        problem = f"HTTP {response.status_code}: {_error_of(response)}"
    except httpx.HTTPError as exc:
        problem = f"not reachable ({type(exc).__name__})"
    report: dict[str, Any] = {"service": {"url": url, "reachable": False, "error": problem}, "ready": False}
    try:
        from recruiter.http.api import store_status  # only here: the API module pulls in the web stack

        await prepare_database(settings.db_url.get_secret_value())
        store = Store.from_url(settings.db_url.get_secret_value())
        try:
            report.update(await store_status(store))
        finally:
            await store.aclose()
    except RecruiterError as exc:
        report["store_error"] = str(exc)
    return report


def _error_of(response: httpx.Response) -> str:
    try:
        return str(response.json().get("error") or response.reason_phrase)
    except ValueError:
        return response.reason_phrase


def _yes(value: Any) -> str:
    return "[green]yes[/]" if value else "[red]no[/]"


def render_status(report: dict[str, Any], console: Console) -> None:
    """Tables for a person."""
    service = report.get("service", {})
    verdict = "[green]ready[/]" if report.get("ready") else "[red]NOT READY[/]"
    where = service.get("url", "")
    if service.get("reachable"):
        console.print(f"service at {where}: {verdict}")
    else:
        console.print(f"service at {where}: [red]{service.get('error', 'not reachable')}[/] — the store's view:")
    if report.get("store_error"):
        console.print(f"store: [red]{report['store_error']}[/]")
    mailboxes = report.get("mailboxes")
    if mailboxes:
        table = Table("mailbox", "connected", "ready", "last server line (s ago)", "last mail", "error",
                      title="Mailboxes")
        for box in mailboxes:
            connected = "standby" if box.get("standby") else _yes(box.get("connected"))
            table.add_row(box["name"], connected, _yes(box.get("ready")),
                          str(box.get("seconds_since_last_line") or "—"), box.get("last_mail_at") or "—",
                          (box.get("last_error") or "")[:60])
        console.print(table)
    elif report.get("last_mail"):
        table = Table("mailbox", "last mail", title="Mailboxes (from the store)")
        for name, at in sorted(report["last_mail"].items()):
            table.add_row(name, at)
        console.print(table)
    queue = report.get("queue")
    if queue is not None:
        table = Table("state", "messages", title="Queue")
        for state in ("pending", "retry_wait", "done", "skipped", "dead"):
            table.add_row(state, str(queue.get(state, 0)))
        console.print(table)
    dlq = report.get("dlq")
    if dlq is not None:
        reasons = ", ".join(f"{reason} {count}" for reason, count in sorted((dlq.get("by_reason") or {}).items()))
        console.print(f"dead-letter queue: {dlq['size']} message(s), oldest {dlq['oldest_age_seconds']:.0f} s"
                      + (f" ({reasons}; quarantined at ingest: {dlq.get('quarantined', 0)})" if reasons else ""))
    incidents = report.get("incidents")
    if incidents:
        table = Table("incident", "since", "state", "last error", title="Open incidents")
        for incident in incidents:
            state = "recovering" if incident.get("recovering") else ("open (cause told elsewhere)"
                                                                    if incident.get("silent") else "open")
            table.add_row(incident.get("title") or incident.get("key", ""), incident.get("since") or "?",
                          f"[red]{state}[/]", (incident.get("last_error") or "")[:60])
        console.print(table)
    maybe = report.get("maybe_delivered") or {}
    if maybe.get("cards") or maybe.get("messages"):
        table = Table("what", "subject / text", "from", "at", title="May not have arrived (never sent again)")
        for card in maybe.get("cards", []):
            table.add_row(f"card #{card['id']}", (card.get("subject") or "")[:50], (card.get("from") or "")[:40],
                          card.get("at") or "")
        for message in maybe.get("messages", []):
            table.add_row(message.get("kind", ""), (message.get("text") or "")[:50], "", message.get("at") or "")
        console.print(table)
    breakers = report.get("breakers")
    if breakers:
        table = Table("tier", "model", "breaker", "failures", "last error", title="LLM tiers")
        for tier in breakers:
            state = tier.get("state", "?")
            colour = {"closed": "green", "half_open": "yellow"}.get(state, "red")
            table.add_row(tier.get("tier", ""), tier.get("model", ""), f"[{colour}]{state}[/]",
                          str(tier.get("consecutive_failures", "")), (tier.get("last_error") or "")[:60])
        console.print(table)
    triage = report.get("triage")
    if triage and triage.get("consecutive_failures"):
        console.print(f"[red]triage failing[/]: {triage['consecutive_failures']} in a row since "
                      f"{triage.get('incident_since') or '?'}; last error: {triage.get('last_error')}")
    console.print(f"last triage: {report.get('last_triage_at') or 'never'}")
