"""Celery tasks of the registry: thin wrappers (ids in, one service call, idempotent). The
receivers that enqueue them when a registry service asks are in registry/receivers.py."""

from __future__ import annotations

from celery import shared_task

# The configured app must exist before a task is sent: tally/__init__ no longer loads it.
import tally.celery  # noqa: F401
from registry.services.notifications import proposal_notification_send
from semantic.proposal_checks.run import proposal_check_run


@shared_task(name="registry.run_proposal_check", acks_late=True)
def run_proposal_check(check_id: int) -> None:
    """Runs one proposal check; a second delivery of the same id finds it claimed."""
    proposal_check_run(check_id=check_id)


@shared_task(name="registry.send_proposal_notification")
def send_proposal_notification(proposal_id: int, event: str) -> None:
    """E-mails owners, reviewers and the author about one event of a proposal."""
    proposal_notification_send(proposal_id=proposal_id, event=event)
