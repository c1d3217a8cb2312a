"""Row policies as written: parsing a policy's filter, binding ``{{ principal.X }}``, finding
the entity's home model, and checking every policy of a release (``check_row_policies``).

Applying them to a compiled tree (``Access``, ``secure_tables``) is ``semantic.compiler.policies``.
"""

from __future__ import annotations

import datetime as dt
import decimal
import functools
import re
from collections.abc import Mapping
from typing import Any

from sqlglot import exp

from semantic.compiler.definition_sql import definition_expr
from semantic.compiler.joins import Source
from semantic.compiler.manifest import Manifest, SemanticModel
from semantic.compiler.principal import Principal
from semantic.compiler.time import trunc
from semantic.compiler.where import ParsedWhere, parse_where, substitute
from tally.errors import QueryError

PRINCIPAL_ITEM = re.compile(r"\{\{\s*principal\.([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
PRINCIPAL_MARKER = "__tally_principal__"
SALT_NAME = "tally_pii_salt"
# PostgreSQL/Redshift custom settings need a dotted name.
SALT_SETTING = "tally.pii_salt"
POLICY_KEYS = frozenset({"entity", "filter", "description"})

MSG_BAD_POLICY = "row policy {where}: {detail}"
HINT_BAD_POLICY = (
    "write {entity: account, filter: \"{{ Dimension('account__tenant_id') }} = "
    '{{ principal.tenant_id }}"}'
)
MSG_POLICY_ITEM = "{item} does not start with the policy's entity {entity!r}"
MSG_POLICY_METRIC = "{item}: a row policy may only read dimensions and entities"
MSG_NO_HOME = "no semantic model has {entity!r} as its primary or unique entity"
MSG_LIST_ATTRIBUTE = (
    "principal attribute {name!r} is a list; compare it with IN, e.g. "
    "{{{{ Dimension('account__region') }}}} IN {{{{ principal.{name} }}}}"
)
MSG_BAD_ATTRIBUTE = "principal attribute {name!r} has a value of type {type}"
MSG_MASKED_FILTER = "{location} reads {column}, a PII column that is masked for {principal}"
HINT_MASKED_FILTER = (
    "filter on a dimension that is not PII; only principals allowed to view PII may filter on it"
)


def _policy_error(where: str, detail: str, *, hint: str | None = HINT_BAD_POLICY) -> QueryError:
    return QueryError(
        MSG_BAD_POLICY.format(where=where, detail=detail),
        code="bad_row_policy",
        location=where,
        hint=hint,
    )


def policy_location(model: str, index: int) -> str:
    """Where a policy is written, as errors name it."""
    return f"semantic model {model}: config.meta.tally.row_policies[{index}]"


def parse_policy_filter(text: Any, location: str) -> ParsedWhere:
    """A policy filter with every ``{{ principal.X }}`` as a marker literal, checked like a
    query's where (same allow-list, no bare columns, no subqueries).

    Example:
        >>> parsed = parse_policy_filter(
        ...     "{{ Dimension('account__tenant_id') }} = {{ principal.tenant_id }}", "p")
        >>> parsed.expression.sql()
        "__tally_ref_0 = ('__tally_principal__tenant_id')"
    """
    # Parsing (Jinja + sqlglot) is most of the cost of securing a compile, and a release's
    # policies never change: each (text, location) is parsed once per process.
    if not isinstance(text, str):
        return _parse_policy_filter(text, location)
    return _parse_policy_filter_cached(text, location)


@functools.lru_cache(maxsize=1024)
def _parse_policy_filter_cached(text: str, location: str) -> ParsedWhere:
    return _parse_policy_filter(text, location)


# dbt renders Jinja in every YAML string it reads, config.meta included, and knows neither
# Dimension() there nor principal: a policy wrapped in {% raw %} … {% endraw %} reaches dbt as
# plain text, so the same files parse in dbt/MetricFlow and in Tally.
RAW_BLOCK = re.compile(r"^\s*\{%-?\s*raw\s*-?%\}(.*)\{%-?\s*endraw\s*-?%\}\s*$", re.S)


def unwrap_raw(text: str) -> str:
    """The text inside a ``{% raw %} … {% endraw %}`` wrapper, or the text as it is.

    Example:
        >>> unwrap_raw("{% raw %}{{ principal.tenant_id }}{% endraw %}")
        '{{ principal.tenant_id }}'
    """
    match = RAW_BLOCK.match(text)
    return match.group(1) if match else text


def _parse_policy_filter(text: Any, location: str) -> ParsedWhere:
    if isinstance(text, str):
        text = unwrap_raw(text)
    if not isinstance(text, str) or not text.strip():
        raise _policy_error(location, "filter must be a non-empty text")
    # Parenthesised so that ``x IN {{ principal.regions }}`` parses as an IN list; any other
    # spelling ({{ principal['x'] }}, {{ user.x }}) stays Jinja and parse_where refuses it.
    marked = PRINCIPAL_ITEM.sub(lambda m: f"('{PRINCIPAL_MARKER}{m.group(1)}')", text)
    try:
        return parse_where(marked, location=location)
    except QueryError as error:
        raise _policy_error(location, error.message, hint=error.hint) from None


def _marker(node: exp.Expr) -> str | None:
    if isinstance(node, exp.Literal) and node.is_string and node.this.startswith(PRINCIPAL_MARKER):
        return str(node.this)[len(PRINCIPAL_MARKER) :]
    return None


def _literal(name: str, value: Any) -> exp.Expr:
    if isinstance(value, bool):
        return exp.Boolean(this=value)
    if isinstance(value, (int, float, decimal.Decimal)):
        return exp.Literal.number(value)
    if isinstance(value, str):
        return exp.Literal.string(value)
    if isinstance(value, (dt.date, dt.datetime)):
        return exp.Literal.string(value.isoformat())
    raise QueryError(
        MSG_BAD_ATTRIBUTE.format(name=name, type=type(value).__name__),
        code="bad_principal",
        location=f"principal.{name}",
        hint="principal attributes are text, numbers, booleans or lists of them",
    )


def bind_principal(condition: exp.Expr, principal: Principal) -> exp.Expr:
    """Replaces the principal markers of a substituted policy condition with literals.

    A missing (or None) attribute makes the whole condition FALSE; an empty list makes its
    ``IN`` FALSE.

    Example:
        >>> cond = parse_policy_filter(
        ...     "{{ Dimension('account__region') }} IN {{ principal.regions }}", "p").expression
        >>> bind_principal(cond, Principal("u", {"regions": ["EU", "US"]})).sql()
        "__tally_ref_0 IN ('EU', 'US')"
        >>> bind_principal(cond, Principal("u", {})).sql()
        'FALSE'
    """
    missing = False

    def values(name: str) -> list[Any] | None:
        value = principal.attributes.get(name)
        if value is None:
            return None
        if isinstance(value, (list, tuple, set, frozenset)):
            return sorted(value, key=repr) if isinstance(value, (set, frozenset)) else list(value)
        return [value]

    def replace(node: exp.Expr) -> exp.Expr:
        nonlocal missing
        if isinstance(node, exp.In) and len(node.expressions) == 1:
            name = _marker(node.expressions[0])
            if name is not None:
                found = values(name)
                if found is None:
                    missing = True
                    return node
                if not found:
                    return exp.false()
                return exp.In(this=node.this, expressions=[_literal(name, v) for v in found])
        if isinstance(node, exp.Paren):
            name = _marker(node.this)
            if name is not None:
                value = principal.attributes.get(name)
                if value is None:
                    missing = True
                    return node
                if isinstance(value, (list, tuple, set, frozenset)):
                    raise QueryError(
                        MSG_LIST_ATTRIBUTE.format(name=name),
                        code="bad_principal",
                        location=f"principal.{name}",
                    )
                return _literal(name, value)
        return node

    bound = condition.copy().transform(replace, copy=False)
    return exp.false() if missing else bound


def policy_home(manifest: Manifest, entity: str, where: str) -> SemanticModel:
    """The model a policy's dimensions are read from: where ``entity`` is primary (else the
    one model where it is unique)."""
    homes = manifest.models_with_unique_entity(entity)
    # An SCD type II model (natural entity) holds the entity's history, not its home.
    primary = [m for m in homes if m.primary_entity == entity and m.validity is None]
    if len(primary) == 1:
        return primary[0]
    if len(homes) == 1:
        return homes[0]
    if not homes:
        raise _policy_error(where, MSG_NO_HOME.format(entity=entity), hint=None)
    raise _policy_error(
        where,
        f"{entity!r} is primary or unique in several models: "
        + ", ".join(sorted(m.name for m in homes)),
        hint="declare the entity primary in exactly one semantic model",
    )


def check_policy_shape(model: SemanticModel, index: int, policy: Any) -> tuple[str, Any]:
    where = policy_location(model.name, index)
    if not isinstance(policy, Mapping):
        raise _policy_error(where, "a row policy is a mapping with entity and filter")
    unknown = sorted(str(k) for k in policy if k not in POLICY_KEYS)
    if unknown:
        raise _policy_error(where, "unknown key(s) " + ", ".join(map(repr, unknown)))
    entity = policy.get("entity")
    if not isinstance(entity, str) or not entity:
        raise _policy_error(where, "entity must be the name of an entity")
    if entity not in model.entities:
        raise _policy_error(
            where,
            f"{entity!r} is not an entity of {model.name!r}",
            hint="entities: " + ", ".join(sorted(model.entities)),
        )
    return entity, policy.get("filter")


def policy_condition(
    manifest: Manifest,
    source: Source,
    entity: str,
    parsed: ParsedWhere,
    where: str,
) -> exp.Expr:
    """A policy's condition over ``source`` (a read of the entity's home model), its items
    resolved from the home model (the leading entity name stripped) and still holding the
    principal markers."""
    columns: dict[str, exp.Expr] = {}
    for ref in parsed.refs:
        if ref.kind == "metric":
            raise _policy_error(where, MSG_POLICY_METRIC.format(item=ref.text))
        path = tuple(ref.entity_path)
        if ref.kind == "entity" and not path and ref.name == entity:
            columns[ref.placeholder] = definition_expr(
                source.model.entities[entity].expr, source.alias
            )
            continue
        if not path or path[0] != entity:
            raise _policy_error(where, MSG_POLICY_ITEM.format(item=ref.text, entity=entity))
        model, alias = source.walk(path[1:], ref.text, ref.name)
        dim = model.dimensions.get(ref.name)
        if dim is None and ref.name in model.entities and not ref.grain:
            columns[ref.placeholder] = definition_expr(model.entities[ref.name].expr, alias)
            continue
        if dim is None:
            raise _policy_error(
                where,
                f"{ref.text} is not a dimension of {model.name!r}",
                hint="dimensions: " + ", ".join(sorted(model.dimensions)),
            )
        value = definition_expr(dim.expr, alias)
        if dim.type == "time" and ref.grain:
            value = trunc(value, ref.grain)
        columns[ref.placeholder] = value
    return substitute(parsed, columns)


def check_row_policies(manifest: Manifest) -> list[tuple[str, int, QueryError]]:
    """Every row policy of the manifest that the compiler would refuse, as
    (model, index, error): shape, entity, filter syntax, items and the entity's home.

    Example:
        >>> check_row_policies(Manifest("", {}, {}, {}, {}, None))
        []
    """
    found = []
    for model in manifest.semantic_models.values():
        for index, policy in enumerate(model.row_policies):
            try:
                entity, text = check_policy_shape(model, index, policy)
                where = policy_location(model.name, index)
                parsed = parse_policy_filter(text, where)
                home = policy_home(manifest, entity, where)
                policy_condition(
                    manifest,
                    Source(home, manifest, f"row policy on {entity}", suffix_paths=False),
                    entity,
                    parsed,
                    where,
                )
            except QueryError as error:
                found.append((model.name, index, error))
    return found
