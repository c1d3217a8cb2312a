"""Background computation of metric values: runs, values, revisions, locks and schedules."""
