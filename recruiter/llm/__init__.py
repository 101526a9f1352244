"""The OpenAI-compatible LLM: `client.py` (tiers in order, usage, repairs), `breaker.py` (one circuit
breaker per tier), `classify.py` (whose fault a failed call is). No triage policy here: see `triage/`."""
