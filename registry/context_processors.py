"""Template context: what the signed-in user may do, for the UI to show or hide controls."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from registry.permissions import user_actions


def access(request: HttpRequest) -> dict[str, Any]:
    """``{% if "propose" in tally_actions %}``: the user's actions anywhere (lazy: only the
    pages that ask pay for the two queries). Per-object checks use ``{% has_perm %}``."""

    def actions() -> frozenset[str]:
        return frozenset(a.value for a in user_actions(getattr(request, "user", None)))

    return {"tally_actions": _Lazy(actions)}


class _Lazy:
    def __init__(self, load: Any) -> None:
        self._load = load
        self._value: frozenset[str] | None = None

    def __contains__(self, item: str) -> bool:
        if self._value is None:
            self._value = self._load()
        return item in self._value

    def __iter__(self) -> Any:
        if self._value is None:
            self._value = self._load()
        return iter(sorted(self._value))
