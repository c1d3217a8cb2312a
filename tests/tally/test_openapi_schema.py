"""The OpenAPI schema generates without a warning (a name clash or an untyped view is one)."""

from __future__ import annotations

import pytest
from django.core.management import call_command


def test_schema_validates_with_warnings_as_errors(tmp_path) -> None:
    out = tmp_path / "schema.yml"
    try:
        call_command("spectacular", validate=True, fail_on_warn=True, file=str(out))
    except Exception as error:  # SchemaGenerationError, with the warnings printed above it
        pytest.fail(f"drf-spectacular: {error}")
    assert out.read_text().startswith("openapi: 3")


def test_query_input_documents_having(tmp_path) -> None:
    """The compile/query request body lists having (strings) beside where."""
    import yaml

    out = tmp_path / "schema.yml"
    call_command("spectacular", file=str(out))
    schema = yaml.safe_load(out.read_text())
    fields = schema["components"]["schemas"]["MetricQueryInput"]["properties"]
    assert fields["having"]["type"] == "array" and fields["having"]["items"]["type"] == "string"
    assert "after aggregation" in fields["having"]["description"]
