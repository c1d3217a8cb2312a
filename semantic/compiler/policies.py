"""Row-level security and PII masking, applied to a compiled tree for one principal.

Row policies are declared on entities, in a semantic model's ``config.meta``::

    config:
      meta:
        tally:
          row_policies:
            - entity: account
              filter: "{{ Dimension('account__tenant_id') }} = {{ principal.tenant_id }}"

A policy restricts every read of every semantic model that carries its entity (primary,
unique or foreign): the model where the entity is primary (its *home*) is filtered by the
condition itself, any other model by a semi-join of its entity key to the home's keys that
pass (``account_id IN (SELECT id FROM accounts WHERE …)``). The compiler never builds a read
of a model without going through ``secure_tables``: every table reference of a semantic
model in the final tree (CTEs of Metric() filters, conversion, cumulative, non-additive and
time-spine joined aggregations alike) is replaced by a filtered derived table under the same
alias, so no query shape can reach the raw table.

``{{ principal.X }}`` becomes a sqlglot literal of the principal's attribute (a list in an
``IN``); a missing attribute turns the whole policy into FALSE: no rows, never all rows.

PII columns (ODCS ``classification: pii`` or tag ``pii`` in the model's contract) are shown
to principals without ``view_pii`` as ``MD5(salt || ':' || value)`` (joinable, and
count-distinct stays exact) or NULL. The salt is never in the SQL: it is a session variable
or bind parameter named ``tally_pii_salt`` in each dialect's own syntax, which Tally sets
with a bound parameter when it executes (see ``semantic.warehouse.execute``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from sqlglot import exp

from semantic.compiler.definition_sql import definition_expr
from semantic.compiler.joins import Source
from semantic.compiler.manifest import (
    MASK_MODES,
    Manifest,
    RelationKey,
    SemanticModel,
    relation_key,
)
from semantic.compiler.policy_rules import (
    HINT_MASKED_FILTER,
    MSG_MASKED_FILTER,
    SALT_NAME,
    SALT_SETTING,
    bind_principal,
    check_policy_shape,
    parse_policy_filter,
    policy_condition,
    policy_home,
    policy_location,
)
from semantic.compiler.principal import Principal
from tally.errors import QueryError


@dataclass
class Access:
    """What one compile enforces for one principal; built once per compile."""

    manifest: Manifest
    principal: Principal
    dialect: str
    mask_default: str = "hash"
    masked: bool = False  # a hash mask was emitted: execution must set the salt
    _conditions: dict[tuple[int, str], exp.Select | None] = field(default_factory=dict)

    _by_relation: dict[RelationKey, list[tuple[Manifest, SemanticModel]]] = field(
        default_factory=dict
    )

    def __post_init__(self) -> None:
        # Security comes from the pinned release *and* the current one (``manifest.security``,
        # attached by the service when a query pins an older release): a row policy or a PII
        # classification added later applies to every read, whatever the query pins.
        # Both depend on the manifest alone (its security manifest is fixed with it): done
        # once per manifest, not per compile. The index is shared and only ever read.
        cache = self.manifest.policy_cache
        by_relation = cache.get(("by_relation",))
        if by_relation is None:
            by_relation = {}
            for manifest in self.manifests:
                for model in manifest.semantic_models.values():
                    key = relation_key(model.relation)
                    by_relation.setdefault(key, []).append((manifest, model))
            cache[("by_relation",)] = by_relation
        self._by_relation = by_relation
        if self.restricted and ("shapes_checked",) not in cache:
            # Fail closed: a policy the manifest could not even read as {entity, filter}
            # must refuse the compile, not silently stop applying.
            for manifest in self.manifests:
                for model in manifest.semantic_models.values():
                    for index, policy in enumerate(model.row_policies):
                        check_policy_shape(model, index, policy)
            cache[("shapes_checked",)] = True

    @property
    def manifests(self) -> tuple[Manifest, ...]:
        """The manifests whose policies and masks apply: the compiled one, then the current
        release's when the compiled one is older."""
        security = self.manifest.security
        return (self.manifest,) if security is None else (self.manifest, security)

    def models_on(self, table: exp.Table) -> list[tuple[Manifest, SemanticModel]]:
        """Every semantic model (of every applying manifest) over the table ``table`` reads,
        with identifiers compared case-folded; empty for CTE references."""
        if not table.db:
            return []
        return self._by_relation.get(relation_key((table.catalog, table.db, table.name)), [])

    @property
    def restricted(self) -> bool:
        return not self.principal.unrestricted

    @property
    def parameters(self) -> tuple[str, ...]:
        """The session variables the secured SQL reads: the salt once a hash mask is in it."""
        return (SALT_NAME,) if self.masked else ()

    @property
    def masks(self) -> bool:
        return not self.principal.view_pii

    def masked_columns(self, model: SemanticModel) -> Mapping[str, str]:
        """PII column (lower-cased) → mask mode for this principal, over every model of any
        applying manifest on the same table (empty when it may view PII). A column PII in
        any of them is masked; "null" wins over "hash" (the stricter)."""
        if not self.masks:
            return {}
        found: dict[str, str] = {}
        key = relation_key(model.relation)
        for _, other in self._by_relation.get(key, [(self.manifest, model)]):
            for column, mode in other.pii_columns.items():
                chosen = mode if mode in MASK_MODES else ("null" if mode else self.mask_default)
                if found.get(column.lower()) != "null":
                    found[column.lower()] = chosen
        return found

    def secured_read(
        self, model: SemanticModel, manifest: Manifest | None = None
    ) -> exp.Select | None:
        """``SELECT m.* FROM table AS m WHERE <policies>`` for a model of ``manifest``
        (default: the compiled one), None when no policy applies; built once per model and
        copied at each read."""
        manifest = manifest or self.manifest
        key = (id(manifest), model.name)
        if key in self._conditions:
            return self._conditions[key]
        select = _secured_select_cached(manifest, model, self.principal)
        self._conditions[key] = select
        return select


# Entries of Manifest.policy_cache before it is emptied: a server sees many principals, and
# each entry holds a small SELECT.
POLICY_CACHE_ENTRIES = 4096


def _secured_select_cached(
    manifest: Manifest, model: SemanticModel, principal: Principal
) -> exp.Select | None:
    """``_secured_select``, kept per manifest: the policies of a release never change, and a
    principal's read of a model is the same on every compile (parsing, resolving and binding
    the policies was a quarter of a tenant's compile). Callers copy before changing it."""
    key = _principal_key(principal)
    if key is None:
        return _secured_select(manifest, model, principal)
    cache = manifest.policy_cache
    entry = ("secured_read", model.name, key)
    if entry in cache:
        return cache[entry]
    select = _secured_select(manifest, model, principal)
    if len(cache) >= POLICY_CACHE_ENTRIES:
        cache.clear()
    cache[entry] = select
    return select


def _principal_key(principal: Principal) -> tuple[str, ...] | None:
    """The principal's attributes exactly (``repr`` tells 1, 1.0, True and "1" apart, which
    bind as different literals), or None when they cannot be ordered."""
    try:
        items = sorted(principal.attributes.items())
    except TypeError:
        return None
    return (principal.name, *(f"{name!r}={value!r}" for name, value in items))


def _secured_select(
    manifest: Manifest, model: SemanticModel, principal: Principal
) -> exp.Select | None:
    # Policy items resolve by their path as written (no suffix rule): a security rule names
    # the join it filters through.
    own = Source(model, manifest, f"row policies of {model.name}", suffix_paths=False)
    conditions: list[exp.Expr] = []
    for entity in model.entities:
        for declaring, index, policy in manifest.row_policies(entity):
            where = policy_location(declaring.name, index)
            _, text = check_policy_shape(declaring, index, policy)
            parsed = parse_policy_filter(text, where)
            home = policy_home(manifest, entity, where)
            if home.name == model.name:
                condition = policy_condition(manifest, own, entity, parsed, where)
                conditions.append(bind_principal(condition, principal))
                continue
            # Any other model carrying the entity: its key must be one the home lets through
            # (a semi-join: no fan-out, and a NULL key matches nothing).
            home_source = Source(home, manifest, f"row policy on {entity}", suffix_paths=False)
            condition = bind_principal(
                policy_condition(manifest, home_source, entity, parsed, where), principal
            )
            keys = exp.select(
                definition_expr(home.entities[entity].expr, home_source.alias), copy=False
            )
            keys = home_source.from_clause(keys).where(condition, copy=False)
            conditions.append(
                exp.In(
                    this=definition_expr(model.entities[entity].expr, own.alias),
                    query=keys.subquery(copy=False),
                )
            )
    if not conditions:
        return None
    select = exp.select(exp.Column(this=exp.Star(), table=exp.to_identifier(own.alias)), copy=False)
    select = own.from_clause(select)
    return select.where(exp.and_(*conditions, copy=False), copy=False)


# The largest LIMIT MySQL/MariaDB accept: their documented "all rows" (they have no OFFSET
# without LIMIT).
MYSQL_ALL_ROWS = 18446744073709551615


def barrier(select: exp.Select, dialect: str) -> exp.Select:
    """Makes a secured read an optimisation barrier where the engine has one, so that no
    predicate of the enclosing query is evaluated on a row the policy removes (a filter that
    raises, e.g. ``CAST(… AS INT)``, would print that row's value in its error).

    PostgreSQL neither pulls up nor pushes quals into a subquery with OFFSET; MariaDB
    neither merges (derived_merge) nor pushes conditions into a derived table with a LIMIT;
    DuckDB does not push filters through a LIMIT/OFFSET node. Proven with error-oracle
    queries in tests/security/test_filter_oracle.py; other dialects are unchanged (see the
    README's limits).

    Example:
        >>> barrier(exp.select("a.*", copy=False).from_("t AS a"), "postgres").sql("postgres")
        'SELECT a.* FROM t AS a OFFSET 0'
    """
    if dialect in ("postgres", "duckdb"):
        # A literal, not 0: the builder would parse the text "0" (a tokenizer and parser per read).
        return select.offset(exp.Literal.number(0), copy=False)
    if dialect == "mysql":
        return select.limit(exp.Literal.number(MYSQL_ALL_ROWS), copy=False)
    return select


def _nest(outer: exp.Select, inner: exp.Select) -> exp.Select:
    """``outer`` reading ``inner`` in place of its own table (under the table's alias, which
    its conditions name): a row must pass both reads' policies, whatever their aliases and
    joins."""
    table = outer.args["from_"].this
    table.replace(inner.subquery(table.alias_or_name, copy=False))
    return outer


def secure_tables(tree: exp.Expr, access: Access) -> exp.Expr:
    """Replaces every read of a semantic model's table in ``tree`` with its row-policy
    filtered derived table, under the same alias.

    Runs on the finished tree (after the SQL passes), so it sees every table reference the
    compiler or a pass emitted, wherever it sits. Tables are matched case-folded (a model on
    ``main.USERS`` reads ``main.users``), and every model over the table, of the compiled
    release and of the current one, adds its policies.
    """
    if not access.restricted:
        return tree
    for table in list(tree.find_all(exp.Table)):
        models = access.models_on(table)
        if not models:
            continue  # a CTE reference, the time spine or another non-model table
        alias = table.alias_or_name
        reads = [
            r.copy()
            for r in (access.secured_read(model, manifest) for manifest, model in models)
            if r is not None
        ]
        if not reads:
            continue
        secured = reads[0]
        for extra in reads[1:]:
            # Several models on one table: a row must pass the policies of all of them.
            secured = _nest(extra, secured)
        secured = barrier(secured, access.dialect)
        table.replace(secured.subquery(alias, copy=False))
    return tree


def pii_salt(dialect: str) -> exp.Expr:
    """The salt as each dialect names a session variable or query parameter (never a value).

    Example:
        >>> [pii_salt(d).sql(d) for d in ("duckdb", "postgres", "mysql")]
        ["GETVARIABLE('tally_pii_salt')", "CURRENT_SETTING('tally.pii_salt')", '@tally_pii_salt']
    """
    if dialect == "duckdb":
        return exp.Anonymous(this="GETVARIABLE", expressions=[exp.Literal.string(SALT_NAME)])
    if dialect in ("postgres", "redshift"):
        return exp.Anonymous(this="CURRENT_SETTING", expressions=[exp.Literal.string(SALT_SETTING)])
    if dialect in ("mysql", "snowflake", "bigquery"):
        # @var (MySQL user variable, BigQuery named parameter), $var (Snowflake variable).
        return exp.Parameter(this=exp.Var(this=SALT_NAME))
    if dialect in ("databricks", "spark"):
        # A session variable: DECLARE VARIABLE tally_pii_salt STRING; SET VAR …
        return exp.column(SALT_NAME, table="session", db="system")
    if dialect == "clickhouse":
        return exp.Placeholder(this=exp.Var(this=SALT_NAME), kind=exp.DataType.build("String"))
    # Trino has no session variables: a positional parameter (EXECUTE … USING).
    return exp.Placeholder()


TEXT = exp.DataType.build("VARCHAR")


def mask_expression(column: exp.Expr, mode: str, dialect: str) -> exp.Expr:
    """The masked form of a PII column: ``MD5(salt || ':' || value)`` or NULL.

    Example:
        >>> mask_expression(exp.column("email", table="u"), "hash", "duckdb").sql("duckdb")
        "CASE WHEN u.email IS NULL THEN NULL ELSE MD5(GETVARIABLE('tally_pii_salt') || ':' || CAST(u.email AS TEXT)) END"
    """
    if mode == "null":
        return exp.cast(exp.Null(), TEXT.copy())
    text = exp.Concat(
        expressions=[pii_salt(dialect), exp.Literal.string(":"), exp.cast(column, TEXT.copy())],
        safe=False,
    )
    return exp.Case(
        ifs=[exp.If(this=exp.Is(this=column.copy(), expression=exp.Null()), true=exp.Null())],
        default=exp.MD5(this=text),
    )


def mask_columns(tree: exp.Expr, access: Access) -> exp.Expr:
    """Replaces every column of ``tree`` that reads a PII column of a semantic model (by the
    alias of a table reference of the model) with its mask. Runs before the SQL passes, on
    the tree the compiler built, where a model's alias always names that model's table."""
    if not access.masks:
        return tree
    # One walk for both kinds of node: each walk of the tree costs about as much as a
    # third of generating its SQL.
    tables: list[exp.Table] = []
    found: list[exp.Column] = []
    for node in tree.walk():
        if isinstance(node, exp.Table):
            tables.append(node)
        elif isinstance(node, exp.Column):
            found.append(node)
    masked: dict[str, dict[str, str]] = {}
    for table in tables:
        for _, model in access.models_on(table):
            columns = access.masked_columns(model)
            if columns:
                masked.setdefault(table.alias_or_name, {}).update(columns)
    if not masked:
        return tree
    for column in found:
        modes = masked.get(column.table)
        # Column names compared case-folded, as the engines resolve unquoted names.
        mode = modes.get(column.name.lower()) if modes else None
        if mode is None or isinstance(column.this, exp.Star):
            continue
        access.masked = access.masked or mode == "hash"
        column.replace(mask_expression(column.copy(), mode, access.dialect))
    return tree


def check_unmasked(condition: exp.Expr, source: Source, access: Access, location: str) -> None:
    """Refuses a filter that reads a PII column masked for the principal: comparing
    pseudonyms would silently match nothing, and comparing values would reveal them."""
    aliases = {source.alias: source.model}
    for alias, (target, _) in source.joins.items():
        aliases[alias] = target
    for column in condition.find_all(exp.Column):
        model = aliases.get(column.table)
        if model is not None and column.name.lower() in access.masked_columns(model):
            raise QueryError(
                MSG_MASKED_FILTER.format(
                    location=location,
                    column=f"{model.name}.{column.name}",
                    principal=access.principal.name,
                ),
                code="masked_column",
                location=location,
                hint=HINT_MASKED_FILTER,
            )


MSG_STAR_OVER_PII = "a * read of {model!r} would show its PII columns unmasked to {principal}"


def _refuse_star_over_pii(tree: exp.Expr, access: Access) -> None:
    """Masks replace columns by name; a ``*`` or ``t.*`` projection of a model with masked
    columns would pass them through raw, so a caller's read must name its columns."""
    if not access.masks:
        return
    for select in tree.find_all(exp.Select):
        masked: dict[str, str] = {}
        sources = [select.args.get("from_"), *(select.args.get("joins") or ())]
        for source in sources:
            table = source.this if source is not None else None
            if not isinstance(table, exp.Table):
                continue
            for _, model in access.models_on(table):
                if access.masked_columns(model):
                    masked[table.alias_or_name] = model.name
        if not masked:
            continue
        for projection in select.expressions:
            star_of = None
            if isinstance(projection, exp.Star):
                star_of = next(iter(masked.values()))
            elif isinstance(projection, exp.Column) and isinstance(projection.this, exp.Star):
                star_of = masked.get(projection.table)
            if star_of is not None:
                raise QueryError(
                    MSG_STAR_OVER_PII.format(model=star_of, principal=access.principal.name),
                    code="masked_column",
                    location="select",
                    hint="name the columns to read; PII columns are then masked",
                )


@dataclass(frozen=True)
class SecuredSelect:
    """A query secured for a principal, and the session variables it reads."""

    tree: exp.Expr
    parameters: tuple[str, ...]


def secure_select(
    tree: exp.Expr,
    manifest: Manifest,
    principal: Principal | None,
    *,
    dialect: str,
    mask_default: str = "hash",
) -> SecuredSelect:
    """Applies a principal's PII masks and row policies to any query that reads semantic
    models' tables (under their ``schema.table`` relation, columns qualified by the table's
    alias), e.g. the trace drill-down's row reads. ``tree`` is copied, never changed.

    Args:
        tree: The query, as the compiler or a caller built it (not yet rendered).
        manifest: The release it reads.
        principal: Who reads the rows; None returns the tree as it is (trusted caller).
        dialect: The dialect it will be rendered for (the salt's syntax depends on it).
        mask_default: The mask of PII columns whose contract does not choose one.

    Returns:
        The secured tree and the session variables execution must set (see
        ``CompiledQuery.parameters``).

    Raises:
        QueryError: a malformed row policy or principal attribute.

    Example:
        >>> import sqlglot
        >>> from semantic.compiler.manifest import build_manifest
        >>> model = {"name": "people", "node_relation": {"alias": "people", "schema_name":
        ...     "main"}, "entities": [{"name": "person", "type": "primary", "expr": "id"}],
        ...     "dimensions": [{"name": "org", "type": "categorical"}], "config": {"meta":
        ...     {"tally": {"row_policies": [{"entity": "person", "filter":
        ...     "{{ Dimension('person__org') }} = {{ principal.org }}"}]}}}}
        >>> manifest = build_manifest([("semantic_model", "people", model, "1.0")])
        >>> select = sqlglot.parse_one("SELECT p.id FROM main.people AS p")
        >>> secured = secure_select(select, manifest, Principal("u", {"org": "acme"}),
        ...     dialect="duckdb")
        >>> secured.tree.sql()
        "SELECT p.id FROM (SELECT people.* FROM main.people AS people WHERE people.org = 'acme' OFFSET 0) AS p"
    """
    if principal is None:
        return SecuredSelect(tree, ())
    access = Access(manifest, principal, dialect, mask_default)
    _refuse_star_over_pii(tree, access)
    secured = secure_tables(mask_columns(tree.copy(), access), access)
    return SecuredSelect(secured, access.parameters)
