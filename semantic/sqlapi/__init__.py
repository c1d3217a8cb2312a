"""The SQL API: BI tools connect to Tally over the PostgreSQL wire protocol.

``wire`` encodes and decodes protocol messages, ``table`` describes the ``tally.metrics``
table a release exposes, ``translate`` maps a SELECT on it onto a ``MetricQuery``,
``catalog`` answers pg_catalog / information_schema queries from an in-memory DuckDB, and
``server`` runs the connections (one thread each). ``wire``, ``table`` and ``translate``
are Django-free.
"""
