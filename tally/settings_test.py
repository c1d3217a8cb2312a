"""The settings the test suite runs with (pyproject's DJANGO_SETTINGS_MODULE): the production
settings in demo mode, so development secrets are allowed (tally/env.py demo_mode). Set in the
environment, the mode carries over to the `tally` subprocesses tests start."""

from __future__ import annotations

import os

os.environ.setdefault("TALLY_DEMO", "1")

from tally.settings import *  # noqa: F403
