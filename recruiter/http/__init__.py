"""HTTP inside `recruiter run`: `app.py` builds the FastAPI application from `probes.py` (/healthz,
/readyz), `metrics.py` (/metrics), `api.py` (/api) and `callbacks.py` (the card's one-tap buttons)."""
