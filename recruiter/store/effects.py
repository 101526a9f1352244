"""Side effects: the record that makes each action (a draft, a card, an event, a send) happen once.

Owns the ``side_effects`` rows: looking a key up, recording effects (all or none, or keeping the first
record of a key), forgetting intents known not to have happened, and the one-tap actions' atomic
claim (a unique key: of two concurrent callers exactly one wins) and compare-and-set of a ref. The
effects a stage records together with its progress are written by :mod:`recruiter.store.queue`.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError

from recruiter.store.engine import StoreBase
from recruiter.store.models import SideEffect, utcnow


class EffectsMixin(StoreBase):
    """The Store's part that records side effects, so that each happens once."""

    # ---- records ------------------------------------------------------------------------------

    async def effect(self, key: str) -> str | None:
        """The recorded reference of a side effect, or None if it never happened."""
        async with self._read() as session:
            found = await session.execute(select(SideEffect.ref).where(SideEffect.key == key))
            return found.scalar_one_or_none()

    async def effects_for(self, message_id: int) -> list[SideEffect]:
        """Every recorded side effect of one message."""
        async with self._read() as session:
            rows = await session.execute(
                select(SideEffect).where(SideEffect.message_id == message_id).order_by(SideEffect.id)
            )
            return list(rows.scalars())

    async def effects_of_kind(self, message_ids: Sequence[int], kind: str) -> dict[int, SideEffect]:
        """Each given message's side effect of ``kind`` (its first one), by message id."""
        found: dict[int, SideEffect] = {}
        async with self._read() as session:
            rows = await session.execute(
                select(SideEffect).where(SideEffect.message_id.in_(list(message_ids)), SideEffect.kind == kind)
                .order_by(SideEffect.id)
            )
            for effect in rows.scalars():
                found.setdefault(effect.message_id, effect)
        return found

    async def record_effects(self, effects: Sequence[tuple[int, str, str, str]]) -> None:
        """Record (message id, key, kind, ref) side effects in one transaction; keys already recorded stay."""
        async with self._tx() as session:
            keys = [key for _, key, _, _ in effects]
            held = set((await session.execute(select(SideEffect.key).where(SideEffect.key.in_(keys)))).scalars())
            for message_id, key, kind, ref in effects:
                if key not in held:
                    session.add(SideEffect(key=key, message_id=message_id, kind=kind, ref=ref))

    async def claim_effects(self, effects: Sequence[tuple[int, str, str, str]]) -> bool:
        """Record every (message id, key, kind, ref) or none: False when any key is already recorded
        (another process is doing the same side effect)."""
        try:
            async with self._tx() as session:
                for message_id, key, kind, ref in effects:
                    session.add(SideEffect(key=key, message_id=message_id, kind=kind, ref=ref))
                await session.flush()
        except IntegrityError:
            return False
        return True

    async def forget_effect(self, key: str) -> None:
        """Drop a side-effect record (an intent whose action is known not to have happened)."""
        async with self._tx() as session:
            await session.execute(delete(SideEffect).where(SideEffect.key == key))

    async def forget_effects(self, keys: Sequence[str]) -> None:
        """Drop side-effect records (intents whose action is known not to have happened)."""
        async with self._tx() as session:
            await session.execute(delete(SideEffect).where(SideEffect.key.in_(list(keys))))

    # ---- one-tap actions (recruiter.reply.actions) --------------------------------------------------

    async def claim_effect(self, message_id: int, key: str, kind: str, ref: str) -> bool:
        """Record a side effect unless its key exists; True when this call recorded it. The unique key
        makes this an atomic once-only lock: of two concurrent callers exactly one gets True."""
        stmt = (self._upsert(SideEffect)
                .values(key=key, message_id=message_id, kind=kind, ref=ref, created_at=utcnow())
                .on_conflict_do_nothing(index_elements=["key"]).returning(SideEffect.id))
        async with self._tx() as session:
            return (await session.execute(stmt)).scalar_one_or_none() is not None

    async def swap_effect(self, key: str, old_ref: str, new_ref: str) -> bool:
        """Compare-and-set a side effect's ref; True when it still was ``old_ref`` and now is ``new_ref``."""
        async with self._tx() as session:
            result = await session.execute(
                update(SideEffect).where(SideEffect.key == key, SideEffect.ref == old_ref).values(ref=new_ref)
            )
            return getattr(result, "rowcount", 0) == 1

    async def count_effects(self, kind: str, ref: str) -> int:
        """How many side effects of ``kind`` share ``ref`` (a digest card is shared by its members)."""
        async with self._read() as session:
            return int(await session.scalar(
                select(func.count()).select_from(SideEffect).where(SideEffect.kind == kind, SideEffect.ref == ref)
            ) or 0)
