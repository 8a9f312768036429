"""`python -m vesanor_mock` runs the CLI."""

from .cli import main

raise SystemExit(main())
