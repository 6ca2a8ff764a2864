"""Vendor webhooks: signature checks as each vendor signs, an inbox on disk, and a small receiver.
No Dagster here: a sensor reads the inbox."""
