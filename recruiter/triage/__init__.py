"""Where triage happens: `prefilter.py` (bulk and automatic mail, no LLM), `llm.py` (the LLM verdict),
`rules.py` and its helpers (the rules tier, no LLM), `fit.py` (the verdict against the owner profile),
`backtest.py` (quality on labelled mail)."""
