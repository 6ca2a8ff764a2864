"""Python asset checks: each shown passing on clean data and failing on bad data."""

from __future__ import annotations

from datetime import date

from dagster import AssetKey, DagsterInstance, materialize

from unified_assets.defs.ingestion.assets import raw_assets
from unified_assets.defs.ingestion.checks import raw_extract_checks
from unified_assets.defs.transform.assets import dbt_models
from unified_assets.lake import RawTable
from unified_assets.sources import zendesk
from unified_assets_tests.support.resources import dbt_resources, source_resources
from unified_assets_tests.support.simulators import FROZEN_AT, frozen_world, serving

TICKETS_KEY = AssetKey(["raw", "support_tickets"])
TICKETS = [a for a in raw_assets if a.key == TICKETS_KEY]
TICKET_CHECKS = [
    c for c in raw_extract_checks if TICKETS_KEY in {k.asset_key for k in c.check_keys}
]
RANGE = {
    "dagster/asset_partition_range_start": "2026-03-01",
    "dagster/asset_partition_range_end": "2026-03-07",
}


def land_tickets_with_check(server, storage):
    return materialize(
        [*TICKETS, *TICKET_CHECKS],
        resources=source_resources(server, storage),
        tags=RANGE,
        raise_on_error=False,
    )


def pii_check(result):
    [evaluation] = [
        e for e in result.get_asset_check_evaluations() if e.check_name == "no_pii_in_landed_text"
    ]
    return evaluation


def test_redacted_tickets_pass_the_pii_check(demo_config, storage):
    with serving(frozen_world(demo_config)) as server:
        result = land_tickets_with_check(server, storage)
    assert result.success
    evaluation = pii_check(result)
    assert evaluation.passed
    assert evaluation.metadata["tickets_scanned"].value > 0
    assert evaluation.metadata["tickets_with_pii"].value == 0


def test_a_ticket_that_escaped_redaction_fails_the_check_without_showing_the_value(
    demo_config, storage
):
    world = frozen_world(demo_config)
    truth = world.ground_truth("support", as_of=FROZEN_AT)
    leaky = next(
        (ticket_id, record)
        for ticket_id, record in zip(truth["id"], truth["record"], strict=True)
        if world.ticket_pii(ticket_id)
    )
    ticket_id, record = leaky
    day = date(2026, 2, 20)
    record = {**record, "updated_at": f"{day}T09:00:00Z"}
    lake = storage.lake()
    with lake.open_staging("support_tickets") as staging:
        staging.append([record])  # landed without redaction, as a bug in the pipeline would
        staging.finish()
        lake.publish_days(
            RawTable("support_tickets", zendesk.RAW_COLUMNS), staging, [day], FROZEN_AT
        )

    instance = DagsterInstance.ephemeral()
    with serving(world) as server:
        result = materialize(
            [*TICKETS, *TICKET_CHECKS, dbt_models],
            resources={**source_resources(server, storage), **dbt_resources(storage)},
            tags=RANGE,
            raise_on_error=False,
            instance=instance,
        )
    evaluation = pii_check(result)
    assert not evaluation.passed
    assert not result.success, "a failed blocking check fails the run"
    started = {e.step_key for e in result.all_events if e.event_type_value == "STEP_START"}
    assert "raw__support_tickets" in started
    assert "dbt_models" not in started, "blocking: the dbt models never start"
    metadata = {key: value.value for key, value in evaluation.metadata.items()}
    found = {
        kind: metadata[f"found_{kind}"]
        for kind in ("email", "phone", "card", "iban")
        if metadata.get(f"found_{kind}")
    }
    assert metadata["tickets_with_pii"] == 1
    assert metadata["example_ticket_ids"] == str(ticket_id)
    # The run's log says it in words (Dagster logs each evaluation with its description).
    said = [
        e.user_message
        for e in instance.all_logs(result.run_id)
        if "did not pass" in e.user_message and "no_pii_in_landed_text" in e.user_message
    ]
    assert len(said) == 1
    assert f"escaped redaction ({', '.join(f'{n} {k}' for k, n in found.items())})" in said[0]
    assert said[0].endswith(f"e.g. tickets {ticket_id}'")
    for _kind, value in world.ticket_pii(ticket_id):
        assert value not in repr(metadata)
        assert value not in said[0]
