"""Receivers that enqueue the registry's tasks when a service asks (registry/signals.py),
connected by ``RegistryConfig.ready``.

They import the tasks (and so Celery) when a signal first arrives, not at start-up: a CLI
command that never sends one (`tally compile`) does not pay for importing Celery.
"""

from __future__ import annotations

from typing import Any

from django.dispatch import receiver

from registry.signals import proposal_check_requested, proposal_notification_requested


@receiver(proposal_check_requested, dispatch_uid="registry.run_proposal_check")
def enqueue_proposal_check(sender: Any, *, check_id: int, **kwargs: Any) -> None:
    """A service asked (after its commit) for one check to run."""
    from registry.tasks import run_proposal_check

    run_proposal_check.delay(check_id)


@receiver(proposal_notification_requested, dispatch_uid="registry.send_proposal_notification")
def enqueue_proposal_notification(
    sender: Any, *, proposal_id: int, event: str, **kwargs: Any
) -> None:
    """A service asked (after its commit) for the e-mails about one proposal event."""
    from registry.tasks import send_proposal_notification

    send_proposal_notification.delay(proposal_id, event)
