"""What the owner is told when a dependency fails, and when it recovers: incidents per dependency
(the LLM, each tier, each mailbox, the calendar, Telegram, the store), once each, in `incidents.py`."""
