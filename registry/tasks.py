"""Celery tasks of the registry: thin wrappers (ids in, one service call, idempotent), and the
receivers that enqueue them when a registry service asks (registry/signals.py)."""

from __future__ import annotations

from typing import Any

from celery import shared_task
from django.dispatch import receiver

from registry.services.notifications import proposal_notification_send
from registry.signals import proposal_check_requested, proposal_notification_requested
from semantic.proposal_checks.run import proposal_check_run


@shared_task(name="registry.run_proposal_check", acks_late=True)
def run_proposal_check(check_id: int) -> None:
    """Runs one proposal check; a second delivery of the same id finds it claimed."""
    proposal_check_run(check_id=check_id)


@shared_task(name="registry.send_proposal_notification")
def send_proposal_notification(proposal_id: int, event: str) -> None:
    """E-mails owners, reviewers and the author about one event of a proposal."""
    proposal_notification_send(proposal_id=proposal_id, event=event)


@receiver(proposal_check_requested, dispatch_uid="registry.run_proposal_check")
def enqueue_proposal_check(sender: Any, *, check_id: int, **kwargs: Any) -> None:
    """A service asked (after its commit) for one check to run."""
    run_proposal_check.delay(check_id)


@receiver(proposal_notification_requested, dispatch_uid="registry.send_proposal_notification")
def enqueue_proposal_notification(
    sender: Any, *, proposal_id: int, event: str, **kwargs: Any
) -> None:
    """A service asked (after its commit) for the e-mails about one proposal event."""
    send_proposal_notification.delay(proposal_id, event)
