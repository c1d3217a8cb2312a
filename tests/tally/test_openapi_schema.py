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
