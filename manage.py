#!/usr/bin/env python
"""Django's command-line utility; `tally` is the same with friendlier command names."""

from __future__ import annotations

import sys

from tally.cli import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:], prog="manage.py"))
