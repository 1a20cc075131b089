"""`python -m axolotl_mistake.serve`: the command line (see `cli`)."""

from axolotl_mistake.serve.cli import main

raise SystemExit(main())
