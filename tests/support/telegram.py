"""What the owner's chat on the loopback Bot API shows (shared by the incident tests)."""

from __future__ import annotations

from tests.servers.fake_telegram import FakeTelegram

CHAT = "4242"


def chat_texts(fake: FakeTelegram, chat: str = CHAT) -> list[str]:
    """What the owner's phone shows, in order (the fake stores the text with the HTML parsed)."""
    return [message["text"] for message in fake.chats.get(chat, {}).values()]
