"""`python -m rpa` is the `rpa` command."""

from rpa.cli import main

raise SystemExit(main())
