"""Data-quality checks beyond dbt tests, one module per layer they watch."""
