"""The adapter that hands the request's principal to the semantic services."""

from __future__ import annotations

from typing import Any

from semantic.audited import _with_principal
from semantic.compiler.principal import Principal

PRINCIPAL = Principal(name="token:bi", attributes={"tenant_id": "t1"})


def test_the_principal_reaches_a_service_that_takes_it() -> None:
    """Once the row-policy services accept `principal=`, they receive it unchanged."""

    def compile_with_policies(*, query: str, principal: Principal | None = None) -> Any:
        return (query, principal)

    assert _with_principal(compile_with_policies, PRINCIPAL, query="q") == ("q", PRINCIPAL)


def test_a_service_without_the_keyword_still_runs() -> None:
    """Before that merge the services have no such keyword and are called as before."""

    def compile_plain(*, query: str) -> str:
        return query

    assert _with_principal(compile_plain, PRINCIPAL, query="q") == "q"
