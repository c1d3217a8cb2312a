"""The settings the test suite runs with (pyproject's DJANGO_SETTINGS_MODULE): the production
settings in demo mode, so development secrets are allowed (tally/env.py demo_mode). Set in the
environment, the mode carries over to the `tally` subprocesses tests start."""

from __future__ import annotations

import os

os.environ.setdefault("TALLY_DEMO", "1")

from tally.settings import *  # noqa: F403

# The result cache stays off in-process: many tests change the warehouse between two queries
# within the data-version window; tests/semantic/test_result_cache.py turns it on.
TALLY_RESULT_CACHE_TTL_S = 0.0
