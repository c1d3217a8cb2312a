"""Who a query is compiled for: the input to row-level security and column masking.

A ``Principal`` is built from the signed-in user or the API token of a request (access
control owns that) and handed to the compiler, which injects row policies and masks PII
for it. ``None`` in place of a principal means a trusted internal caller (compute jobs,
the operator's own CLI): no row policy, no masking.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Principal:
    """The identity and attributes row policies and masking are evaluated against."""

    # "user:alice" or "token:powerbi-eu": shown in errors and written to the audit log.
    name: str
    # Values policies reference as ``{{ principal.<key> }}``, e.g. tenant_id, regions.
    # A policy whose attribute is missing here yields no rows, never all rows.
    attributes: Mapping[str, Any] = field(default_factory=dict)
    # May see PII columns unmasked.
    view_pii: bool = False
    # Row policies do not apply (admin, data governance, auditors tracing a value).
    unrestricted: bool = False

    def cache_key(self) -> tuple[Any, ...]:
        """A hashable key: two principals with equal keys compile to the same SQL."""
        return (
            self.view_pii,
            self.unrestricted,
            tuple(sorted((key, _freeze(value)) for key, value in self.attributes.items())),
        )


def _freeze(value: Any) -> Any:
    if isinstance(value, Mapping):
        return tuple(sorted((key, _freeze(item)) for key, item in value.items()))
    if isinstance(value, (list, tuple, set, frozenset)):
        items = [_freeze(item) for item in value]
        return (
            tuple(sorted(items, key=repr)) if isinstance(value, (set, frozenset)) else tuple(items)
        )
    return value
