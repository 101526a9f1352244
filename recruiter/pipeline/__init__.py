"""The worker and the stages every stored mail goes through (prefilter, triage, draft, calendar,
notify), each resumable, with the persisted retry schedule (`worker.py`, `stages.py`)."""
