"""Metric kinds: one module per kind, each building the sqlglot SELECT of one aggregation.

simple (the aggregation functions), conversion, non_additive, cumulative, offset (inputs of
derived metrics read from an earlier period) and derived (ratio and derived expressions
computed over the combined aggregations).
"""
