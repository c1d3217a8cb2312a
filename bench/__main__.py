"""``python -m bench NAME [--repeat N] [options]`` and ``python -m bench --list``."""

from __future__ import annotations

from bench.runner import main

raise SystemExit(main())
