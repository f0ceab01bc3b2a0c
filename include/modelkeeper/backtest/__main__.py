"""`python -m modelkeeper.backtest <model>`: see modelkeeper.backtest.cli."""

from modelkeeper.backtest.cli import main

raise SystemExit(main())
