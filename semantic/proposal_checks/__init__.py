"""Proposal checks that read stored values and the warehouse, and the runner of every check."""
