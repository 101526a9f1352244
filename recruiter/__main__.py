"""`python -m recruiter` is the `recruiter` command."""

from recruiter.cli import main

main()
