"""Sending a signal that some receiver must answer (a lower floor asking a higher one for work).

A service that queues work through a signal (proposal checks, e-mails, compute runs) would
otherwise leave that work pending forever when no receiver is connected (an app's ``ready``
did not run): fail loudly instead.
"""

from __future__ import annotations

from typing import Any

from django.dispatch import Signal


def signal_send_required(signal: Signal, *, sender: Any, **kwargs: Any) -> None:
    """Sends ``signal``; raises RuntimeError when no receiver is connected to it."""
    if not signal.send(sender=sender, **kwargs):
        raise RuntimeError(f"no receiver is connected for {kwargs or sender!r}: is the app ready?")
