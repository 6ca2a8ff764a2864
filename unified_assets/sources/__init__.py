"""Clients for the three source systems: plain HTTP, no Dagster."""
