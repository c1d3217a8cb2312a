"""The extended query protocol of the SQL API: Parse, Bind, Describe, Execute, Close, with
prepared statements and portals (a portal's result is buffered so Describe can come first)."""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from sqlglot import exp

from semantic.sqlapi import wire
from semantic.sqlapi.bi_shapes import map_bi_select
from semantic.sqlapi.control import TRANSACTION_KEYWORD, control_kind
from semantic.sqlapi.services import sql_catalog_get
from semantic.sqlapi.session import (
    PROTOCOL_VIOLATION,
    Fatal,
    Portal,
    Prepared,
    Result,
    SqlError,
    row_encoders,
)
from semantic.sqlapi.statements import StatementRunner
from semantic.sqlapi.translate import (
    FEATURE_NOT_SUPPORTED,
    SYNTAX_ERROR,
    SqlApiError,
    bind_parameters,
    reads_metrics_table,
)

# The server module's logger: log filters and tests name it.
log = logging.getLogger("semantic.sqlapi.server")


class ExtendedProtocol(StatementRunner):
    """Handles extended-protocol messages (mixed into semantic.sqlapi.connection.Connection)."""

    prepared: dict[str, Prepared]
    portals: dict[str, Portal]

    def send(self, data: bytes) -> None:
        raise NotImplementedError

    def _extended(self, kind: bytes, payload: bytes) -> None:
        reader = wire.Reader(payload)
        if kind == b"P":
            name, sql = reader.cstr(), reader.cstr()
            oids = [reader.int32() & 0xFFFFFFFF for _ in range(reader.int16())]
            trees = self._parse(sql)
            if len(trees) > 1:
                raise SqlError(
                    SYNTAX_ERROR, "cannot insert multiple commands into a prepared statement"
                )
            self.prepared[name] = Prepared(sql, trees, parameter_types(trees, oids))
            self.send(wire.PARSE_COMPLETE)
        elif kind == b"B":
            portal_name, name = reader.cstr(), reader.cstr()
            prepared = self._statement(name)
            formats = [reader.int16() for _ in range(reader.int16())]
            count = reader.int16()
            values: list[Any] = []
            for index in range(count):
                size = reader.int32()
                raw = None if size < 0 else reader.raw(size)
                fmt = formats[index] if len(formats) > 1 else (formats[0] if formats else 0)
                oid = prepared.param_oids[index] if index < len(prepared.param_oids) else 0
                try:
                    values.append(wire.decode_parameter(raw, oid, fmt))
                except (wire.ProtocolError, ValueError) as exc:
                    raise SqlError("22P02", f"invalid parameter ${index + 1}: {exc}") from None
            result_formats = tuple(reader.int16() for _ in range(reader.int16()))
            if any(code not in (0, 1) for code in result_formats):
                raise SqlError(PROTOCOL_VIOLATION, "unsupported result format code")
            self.portals[portal_name] = Portal(prepared, values, formats=result_formats)
            self.send(wire.BIND_COMPLETE)
        elif kind == b"D":
            target, name = reader.raw(1), reader.cstr()
            if target == b"S":
                prepared = self._statement(name)
                count = parameter_count(prepared)
                oids = [
                    prepared.param_oids[i]
                    if i < len(prepared.param_oids) and prepared.param_oids[i]
                    else 25
                    for i in range(count)
                ]
                self.send(wire.parameter_description(oids))
                fields = self._describe(prepared, count)
            elif name not in self.portals and name in self.cursors:
                # A DECLAREd cursor is a portal too: psycopg describes it by name.
                fields = self.cursors[name].fields
            else:
                portal = self._portal(name)
                fields = self._run_portal(portal).fields
                if fields is not None:
                    # The portal's columns carry the format codes it was bound with.
                    formats = _codes(portal.formats, len(fields))
                    self.send(wire.row_description(fields, formats))
                    return
            self.send(wire.row_description(fields) if fields is not None else wire.NO_DATA)
        elif kind == b"E":
            portal = self._portal(reader.cstr())
            max_rows = reader.int32()
            if not portal.prepared.trees:
                self.send(wire.EMPTY_QUERY)
                return
            result = self._run_portal(portal)
            if result.notice is not None:
                self.send(wire.notice(*result.notice))
            if result.fields is None:
                self.send(wire.command_complete(result.tag))
                return
            # The extended flow buffers the (row-capped) result so Describe can come first;
            # Execute with a row limit resumes where the last one stopped.
            rows = result.buffered
            encoders = row_encoders(result.fields, portal.formats)
            end = len(rows) if max_rows <= 0 else min(len(rows), portal.sent + max_rows)
            for row in rows[portal.sent : end]:
                self.send(wire.data_row([enc(v) for enc, v in zip(encoders, row, strict=True)]))
            portal.sent = end
            if end < len(rows):
                self.send(wire.message(b"s"))  # PortalSuspended
            else:
                self.send(wire.command_complete(f"{result.tag} {len(rows)}"))
        elif kind == b"C":
            target, name = reader.raw(1), reader.cstr()
            (self.prepared if target == b"S" else self.portals).pop(name, None)
            if target == b"P":
                self.cursors.pop(name, None)
            self.send(wire.CLOSE_COMPLETE)
        elif kind in (b"d", b"c", b"f"):
            raise SqlError(FEATURE_NOT_SUPPORTED, "COPY is not supported")
        else:
            raise Fatal(PROTOCOL_VIOLATION, f"invalid frontend message type {kind!r}")

    def _statement(self, name: str) -> Prepared:
        if name not in self.prepared:
            raise SqlError("26000", f'prepared statement "{name}" does not exist')
        return self.prepared[name]

    def _portal(self, name: str) -> Portal:
        if name not in self.portals:
            raise SqlError("34000", f'portal "{name}" does not exist')
        return self.portals[name]

    def _describe(self, prepared: Prepared, count: int) -> list[wire.Field] | None:
        """Row description of a statement before its parameters are known: a metric
        SELECT is mapped only (its columns' types are the catalog's), never run."""
        if not prepared.trees:
            return None
        tree = prepared.trees[0]
        if control_kind(tree) == TRANSACTION_KEYWORD:
            # No rows, and describing a statement must not run it (BEGIN twice would warn).
            return None
        if isinstance(tree, exp.Query) and reads_metrics_table(tree):
            try:
                bound = bind_parameters(tree, [None] * count)
                mapped = map_bi_select(
                    bound, sql_catalog_get().table, dialect=settings.WAREHOUSE.dialect
                )
            except SqlApiError as exc:
                raise SqlError(exc.sqlstate, exc.message, exc.hint) from None
            return [wire.Field(shown, wire.OIDS[c.pg_type]) for shown, _n, c in mapped.outputs]
        return self._run_portal(Portal(prepared, [None] * count)).fields

    def _run_portal(self, portal: Portal) -> Result:
        if portal.result is None:
            trees = portal.prepared.trees
            if not trees:
                portal.result = Result(tag="")
            else:
                result = self._execute(trees[0], portal.params, portal.prepared.memo)
                if result.rows is not None:
                    result.buffered = list(result.rows)
                    result.rows = None
                portal.result = result
        return portal.result


# sqlglot type → the OID a parameter cast to it is described with.
_CAST_OIDS = {
    exp.DataType.Type.SMALLINT: "int2",
    exp.DataType.Type.INT: "int4",
    exp.DataType.Type.BIGINT: "int8",
    exp.DataType.Type.FLOAT: "float4",
    exp.DataType.Type.DOUBLE: "float8",
    exp.DataType.Type.DECIMAL: "numeric",
    exp.DataType.Type.BOOLEAN: "bool",
    exp.DataType.Type.DATE: "date",
    exp.DataType.Type.TIMESTAMP: "timestamp",
    exp.DataType.Type.TIMESTAMPTZ: "timestamptz",
    exp.DataType.Type.TEXT: "text",
    exp.DataType.Type.VARCHAR: "varchar",
}
_COMPARISONS = (exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE, exp.Like, exp.ILike)


def parameter_types(trees: list[exp.Expr], declared: list[int]) -> list[int]:
    """The type of each ``$n`` as PostgreSQL would infer it, where the client left it open
    (OID 0): a cast's type (``$1::INTEGER``), bigint under LIMIT/OFFSET, a compared
    ``tally.metrics`` column's type, else text. Drivers that send binary parameters
    (asyncpg, pgjdbc) encode by these types, so ``LIMIT $1`` must take an integer.

    Example:
        >>> import sqlglot
        >>> trees = [sqlglot.parse_one("SELECT 1 LIMIT $1 OFFSET $2::int", read="postgres")]
        >>> parameter_types(trees, [])
        [20, 23]
    """
    found: dict[int, int] = {}
    columns: dict[str, str] | None = None
    for tree in trees:
        for node in tree.find_all(exp.Parameter):
            if not (isinstance(node.this, exp.Literal) and str(node.this.this).isdigit()):
                continue
            index = int(node.this.this) - 1
            parent = node.parent
            oid = 0
            if isinstance(parent, exp.Cast) and isinstance(parent.to, exp.DataType):
                oid = wire.OIDS.get(_CAST_OIDS.get(parent.to.this, "text"), 25)
                parent = parent.parent
            if not oid and isinstance(parent, exp.Limit | exp.Offset | exp.Fetch):
                oid = wire.OIDS["int8"]
            if not oid and isinstance(parent, _COMPARISONS):
                other = parent.expression if parent.this is node else parent.this
                if isinstance(other, exp.Column):
                    if columns is None:
                        columns = {
                            c.name.lower(): c.pg_type for c in sql_catalog_get().table.columns
                        }
                    pg_type = columns.get(other.name.lower())
                    oid = wire.OIDS[pg_type] if pg_type else 0
            if oid:
                found.setdefault(index, oid)
    count = max([len(declared), *(i + 1 for i in found)])
    return [
        declared[i] if i < len(declared) and declared[i] else found.get(i, 0) for i in range(count)
    ]


def parameter_count(prepared: Prepared) -> int:
    count = len(prepared.param_oids)
    for tree in prepared.trees:
        for node in tree.find_all(exp.Parameter):
            if isinstance(node.this, exp.Literal) and str(node.this.this).isdigit():
                count = max(count, int(node.this.this))
    return count


def _codes(formats: tuple[int, ...], count: int) -> list[int]:
    """Bind's result format codes spread over ``count`` columns (see row_encoders)."""
    if len(formats) > 1:
        return list(formats)
    return [formats[0] if formats else 0] * count
