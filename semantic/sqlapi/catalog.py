"""pg_catalog and information_schema for SQL clients, answered by an in-memory DuckDB.

DuckDB ships PostgreSQL-shaped catalog views (pg_namespace, pg_class, pg_attribute,
pg_type, pg_description, pg_index…, information_schema.tables/columns) over its own
catalog. So the catalog is a DuckDB database holding one empty table, ``tally.metrics``,
with the release's columns, types and comments (metric descriptions); a client's catalog
query is parsed as PostgreSQL by sqlglot, the functions DuckDB lacks or answers for itself
(``version()``, ``current_schema()``, ``col_description``, ``pg_get_expr``…) are replaced
by Tally's answers, and the tree is run as DuckDB SQL there.

The database holds nothing but that empty table, and external access (files, network,
extensions) is switched off and locked before any client query runs, so a client can
read the catalog and compute constants, and nothing else. Queries without a FROM
(``SELECT 1``, ``SELECT version()``) go here too.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from contextlib import suppress
from dataclasses import dataclass
from typing import Any

import duckdb
from sqlglot import exp

from semantic.sqlapi import wire
from semantic.sqlapi.table import SCHEMA, TABLE, SqlTable

SERVER_VERSION = "15.0"
VERSION_TEXT = f"PostgreSQL {SERVER_VERSION} (Tally SQL API) on x86_64-pc-linux-gnu"

_DUCK_TYPES = {
    "varchar": "VARCHAR",
    "date": "DATE",
    "numeric": "DECIMAL(38, 10)",
    "int8": "BIGINT",
    "bool": "BOOLEAN",
}

# DuckDB result types → PostgreSQL OIDs for RowDescription.
_RESULT_OIDS = {
    "BOOLEAN": "bool",
    "TINYINT": "int2",
    "SMALLINT": "int2",
    "INTEGER": "int4",
    "BIGINT": "int8",
    "UTINYINT": "int2",
    "USMALLINT": "int4",
    "UINTEGER": "int8",
    "UBIGINT": "numeric",
    "HUGEINT": "numeric",
    "FLOAT": "float4",
    "DOUBLE": "float8",
    "DATE": "date",
    "TIMESTAMP": "timestamp",
    "TIMESTAMP WITH TIME ZONE": "timestamptz",
    "INTERVAL": "interval",
    "VARCHAR": "text",
    "UUID": "uuid",
    "BLOB": "bytea",
}


def result_oid(duck_type: str) -> int:
    """The PostgreSQL type OID clients see for a DuckDB result column.

    Example:
        >>> result_oid("BIGINT"), result_oid("DECIMAL(18,3)"), result_oid("VARCHAR[]")
        (20, 1700, 25)
    """
    if duck_type.startswith("DECIMAL"):
        return wire.OIDS["numeric"]
    return wire.OIDS[_RESULT_OIDS.get(duck_type, "text")]


@dataclass(frozen=True)
class SessionInfo:
    """What catalog functions report for one connection."""

    user: str
    database: str
    pid: int


class Catalog:
    """The in-memory DuckDB catalog of one release's ``tally.metrics``."""

    def __init__(self, table: SqlTable, *, memory_limit: str = "256MB") -> None:
        self.table = table
        # Bounded: one thread, ``memory_limit`` with nothing spilled to disk (no temporary
        # directory), and (below) no external access and a locked configuration; each
        # query runs under a timeout (``run``).
        self._db = duckdb.connect(
            ":memory:",
            config={"threads": 1, "memory_limit": memory_limit, "temp_directory": ""},
        )
        self._lock = threading.Lock()
        self._db.execute(exp.Create(this=exp.to_identifier(SCHEMA), kind="SCHEMA").sql("duckdb"))
        columns = [
            exp.ColumnDef(
                this=exp.to_identifier(c.name, quoted=True),
                kind=exp.DataType.build(_DUCK_TYPES[c.pg_type], dialect="duckdb"),
            )
            for c in table.columns
        ]
        create = exp.Create(
            this=exp.Schema(this=exp.table_(TABLE, db=SCHEMA), expressions=columns),
            kind="TABLE",
        )
        self._db.execute(create.sql("duckdb"))
        for column in table.columns:
            comment = exp.Comment(
                this=exp.column(column.name, table=TABLE, db=SCHEMA, quoted=True),
                kind="COLUMN",
                expression=exp.Literal.string(column.description),
            )
            self._db.execute(comment.sql("duckdb"))
        table_comment = exp.Comment(
            this=exp.table_(TABLE, db=SCHEMA),
            kind="TABLE",
            expression=exp.Literal.string(f"Tally metrics of release {table.release}"),
        )
        self._db.execute(table_comment.sql("duckdb"))
        for macro in _MACROS:
            self._db.execute(macro)
        # Catalog tables DuckDB lacks, empty, with PostgreSQL's column names: psql's \\d and
        # SQLAlchemy's reflection join them (no inheritance, policies, triggers… here).
        # Table macros, not tables, so they do not show up in pg_class themselves.
        for name, columns_sql in _MISSING_TABLES.items():
            casts = ", ".join(
                f"CAST(NULL AS {kind}) AS {column}"
                for column, kind in (part.split(" ", 1) for part in columns_sql.split(", "))
            )
            self._db.execute(f"CREATE MACRO tally_{name}() AS TABLE SELECT {casts} WHERE false")
        for name, body in _REPLACED_TABLES.items():
            self._db.execute(f"CREATE MACRO tally_{name}() AS TABLE {body}")
        for name, extra in _EXTENDED_TABLES.items():
            self._db.execute(
                f"CREATE MACRO tally_{name}() AS TABLE SELECT *, {extra} FROM pg_catalog.{name}"
            )
        # Division by zero raises, as in PostgreSQL (DuckDB's default answers inf or NULL:
        # a number shown where the client expects an error).
        self._db.execute("SET GLOBAL ieee_floating_point_ops = false")
        # From here on a client query can read the catalog and nothing outside it.
        self._db.execute("SET enable_external_access = false")
        self._db.execute("SET lock_configuration = true")

    def run(
        self,
        tree: exp.Expr,
        session: SessionInfo,
        settings: Mapping[str, str],
        *,
        timeout_s: float,
        on_start: Callable[[Callable[[], None]], None],
        row_cap: int,
    ) -> tuple[list[tuple[str, int]], list[tuple[Any, ...]]]:
        """Runs a catalog query; returns (name, type OID) per column and the rows.

        ``on_start`` receives the interrupt function (for a CancelRequest); the query is
        interrupted after ``timeout_s`` as well.
        """
        sql = rewrite(pg_column_names(tree), session, settings).sql("duckdb")
        with self._lock:
            cursor = self._db.cursor()
        timer = threading.Timer(timeout_s, cursor.interrupt)
        timer.daemon = True
        on_start(cursor.interrupt)
        timer.start()
        try:
            cursor.execute(sql)
            description = cursor.description or []
            rows = cursor.fetchmany(row_cap + 1)
        finally:
            timer.cancel()
            on_start(lambda: None)
            with suppress(Exception):
                cursor.close()
        fields = [(str(d[0]), result_oid(str(d[1]))) for d in description]
        return fields, rows


_MACROS = (
    # psql and SQLAlchemy read comments through these; DuckDB's own return NULL.
    "CREATE MACRO tally_col_description(o, n) AS "
    "(SELECT max(description) FROM pg_catalog.pg_description d "
    "WHERE d.objoid = o AND d.objsubid = n)",
    # PostgreSQL spells these types out (SQLAlchemy's reflection only knows those names).
    "CREATE MACRO tally_format_type(t, m) AS CASE format_type(t, m) "
    "WHEN 'int8' THEN 'bigint' WHEN 'int4' THEN 'integer' WHEN 'int2' THEN 'smallint' "
    "WHEN 'float8' THEN 'double precision' WHEN 'float4' THEN 'real' WHEN 'bool' THEN 'boolean' "
    "WHEN 'varchar' THEN 'character varying' "
    "WHEN 'timestamp' THEN 'timestamp without time zone' ELSE format_type(t, m) END",
    "CREATE MACRO tally_to_regtype(n) AS "
    "(SELECT min(oid) FROM pg_catalog.pg_type t WHERE t.typname = n)",
    "CREATE MACRO tally_to_regclass(n) AS "
    "(SELECT min(oid) FROM pg_catalog.pg_class c WHERE c.relname = split_part(n, '.', -1))",
    # pgjdbc's getPrimaryKeys/getIndexInfo read index keys through this set-returning
    # function; tally.metrics has no index, so it only has to exist and type-check (one
    # element per array stands in for the set).
    "CREATE MACRO tally__pg_expandarray(a) AS {'x': CAST(a AS VARCHAR), 'n': 1}",
    "CREATE MACRO tally_obj_description(o) AS "
    "(SELECT max(description) FROM pg_catalog.pg_description d "
    "WHERE d.objoid = o AND d.objsubid = 0)",
)


_MISSING_TABLES = {
    "pg_inherits": "inhrelid BIGINT, inhparent BIGINT, inhseqno INTEGER, inhdetachpending BOOLEAN",
    "pg_policy": "oid BIGINT, polname VARCHAR, polrelid BIGINT, polcmd VARCHAR, "
    "polpermissive BOOLEAN, polroles BIGINT[], polqual VARCHAR, polwithcheck VARCHAR",
    "pg_publication": "oid BIGINT, pubname VARCHAR, pubowner BIGINT, puballtables BOOLEAN, "
    "pubinsert BOOLEAN, pubupdate BOOLEAN, pubdelete BOOLEAN, pubtruncate BOOLEAN, "
    "pubviaroot BOOLEAN",
    "pg_publication_rel": "oid BIGINT, prpubid BIGINT, prrelid BIGINT, prqual VARCHAR, "
    "prattrs VARCHAR",
    "pg_publication_namespace": "oid BIGINT, pnpubid BIGINT, pnnspid BIGINT",
    "pg_statistic_ext": "oid BIGINT, stxrelid BIGINT, stxname VARCHAR, stxnamespace BIGINT, "
    "stxowner BIGINT, stxstattarget INTEGER, stxkeys VARCHAR, stxkind VARCHAR[], stxexprs VARCHAR",
    "pg_trigger": "oid BIGINT, tgrelid BIGINT, tgparentid BIGINT, tgname VARCHAR, "
    "tgfoid BIGINT, tgtype INTEGER, tgenabled VARCHAR, tgisinternal BOOLEAN, "
    "tgconstrrelid BIGINT, tgconstrindid BIGINT, tgconstraint BIGINT, tgdeferrable BOOLEAN, "
    "tginitdeferred BOOLEAN, tgnargs INTEGER, tgattr VARCHAR, tgargs VARCHAR, tgqual VARCHAR, "
    "tgoldtable VARCHAR, tgnewtable VARCHAR",
    "pg_rewrite": "oid BIGINT, rulename VARCHAR, ev_class BIGINT, ev_type VARCHAR, "
    "ev_enabled VARCHAR, is_instead BOOLEAN, ev_qual VARCHAR, ev_action VARCHAR",
    "pg_foreign_table": "ftrelid BIGINT, ftserver BIGINT, ftoptions VARCHAR[]",
    "pg_partitioned_table": "partrelid BIGINT, partstrat VARCHAR, partnatts INTEGER, "
    "partdefid BIGINT, partattrs VARCHAR, partclass VARCHAR, partcollation VARCHAR, "
    "partexprs VARCHAR",
    "pg_roles": "oid BIGINT, rolname VARCHAR, rolsuper BOOLEAN, rolinherit BOOLEAN, "
    "rolcreaterole BOOLEAN, rolcreatedb BOOLEAN, rolcanlogin BOOLEAN, rolreplication BOOLEAN, "
    "rolconnlimit INTEGER, rolpassword VARCHAR, rolvaliduntil TIMESTAMP, rolbypassrls BOOLEAN, "
    "rolconfig VARCHAR[]",
    "pg_user": "usename VARCHAR, usesysid BIGINT, usecreatedb BOOLEAN, usesuper BOOLEAN, "
    "userepl BOOLEAN, usebypassrls BOOLEAN, passwd VARCHAR, valuntil TIMESTAMP, "
    "useconfig VARCHAR[]",
    "pg_range": "rngtypid BIGINT, rngsubtype BIGINT, rngmultitypid BIGINT, rngcollation BIGINT, "
    "rngsubopc BIGINT, rngcanonical VARCHAR, rngsubdiff VARCHAR",
    "pg_extension": "oid BIGINT, extname VARCHAR, extowner BIGINT, extnamespace BIGINT, "
    "extrelocatable BOOLEAN, extversion VARCHAR, extconfig BIGINT[], extcondition VARCHAR[]",
    "pg_matviews": "schemaname VARCHAR, matviewname VARCHAR, matviewowner VARCHAR, "
    "tablespace VARCHAR, hasindexes BOOLEAN, ispopulated BOOLEAN, definition VARCHAR",
    "pg_opclass": "oid BIGINT, opcmethod BIGINT, opcname VARCHAR, opcnamespace BIGINT, "
    "opcowner BIGINT, opcfamily BIGINT, opcintype BIGINT, opcdefault BOOLEAN, opckeytype BIGINT",
    "pg_stat_activity": "datid BIGINT, datname VARCHAR, pid INTEGER, usename VARCHAR, "
    "application_name VARCHAR, state VARCHAR, query VARCHAR",
}

# Columns of PostgreSQL 15's catalogs that DuckDB's pg_catalog views lack: the views are
# wrapped in table macros that add them (false, or NULL of the type).
_EXTENDED_TABLES = {
    "pg_class": "false AS relforcerowsecurity",
    "pg_index": "false AS indnullsnotdistinct",
    "pg_constraint": "CAST(NULL AS SMALLINT[]) AS confdelsetcols",
    "pg_tables": "false AS rowsecurity",
    "pg_collation": "CAST(NULL AS BIGINT) AS collnamespace, CAST(NULL AS BIGINT) AS collowner, "
    "'c' AS collprovider, true AS collisdeterministic, -1 AS collencoding, "
    "'C' AS collcollate, 'C' AS collctype, CAST(NULL AS VARCHAR) AS colliculocale, "
    "CAST(NULL AS VARCHAR) AS collversion",
}

# Catalogs whose DuckDB rows describe DuckDB, replaced by what a PostgreSQL client expects:
# one database, ``tally`` (psql's \l, DBeaver's database list), and the server settings
# drivers read (pgjdbc's getImportedKeys needs max_index_keys).
_REPLACED_TABLES = {
    "pg_database": "SELECT * REPLACE ('tally' AS datname), CAST(10 AS BIGINT) AS datdba, "
    "6 AS encoding, 'c' AS datlocprovider, -1 AS datconnlimit, "
    "CAST(NULL AS BIGINT) AS datfrozenxid, CAST(NULL AS BIGINT) AS datminmxid, "
    "CAST(1663 AS BIGINT) AS dattablespace, 'C' AS datcollate, 'C' AS datctype, "
    "CAST(NULL AS VARCHAR) AS daticulocale, CAST(NULL AS VARCHAR) AS datcollversion, "
    "CAST(NULL AS VARCHAR[]) AS datacl FROM pg_catalog.pg_database WHERE datname = 'memory'",
    # DuckDB leaves typrelid NULL (PostgreSQL: 0 for a non-composite type), and lists
    # types without an oid: pgjdbc's getTypeInfo reads `typrelid = 0`.
    "pg_type": "SELECT * REPLACE (COALESCE(typrelid, 0) AS typrelid) FROM pg_catalog.pg_type "
    "WHERE oid IS NOT NULL",
    "pg_settings": "SELECT name, setting, CAST(NULL AS VARCHAR) AS unit, "
    "'Preset Options' AS category, '' AS short_desc, CAST(NULL AS VARCHAR) AS extra_desc, "
    "'internal' AS context, vartype, 'default' AS source, CAST(NULL AS VARCHAR) AS min_val, "
    "CAST(NULL AS VARCHAR) AS max_val, CAST(NULL AS VARCHAR[]) AS enumvals, "
    "setting AS boot_val, setting AS reset_val, false AS pending_restart FROM (VALUES "
    "('max_index_keys', '32', 'integer'), ('max_identifier_length', '63', 'integer'), "
    "('max_function_args', '100', 'integer'), ('block_size', '8192', 'integer'), "
    "('server_version_num', '150000', 'integer'), ('server_encoding', 'UTF8', 'string'), "
    "('default_transaction_read_only', 'on', 'bool'), "
    "('standard_conforming_strings', 'on', 'bool')) AS s(name, setting, vartype)",
}

# PostgreSQL regex operators (psql writes them as OPERATOR(pg_catalog.~)).
_REGEX_OPERATORS = {
    "~": (False, False),
    "!~": (True, False),
    "~*": (False, True),
    "!~*": (True, True),
}


def _regex(left: exp.Expr, right: exp.Expr, *, negate: bool, icase: bool) -> exp.Expr:
    args = [left, right] + ([exp.Literal.string("i")] if icase else [])
    match: exp.Expr = exp.Anonymous(this="regexp_matches", expressions=args)
    return exp.Not(this=match) if negate else match


def pg_column_names(tree: exp.Expr) -> exp.Expr:
    """Gives unaliased output columns the names PostgreSQL gives them (``version`` for
    ``version()``, ``?column?`` for an expression), which DuckDB would spell differently."""
    if not isinstance(tree, exp.Select):
        return tree
    named: list[exp.Expr] = []
    for item in tree.expressions:
        if isinstance(item, exp.Alias | exp.Column | exp.Star) or (
            isinstance(item, exp.Dot) and isinstance(item.expression, exp.Star)
        ):
            named.append(item)
            continue
        inner = item.this if isinstance(item, exp.Cast) else item
        if isinstance(inner, exp.Dot):
            inner = inner.expression
        if isinstance(inner, exp.Column):
            name = inner.name
        elif isinstance(inner, exp.Anonymous):
            name = str(inner.this).lower()
        elif isinstance(inner, exp.CurrentVersion):
            name = "version"
        elif isinstance(inner, exp.Func):
            name = inner.sql_name().lower()
        else:
            name = "?column?"
        named.append(exp.alias_(item, name, quoted=True))
    tree = tree.copy()
    tree.set("expressions", named)
    return tree


def _const(value: Any) -> exp.Expr:
    if value is None:
        return exp.null()
    if isinstance(value, bool):
        return exp.true() if value else exp.false()
    if isinstance(value, int):
        return exp.Literal.number(value)
    return exp.Literal.string(str(value))


def rewrite(tree: exp.Expr, session: SessionInfo, settings: Mapping[str, str]) -> exp.Expr:
    """Replaces session and catalog functions with Tally's answers (constants or macros).

    Example:
        >>> import sqlglot
        >>> info = SessionInfo(user="ana", database="tally", pid=7)
        >>> rewrite(sqlglot.parse_one("SELECT version(), current_user", read="postgres"),
        ...         info, {}).sql("duckdb")
        "SELECT 'PostgreSQL 15.0 (Tally SQL API) on x86_64-pc-linux-gnu', 'ana'"
    """
    constants: dict[str, Any] = {
        "version": VERSION_TEXT,
        "current_schema": SCHEMA,
        "current_database": session.database,
        "current_catalog": session.database,
        "current_user": session.user,
        "session_user": session.user,
        "user": session.user,
        "current_role": session.user,
        "pg_backend_pid": session.pid,
        "inet_server_port": None,
        "pg_is_in_recovery": False,
        "pg_postmaster_start_time": None,
    }
    always_true = {
        "pg_table_is_visible",
        "pg_type_is_visible",
        "pg_function_is_visible",
        "has_table_privilege",
        "has_schema_privilege",
        "has_database_privilege",
        "has_column_privilege",
        "has_any_column_privilege",
    }
    null_functions = {
        "pg_get_expr",
        "pg_get_function_result",
        "pg_get_function_arguments",
        "pg_get_function_identity_arguments",
        "pg_get_serial_sequence",
        "json_build_object",
        "pg_get_constraintdef",
        "pg_get_indexdef",
        "pg_get_viewdef",
        "pg_get_triggerdef",
        "pg_get_partkeydef",
        "pg_get_statisticsobjdef_columns",
        "pg_tablespace_location",
        "pg_get_userbyid",
        "pg_encoding_to_char",
        "array_to_string",
        "pg_relation_size",
        "pg_total_relation_size",
        "pg_size_pretty",
    }

    def replace(node: exp.Expr) -> exp.Expr:
        if (
            isinstance(node, exp.Dot)
            and isinstance(node.this, exp.Identifier)
            and node.this.name.lower() in ("pg_catalog", "information_schema")
            and isinstance(node.expression, exp.Func)
        ):
            # pg_catalog.f(…), information_schema._pg_expandarray(…): the function (already
            # rewritten below, children first).
            return node.expression
        if (
            isinstance(node, exp.Dot)
            and isinstance(node.this, exp.Identifier)
            and node.this.name.lower() == "pg_catalog"
        ):
            return node.expression
        if (
            isinstance(node, exp.Table)
            and node.db.lower() == "pg_catalog"
            and not isinstance(node.this, exp.Identifier)
        ):
            node.set("db", None)  # pg_catalog.generate_series(…) AS s
        if (
            isinstance(node, exp.Table)
            and node.db.lower() in ("pg_catalog", "")
            and (
                node.name.lower() in _MISSING_TABLES
                or node.name.lower() in _EXTENDED_TABLES
                or node.name.lower() in _REPLACED_TABLES
            )
        ):
            function = exp.Anonymous(this=f"tally_{node.name.lower()}", expressions=[])
            # Keep the catalog's name as the alias: SQLAlchemy writes pg_class.relname.
            alias = node.args.get("alias") or exp.TableAlias(this=exp.to_identifier(node.name))
            return exp.Table(this=function, alias=alias)
        if isinstance(node, exp.Column) and node.args.get("db") is not None:
            node.set("db", None)  # pg_catalog.pg_class.relname → pg_class.relname
        if isinstance(node, exp.Operator):
            operator = str(node.args.get("operator", "")).split(".")[-1]
            if operator in _REGEX_OPERATORS:
                negate, icase = _REGEX_OPERATORS[operator]
                return _regex(node.this, node.expression, negate=negate, icase=icase)
        if isinstance(node, exp.RegexpLike | exp.RegexpILike):
            return _regex(
                node.this, node.expression, negate=False, icase=isinstance(node, exp.RegexpILike)
            )
        if isinstance(node, exp.Collate):
            return node.this
        if isinstance(node, exp.CurrentVersion):
            return _const(VERSION_TEXT)
        if isinstance(node, exp.Cast):
            return _cast(node)
        if isinstance(node, exp.Func):
            name = (
                str(node.this).lower()
                if isinstance(node, exp.Anonymous)
                else node.sql_name().lower()
            )
            if isinstance(node, exp.CurrentUser):
                return _const(session.user)
            if isinstance(node, exp.CurrentSchema):
                return _const(SCHEMA)
            if name in constants:
                return _const(constants[name])
            if name == "current_setting":
                arg = node.expressions[0] if node.expressions else node.this
                key = arg.name.lower() if isinstance(arg, exp.Literal) else ""
                return _const(settings.get(key, ""))
            if name == "array_upper":
                return exp.Anonymous(this="len", expressions=[node.expressions[0]])
            if name == "current_schemas":
                return exp.Array(expressions=[_const("pg_catalog"), _const(SCHEMA)])
            if name in always_true:
                return exp.true()
            if name in ("pg_relation_is_publishable", "pg_is_other_temp_schema"):
                return exp.false()
            if name in null_functions:
                return exp.null()
            if name in ("to_regtype", "to_regclass", "format_type", "_pg_expandarray"):
                return exp.Anonymous(this=f"tally_{name}", expressions=list(node.expressions))
            if name == "col_description":
                args = list(node.expressions)
                return exp.Anonymous(this="tally_col_description", expressions=args)
            if name == "obj_description":
                args = list(node.expressions)[:1]
                return exp.Anonymous(this="tally_obj_description", expressions=args)
        if (
            isinstance(node, exp.Column)
            and not node.table
            and node.name.lower()
            in (
                "current_user",
                "session_user",
                "current_catalog",
                "user",
            )
        ):
            return _const(constants[node.name.lower()])
        return node

    return _post_order(tree.copy(), replace)


def _post_order(node: exp.Expr, fn: Callable[[exp.Expr], exp.Expr]) -> exp.Expr:
    # Children first, so a replacement sees (and keeps) already rewritten children;
    # sqlglot's transform() does not descend into a node it has just replaced.
    for key, value in list(node.args.items()):
        if isinstance(value, exp.Expr):
            node.set(key, _post_order(value, fn))
        elif isinstance(value, list):
            node.set(key, [_post_order(v, fn) if isinstance(v, exp.Expr) else v for v in value])
    return fn(node)


_IDENTIFIER_TYPES = ("regclass", "oid", "regproc", "regtype", "regnamespace", "regrole", "regoper")


def _cast(node: exp.Cast) -> exp.Expr:
    """``'tally.metrics'::regclass`` → the table's oid; ``x::oid``/``::regtype`` → x as a
    number; ``x::pg_catalog.text`` → ``x::text``."""
    to = node.to
    if isinstance(to, exp.ObjectIdentifier):
        kind = str(to.this).lower()
    elif isinstance(to, exp.DataType) and isinstance(to.args.get("kind"), exp.Dot | exp.Identifier):
        # pg_catalog.regtype; the Dot may already be unwrapped to its identifier.
        kind_node = to.args["kind"]
        kind = (kind_node.expression if isinstance(kind_node, exp.Dot) else kind_node).name.lower()
    else:
        return node
    value = node.this
    if kind not in _IDENTIFIER_TYPES:
        try:
            return exp.cast(value, exp.DataType.build(kind, dialect="postgres"))
        except Exception:
            return exp.cast(value, exp.DataType.build("TEXT"))
    if kind == "regclass" and isinstance(value, exp.Literal) and value.is_string:
        name = value.name.split(".")[-1].strip('"')
        return exp.Subquery(
            this=exp.select("oid")
            .from_(exp.table_("pg_class", db="pg_catalog"))
            .where(exp.column("relname").eq(exp.Literal.string(name)))
            .limit(1)
        )
    if kind in _IDENTIFIER_TYPES:
        if isinstance(value, exp.Literal) and value.is_string and value.name.isdigit():
            return exp.Literal.number(value.name)
        return exp.cast(value, exp.DataType.build("BIGINT"))
    return node
