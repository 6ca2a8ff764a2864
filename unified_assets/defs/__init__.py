"""The Dagster definitions, one folder a domain; `unified_assets.definitions` gathers them."""
