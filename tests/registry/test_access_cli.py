"""`tally role`, `tally token` and `tally audit-log` as an operator runs them."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command

from registry.models import ApiToken, Release, RoleGrant
from tests.conftest import run_tally

pytestmark = pytest.mark.django_db


def tally(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_role_grant_list_and_revoke(owner: Any, registry_r1: Release) -> None:
    out, _ = tally("role", "grant", "owner", "auditor")
    assert out.strip() == "granted auditor to owner"
    tally("role", "grant", "owner", "editor", "--domain", "product")
    tally("role", "grant", "owner", "auditor")  # idempotent
    assert RoleGrant.objects.filter(user=owner).count() == 2
    rows = json.loads(tally("role", "list", "--user", "owner", "--format", "json")[0])
    assert rows == [
        {
            "user": "owner",
            "granted": ["auditor", "editor@product"],
            # The lead of product-analytics reviews product through the team.
            "effective": ["auditor", "viewer", "editor@product", "reviewer@product"],
        }
    ]
    out, _ = tally("role", "revoke", "owner", "auditor")
    assert out.strip() == "revoked auditor of owner"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["owner", "editor"], "error[domain_required]: role editor is held in a domain"),
        (["owner", "admin", "--domain", "product"], "error[domain_not_allowed]"),
        (["owner", "editor", "--domain", "nope"], "error[unknown_domain]: no domain 'nope'"),
        (["ghost", "viewer"], "error[unknown_user]: no user 'ghost'"),
    ],
)
def test_role_grant_errors_name_the_problem(
    owner: Any, args: list[str], message: str, capsys: Any
) -> None:
    with pytest.raises(SystemExit) as exit_:
        call_command("role", "grant", *args)
    assert exit_.value.code == 1
    assert message in capsys.readouterr().err


def test_role_attrs_and_table(owner: Any) -> None:
    out, _ = tally("role", "attrs", "owner", "--attr", "regions=EU,US", "--attr", "tenant_id=t1")
    assert out.strip() == 'owner: {"regions": ["EU", "US"], "tenant_id": "t1"}'
    table = tally("role", "table")[0].splitlines()
    assert table[0].split()[0] == "viewer" and table[-1].startswith("admin")


def test_token_create_list_revoke(owner: Any) -> None:
    raw, err = tally(
        "token", "create", "--service", "powerbi-eu", "--scope", "read,query",
        "--expires", "30d", "--tenant", "t1", "--attr", "regions=EU,US",
    )  # fmt: skip
    raw = raw.strip()
    assert raw.startswith("tly_") and "shown only now" in err
    token = ApiToken.objects.get()
    assert (token.service, token.scopes, token.tenant) == ("powerbi-eu", ["read", "query"], "t1")
    assert token.attributes == {"regions": ["EU", "US"]} and token.expires_at is not None
    listed = json.loads(tally("token", "list", "--format", "json")[0])
    assert [t["prefix"] for t in listed] == [token.prefix] and raw not in json.dumps(listed)
    out, _ = tally("token", "revoke", token.prefix)
    assert out.startswith(f"revoked {token.prefix}")
    assert tally("token", "list")[0].strip() == "No tokens."


def test_token_revoke_finds_an_all_digit_prefix(owner: Any) -> None:
    """A prefix is random hex, so one in ~70 is all digits; it is still a prefix, not an id."""
    tally("token", "create", "--user", "owner", "--scope", "read")
    token = ApiToken.objects.get()
    ApiToken.objects.filter(pk=token.pk).update(prefix="987107009262")
    out, _ = tally("token", "revoke", "987107009262")
    assert out.startswith("revoked 987107009262")
    tally("token", "create", "--user", "owner", "--scope", "read")
    second = ApiToken.objects.exclude(pk=token.pk).get()
    out, _ = tally("token", "revoke", str(second.pk))  # an id still works
    assert out.startswith(f"revoked {second.prefix}")


def test_token_create_refuses_a_bad_scope(owner: Any, capsys: Any) -> None:
    with pytest.raises(SystemExit):
        call_command("token", "create", "--user", "owner", "--scope", "write")
    err = capsys.readouterr().err
    assert "scopes: error[invalid_scope]: unknown scope 'write'" in err
    assert "hint: scopes: read, compile, query, propose, audit, pii" in err


@pytest.mark.registry_db
def test_the_real_cli_grants_and_mints(migrated_registry_url: str, tmp_path: Path) -> None:
    """Through the `tally` entry point, in a fresh registry."""
    env = {"DATABASE_URL": migrated_registry_url}
    made = run_tally("createsuperuser", "--noinput", "--username", "ops",
                     "--email", "ops@example.com", env=env)  # fmt: skip
    assert made.returncode == 0, made.stderr
    granted = run_tally("role", "grant", "ops", "auditor", env=env)
    assert granted.returncode == 0 and "granted auditor to ops" in granted.stdout
    minted = run_tally("token", "create", "--user", "ops", "--scope", "audit", env=env)
    assert minted.returncode == 0 and minted.stdout.startswith("tly_")
    log = run_tally("audit-log", "--format", "json", env=env)
    assert {e["action"] for e in json.loads(log.stdout)} >= {"role.grant", "token.create"}
