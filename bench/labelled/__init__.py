"""The labelled sample set for `recruiter backtest` and the economy benchmark; see build.py."""
