"""Signals of the compute job, for the apps above the jobs floor.

The compute job names no listener: an app that wants to hear about runs (lineage sends
OpenLineage events) connects a receiver in its ``AppConfig.ready``, so imports run one
way, from that app down to the jobs. Receivers run in the worker, inside the run's attempt;
the job sends with ``send_robust`` and logs a receiver's error, which never fails a run.
"""

from __future__ import annotations

from django.dispatch import Signal

# Sent when an attempt has claimed the run (again when a retry or a take-over claims it).
# Keyword arguments: ``run``, the claimed ComputeRun (status ``running``).
compute_run_started = Signal()

# Sent once an attempt has stored the run's outcome. Keyword arguments: ``run``, the
# ComputeRun re-read with its release (status ``succeeded`` or ``failed``).
compute_run_finished = Signal()

# Sent from ``transaction.on_commit`` when a created run should be queued. Keyword
# arguments: ``run_id`` and ``task_id`` (the Celery task id the run records). The receiver
# in ``semantic/tasks.py`` (connected by ``SemanticConfig.ready``) enqueues the task, so the
# job never imports its own task module.
compute_run_requested = Signal()
