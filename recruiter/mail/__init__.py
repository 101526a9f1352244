"""Mail as bytes and as protocols: IMAP (`imap.py`) and SMTP (`smtp.py`) connections, TLS, parsing
(`parse.py`, `headers.py`, `text.py`) and calendar invitations (`invite.py`)."""
