"""The `recruiter` command: `main.py` holds the top-level commands and adds the groups (`dlq.py`,
`replay.py`, `backtest.py`); `common.py` is what every command shares; `status.py` reads the service."""
