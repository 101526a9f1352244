"""Benchmarks of recruiter-responder (see bench/README.md). Not part of the installed package."""
