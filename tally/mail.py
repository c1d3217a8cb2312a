"""The demo's e-mail backend: the console one, on stderr so command output stays clean."""

from __future__ import annotations

import sys
from typing import Any

from django.core.mail.backends.console import EmailBackend


class StderrConsoleBackend(EmailBackend):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("stream", sys.stderr)
        super().__init__(*args, **kwargs)
