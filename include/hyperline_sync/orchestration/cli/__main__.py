"""`python -m hyperline_sync.orchestration.cli`, the same as the `hyperline-sync` script."""

from hyperline_sync.orchestration.cli import main

raise SystemExit(main())
