"""`python -m rpa` is the `rpa` command."""

from rpa.cli import main, run_program

raise SystemExit(run_program(main))
