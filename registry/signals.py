"""Signals through which registry services ask for work on a higher floor, after commit.

The registry's services sit below the jobs floor (``registry.tasks``), so they do not enqueue
tasks themselves: they send one of these from ``transaction.on_commit`` (a rolled-back write
never announces anything) and the receivers in ``registry/receivers.py`` enqueue the task, which
Celery runs in-process when no broker is configured. ``RegistryConfig.ready`` connects them.
"""

from __future__ import annotations

from django.dispatch import Signal

# Sent with ``check_id``: one pending ProposalCheck row to run.
proposal_check_requested = Signal()
# Sent with ``proposal_id`` and ``event`` (opened, reviewed, merged): e-mails to send.
proposal_notification_requested = Signal()
