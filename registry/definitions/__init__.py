"""Django-free parsing and validation of definitions (dbt Semantic Layer YAML + ODCS contracts)."""
