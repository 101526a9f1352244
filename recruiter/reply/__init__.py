"""The reply: its text (`draft.py` with the LLM, `template.py` without), its bytes (`compose.py`), the
Drafts folder (`drafts.py`), and what a tap does (`actions.py`, `mailbox.py`, `outgoing.py`)."""
