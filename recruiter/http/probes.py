"""The probes' answers: is each dependency fine (readiness), and is each IMAP watcher fresh.

`/healthz` says only that the process answers; `/readyz` and `/api/status` use :func:`readiness`.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from recruiter.alerts.incidents import Incidents
from recruiter.errors import RecruiterError
from recruiter.ingest.watcher import Watcher
from recruiter.store.repo import Store


def watcher_state(watcher: Watcher, stale_seconds: float, now: float) -> dict[str, Any]:
    """One watcher's readiness: fresh when it heard from its server recently, or stands by."""
    age = None if watcher.last_heard is None else now - watcher.last_heard
    fresh = watcher.standby or (watcher.connected and age is not None and age <= stale_seconds)
    missing = watcher.folders_missing or []
    return {
        "ok": fresh and not missing, "connected": watcher.connected, "standby": watcher.standby,
        "seconds_since_last_line": None if age is None else round(age, 1),
        "last_error": "; ".join(missing) or watcher.last_error, "folders_missing": missing,
    }


async def readiness(store: Store, watchers: Sequence[Watcher], stale_seconds: float,
                    incidents: Incidents | None = None) -> dict[str, Any]:
    """Each dependency and its state; ``ready`` only when all are fine. The store is not ready while its
    writes fail (a lock held past the busy timeout, a read-only fail-over), even if it answers reads."""
    checks: dict[str, Any] = {}
    try:
        await store.ping()
        if incidents is not None and incidents.store_failing:
            snap: dict[str, Any] = next((i for i in incidents.snapshot()["incidents"] if i["key"] == "store"), {})
            checks["store"] = {"ok": False, "error": f"writes fail: {snap.get('last_error')}"}
        else:
            checks["store"] = {"ok": True}
    except RecruiterError as exc:
        checks["store"] = {"ok": False, "error": str(exc)}
    now = time.monotonic()
    for watcher in watchers:
        checks[f"imap:{watcher.mb.name}"] = watcher_state(watcher, stale_seconds, now)
    return {"ready": all(c["ok"] for c in checks.values()), "checks": checks}
