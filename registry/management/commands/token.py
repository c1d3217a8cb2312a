from __future__ import annotations

import json
from typing import Any

from django.core.management.base import CommandParser

from registry.access_selectors import token_list
from registry.services.access import (
    parse_attributes,
    parse_duration,
    token_create,
    token_get,
    token_revoke,
    user_get,
)
from tally.management.base import TallyCommand


class Command(TallyCommand):
    help = (
        "API tokens: tally token create --user U | --service NAME --scope read,compile "
        "[--expires 30d] [--tenant T] [--attr regions=EU,US]; tally token list; "
        "tally token revoke ID|PREFIX."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="verb", required=True)
        create = sub.add_parser("create", help="create a token; it is printed once")
        owner = create.add_mutually_exclusive_group(required=True)
        owner.add_argument("--user", default=None)
        owner.add_argument("--service", default=None, help="service account name")
        create.add_argument("--scope", required=True, help="read,compile,query,propose,audit,pii")
        create.add_argument("--name", default=None)
        create.add_argument("--expires", default=None, help="30d, 12h, 2w (default: never)")
        create.add_argument("--tenant", default="", help="tenant_id for row policies")
        create.add_argument("--attr", action="append", default=[], help="key=value[,value]")
        create.add_argument("--format", choices=["text", "json"], default="text")
        listing = sub.add_parser("list", help="tokens (never their secrets)")
        listing.add_argument("--user", default=None)
        listing.add_argument("--revoked", action="store_true", help="include revoked ones")
        listing.add_argument("--format", choices=["table", "json"], default="table")
        revoke = sub.add_parser("revoke", help="revoke a token")
        revoke.add_argument("token", help="id or prefix")

    def handle(self, *args: Any, **opts: Any) -> None:
        getattr(self, f"_{opts['verb']}")(opts)

    def _create(self, opts: dict[str, Any]) -> None:
        created = token_create(
            acting_user=None,
            scopes=opts["scope"],
            user=user_get(opts["user"]) if opts["user"] else None,
            service=opts["service"],
            name=opts["name"],
            expires_in=parse_duration(opts["expires"]) if opts["expires"] else None,
            tenant=opts["tenant"],
            attributes=parse_attributes(opts["attr"]),
        )
        token = created.token
        if opts["format"] == "json":
            self.stdout.write(json.dumps({**_row(token), "token": created.raw}, indent=2))
            return
        self.stdout.write(created.raw)
        self.stderr.write(
            f"token {token.prefix} ({token.name}) for {token.user.username}, scopes "
            f"{','.join(token.scopes)}, expires {token.expires_at or 'never'}. "
            "It is shown only now: store it in your BI tool's secret store."
        )

    def _list(self, opts: dict[str, Any]) -> None:
        user = user_get(opts["user"]) if opts["user"] else None
        rows = [_row(t) for t in token_list(user=user, include_revoked=opts["revoked"])]
        if opts["format"] == "json":
            self.stdout.write(json.dumps(rows, indent=2))
            return
        if not rows:
            self.stdout.write("No tokens.")
        for row in rows:
            state = "revoked" if row["revoked_at"] else f"expires {row['expires_at'] or 'never'}"
            self.stdout.write(
                f"{row['id']:<5} {row['prefix']}  {row['name']:<24} {row['user']:<28} "
                f"{','.join(row['scopes']):<22} {state}; last used {row['last_used_at'] or '-'}"
            )

    def _revoke(self, opts: dict[str, Any]) -> None:
        token = token_revoke(token=token_get(ref=opts["token"]), acting_user=None)
        self.stdout.write(f"revoked {token.prefix} ({token.name}) at {token.revoked_at}")


def _row(token: Any) -> dict[str, Any]:
    def iso(value: Any) -> str | None:
        return value.isoformat() if value else None

    return {
        "id": token.pk,
        "prefix": token.prefix,
        "name": token.name,
        "user": token.user.username,
        "service": token.service,
        "scopes": list(token.scopes),
        "tenant": token.tenant,
        "attributes": token.attributes,
        "created_at": iso(token.created_at),
        "expires_at": iso(token.expires_at),
        "last_used_at": iso(token.last_used_at),
        "revoked_at": iso(token.revoked_at),
    }
