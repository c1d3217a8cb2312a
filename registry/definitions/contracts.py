"""Open Data Contract Standard v3 contracts: parsing, the tables/columns they promise, compatibility.

Parsing uses the ``open-data-contract-standard`` package twice: its JSON schema (for unknown
keys and wrong types, with paths that map to lines) and its pydantic model.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from registry.definitions.issues import IssueSet
from registry.definitions.objects import CONTRACT, DefinitionObject, custom_property, plain
from registry.definitions.schema_errors import odcs_validator, pydantic_error, report_schema_errors

# Numeric logical types from narrow to wide: integer → number is a compatible widening;
# any other change of logical type (integer → string…) breaks consumers.
_WIDTH = {"integer": 1, "number": 2}


@dataclass(frozen=True)
class ContractColumn:
    table: str
    name: str
    logical_type: str | None
    physical_type: str | None
    required: bool
    primary_key: bool
    unique: bool
    classification: str | None
    tags: tuple[str, ...]
    # The column's ``tallyMask`` custom property (hash|null), None when it sets none.
    mask: str | None = None

    @property
    def is_pii(self) -> bool:
        return (self.classification or "").lower() in {"pii", "sensitive", "restricted"} or (
            "pii" in {t.lower() for t in self.tags}
        )


def parse_contract(raw: Any, file: str, line: int, issues: IssueSet) -> DefinitionObject | None:
    """Checks one ODCS document; returns it as a definition named by its ``name`` (or ``id``)."""
    from open_data_contract_standard.model import OpenDataContractStandard

    label = str(raw.get("name") or raw.get("id") or "?")
    errors = list(odcs_validator().iter_errors(plain(raw)))
    if report_schema_errors(errors, raw, file, label, issues):
        return None
    try:
        parsed = OpenDataContractStandard.model_validate(plain(raw))
    except Exception as exc:  # pydantic ValidationError
        pydantic_error(exc, raw, file, label, issues)
        return None
    spec = parsed.model_dump(mode="json", exclude_none=True, by_alias=True)
    name = parsed.name or parsed.id
    return DefinitionObject(CONTRACT, str(name), spec, file, line, raw, parsed)


def contract_tables(spec: dict[str, Any]) -> dict[str, list[ContractColumn]]:
    """Table name → columns promised by a contract (physicalName wins over name)."""
    tables: dict[str, list[ContractColumn]] = {}
    for obj in spec.get("schema") or []:
        table = str(obj.get("physicalName") or obj.get("name") or "")
        if not table:
            continue
        tables[table] = [
            ContractColumn(
                table=table,
                name=str(p.get("physicalName") or p.get("name")),
                logical_type=p.get("logicalType"),
                physical_type=p.get("physicalType"),
                required=bool(p.get("required")),
                primary_key=bool(p.get("primaryKey")),
                unique=bool(p.get("unique")),
                classification=p.get("classification"),
                tags=tuple(p.get("tags") or ()),
                mask=_mask_of(p),
            )
            for p in obj.get("properties") or []
            if p.get("physicalName") or p.get("name")
        ]
    return tables


# Must match semantic.compiler.manifest.MASK_PROPERTY (the compiler reads the same property).
MASK_PROPERTY = "tallyMask"


def _mask_of(prop: dict[str, Any]) -> str | None:
    value = custom_property(prop.get("customProperties"), MASK_PROPERTY)
    return str(value).lower() if value is not None else None


def contract_declassifications(old: dict[str, Any], new: dict[str, Any] | None) -> list[str]:
    """Every PII column of ``old`` that ``new`` protects less: its classification (and tag)
    dropped, the column (or its table, or the whole contract: ``new`` None) gone from the
    contract (moving it elsewhere starts here), or its ``tallyMask`` weakened from ``null``.
    Classifying a column (adding PII) is never one.

    Example:
        >>> old = {"schema": [{"name": "u", "properties": [{"name": "e", "classification": "pii"}]}]}
        >>> contract_declassifications(old, {"schema": [{"name": "u", "properties": [{"name": "e"}]}]})
        ['u.e: classification pii → none']
    """
    after = contract_tables(new or {})
    out: list[str] = []
    for table, columns in sorted(contract_tables(old).items()):
        now = {c.name: c for c in after.get(table, [])}
        for column in sorted(columns, key=lambda c: c.name):
            if not column.is_pii:
                continue
            where = f"{table}.{column.name}"
            moved = now.get(column.name)
            if moved is None:
                out.append(f"{where}: PII column removed from the contract")
            elif not moved.is_pii:
                was = column.classification or "pii (tag)"
                out.append(f"{where}: classification {was} → {moved.classification or 'none'}")
            elif column.mask == "null" and moved.mask != "null":
                out.append(f"{where}: {MASK_PROPERTY} null → {moved.mask or 'default'}")
    return out


def contract_schema_name(spec: dict[str, Any]) -> str | None:
    """The warehouse schema a contract's tables live in, from its first server."""
    for server in spec.get("servers") or []:
        if server.get("schema"):
            return str(server["schema"])
    return None


@dataclass(frozen=True)
class ContractChange:
    table: str
    column: str | None
    change: str
    breaking: bool

    def describe(self) -> str:
        where = f"{self.table}.{self.column}" if self.column else self.table
        return f"{where}: {self.change}"


def contract_changes(old: dict[str, Any], new: dict[str, Any]) -> list[ContractChange]:
    """Classifies what changed between two versions of a contract, column by column.

    Breaking: a table or column removed (or renamed: a removal plus an addition), a type
    narrowed or changed family, a column made required, a key changed. Compatible: additions,
    widening, a column made optional, documentation.

    Example:
        >>> old = {"schema": [{"name": "t", "properties": [{"name": "a", "logicalType": "integer"}]}]}
        >>> new = {"schema": [{"name": "t", "properties": [{"name": "b", "logicalType": "integer"}]}]}
        >>> [c.describe() for c in contract_changes(old, new)]
        ['t.a: column removed', 't.b: column added']
    """
    return list(_contract_changes(contract_tables(old), contract_tables(new)))


def _contract_changes(
    before: dict[str, list[ContractColumn]], after: dict[str, list[ContractColumn]]
) -> Iterator[ContractChange]:
    for table in sorted(set(before) | set(after)):
        if table not in after:
            yield ContractChange(table, None, "table removed", True)
            continue
        if table not in before:
            yield ContractChange(table, None, "table added", False)
            continue
        old_cols = {c.name: c for c in before[table]}
        new_cols = {c.name: c for c in after[table]}
        for name in sorted(set(old_cols) | set(new_cols)):
            old, new = old_cols.get(name), new_cols.get(name)
            if new is None:
                yield ContractChange(table, name, "column removed", True)
            elif old is None:
                yield ContractChange(table, name, "column added", new.required)
            else:
                yield from _column_changes(table, old, new)


def _column_changes(
    table: str, old: ContractColumn, new: ContractColumn
) -> Iterator[ContractChange]:
    if old.logical_type != new.logical_type:
        widened = (
            old.logical_type in _WIDTH
            and new.logical_type in _WIDTH
            and _WIDTH[new.logical_type] > _WIDTH[old.logical_type]
        )
        yield ContractChange(
            table,
            old.name,
            f"type {old.logical_type} → {new.logical_type}" + (" (widened)" if widened else ""),
            not widened,
        )
    elif old.physical_type != new.physical_type:
        yield ContractChange(
            table, old.name, f"physical type {old.physical_type} → {new.physical_type}", True
        )
    if old.required != new.required:
        made_required = new.required and not old.required
        yield ContractChange(
            table,
            old.name,
            "nullable → required" if made_required else "required → nullable",
            made_required,
        )
    if old.primary_key != new.primary_key or old.unique != new.unique:
        yield ContractChange(table, old.name, "key changed", True)
    if old.classification != new.classification:
        yield ContractChange(
            table, old.name, f"classification {old.classification} → {new.classification}", False
        )
    if old.mask != new.mask:
        yield ContractChange(table, old.name, f"{MASK_PROPERTY} {old.mask} → {new.mask}", False)
