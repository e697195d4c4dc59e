"""Allow `python -m daemon` as a synonym of the `homecal` console script."""

from daemon.cli import main

raise SystemExit(main())
