"""What several domains of the Dagster layer share: the storage resource, the source connections, warehouse
access, hand-off files, metadata rendering, automation conditions, the dbt project, asset keys and owners.
Nothing here defines an asset, check, sensor or schedule: those live in `unified_assets.defs.<domain>`."""
