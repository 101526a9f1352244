"""JSON views of stored messages, shared by the CLI and the HTTP API (kept free of web imports)."""

from __future__ import annotations

from typing import Any

from recruiter.store.models import Message
from recruiter.store.repo import Store


def message_json(message: Message) -> dict[str, Any]:
    """The public JSON view of one stored message (CLI and API)."""
    return {
        "id": message.id,
        "mailbox": message.mailbox,
        "message_id": message.message_id,
        "key": message.key,
        "subject": message.subject,
        "from": message.from_addr,
        "state": message.state,
        "stage": message.stage,
        "is_recruiter": message.is_recruiter,
        "skip_reason": message.skip_reason,
        "triage_tier": message.triage_tier,
        "triage": message.triage,
        "attempts": message.attempts,
        "last_error": message.last_error,
        "dead_reason": message.dead_reason,
        "updated_at": message.updated_at.isoformat() if message.updated_at else None,
        "received_at": message.received_at.isoformat() if message.received_at else None,
        "uid": message.uid,
        "source": message.source,
    }


async def message_detail(store: Store, message: Message) -> dict[str, Any]:
    """One message with its side effects and its failure history."""
    view = message_json(message)
    view["history"] = [
        {"at": a.at.isoformat(), "stage": a.stage, "error_class": a.error_class, "error": a.error,
         "traceback": a.traceback}
        for a in await store.attempts_for(message.id)
    ]
    view["side_effects"] = [{"key": e.key, "kind": e.kind, "ref": e.ref, "at": e.created_at.isoformat()}
                            for e in await store.effects_for(message.id)]
    return view
