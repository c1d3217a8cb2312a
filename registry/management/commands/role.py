from __future__ import annotations

import json
from typing import Any

from django.core.management.base import CommandParser

from registry.access_selectors import role_grant_list
from registry.permissions import user_grants
from registry.roles import Role, role_table
from registry.services.access import (
    access_profile_set,
    parse_attributes,
    role_grant,
    role_revoke,
    user_get,
)
from tally.management.base import TallyCommand


class Command(TallyCommand):
    help = (
        "Grant, revoke and list roles (tally role grant USER ROLE [--domain D]); set a user's "
        "row-policy attributes (tally role attrs USER --attr regions=EU,US); print the table."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="verb", required=True)
        roles = [r.value for r in Role]
        for verb in ("grant", "revoke"):
            cmd = sub.add_parser(verb, help=f"{verb} a role")
            cmd.add_argument("user")
            cmd.add_argument("role", choices=roles)
            cmd.add_argument("--domain", default=None, help="domain slug (editor, reviewer)")
        listing = sub.add_parser("list", help="effective roles of every user (or one)")
        listing.add_argument("--user", default=None)
        listing.add_argument("--format", choices=["table", "json"], default="table")
        attrs = sub.add_parser("attrs", help="set a user's attributes for row policies")
        attrs.add_argument("user")
        attrs.add_argument("--attr", action="append", default=[], help="key=value[,value]")
        sub.add_parser("table", help="what each role may do")

    def handle(self, *args: Any, **opts: Any) -> None:
        verb = opts["verb"]
        if verb == "table":
            for role, actions in role_table():
                self.stdout.write(f"{role:<11} {', '.join(actions)}")
            return
        if verb == "list":
            self._list(opts)
            return
        user = user_get(opts["user"])
        if verb == "attrs":
            profile = access_profile_set(user=user, attributes=parse_attributes(opts["attr"]))
            self.stdout.write(f"{user.username}: {json.dumps(profile.attributes, sort_keys=True)}")
            return
        where = f" in {opts['domain']}" if opts["domain"] else ""
        if verb == "grant":
            role_grant(user=user, role=opts["role"], domain=opts["domain"])
            self.stdout.write(f"granted {opts['role']}{where} to {user.username}")
        else:
            count = role_revoke(user=user, role=opts["role"], domain=opts["domain"])
            state = "revoked" if count else "not held:"
            self.stdout.write(f"{state} {opts['role']}{where} of {user.username}")

    def _list(self, opts: dict[str, Any]) -> None:
        only = user_get(opts["user"]) if opts["user"] else None
        explicit: dict[str, list[str]] = {}
        users: dict[str, Any] = {}
        for grant in role_grant_list(user=only):
            label = f"{grant.role}@{grant.domain.slug}" if grant.domain_id else grant.role
            explicit.setdefault(grant.user.username, []).append(label)
            users[grant.user.username] = grant.user
        if only is not None:
            users[only.username] = only
        rows = [
            {
                "user": name,
                "granted": explicit.get(name, []),
                "effective": user_grants(users[name]).labels(),
            }
            for name in sorted(users)
        ]
        if opts["format"] == "json":
            self.stdout.write(json.dumps(rows, indent=2))
            return
        if not rows:
            self.stdout.write("No role grants (team members hold roles through their teams).")
        for row in rows:
            self.stdout.write(
                f"{row['user']:<32} granted: {', '.join(row['granted']) or '-'}; "
                f"effective: {', '.join(row['effective']) or '-'}"
            )
