"""`python -m recruiter` is the `recruiter` command."""

from recruiter.cli.main import main

main()
