"""From the mailbox to a stored row: the IMAP IDLE `watcher.py`, `describe.py` (any bytes become a row,
quarantined if need be), mail `files.py` (eml, mbox, maildir), the backlog `replay.py` and its `plan.py`."""
