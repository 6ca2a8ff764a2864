"""When assets downstream of the extracts rebuild on their own (declarative automation).

Downstream of the raw extracts, an asset rebuilds when anything it reads was updated (or is about to be, in
the same tick), but never while an input is being written, never before every input holds some data, and
never past an input whose blocking check failed: a check that stopped one run keeps stopping the automation
in the runs after it.

Dagster's `eager()` waits instead until no input is *missing*; for an asset reading a daily-partitioned
extract that means every day since the first of history, so a platform that has landed only recent days
would never build its marts. "Every input holds some data" is the same rule read per input: one landed day
of an extract is enough, and an asset that needs a model waits until one exists.

"""

from collections.abc import Sequence

from dagster import AssetKey, AssetSelection, AutomationCondition

# An input requested in the same tick counts (its dbt tests are requested with it: lib/dbt_project.py), so
# a first build runs the whole chain in one run.
EVERY_INPUT_HAS_DATA = AutomationCondition.all_deps_match(
    ~AutomationCondition.missing() | AutomationCondition.will_be_requested()
).with_label("every input has data")


def rebuild_when_upstream_changes(
    *, checks_not_blocking: Sequence[AssetKey] = ()
) -> AutomationCondition:
    """`checks_not_blocking` names inputs whose failed blocking check does not make them unusable here (a
    challenger model that lost: the production model keeps serving)."""
    checked = AutomationCondition.all_deps_blocking_checks_passed()
    if checks_not_blocking:
        checked = checked.ignore(AssetSelection.assets(*checks_not_blocking))
    eager_on_partial_inputs = AutomationCondition.eager().without(
        ~AutomationCondition.any_deps_missing()
    )
    return (eager_on_partial_inputs & EVERY_INPUT_HAS_DATA & checked).with_label(
        "rebuild when upstream changes"
    )


# For an asset that reads nothing the graph updates (a dbt seed: reference data in the repository): built
# whenever it is missing, unless its last build failed (then a person should look before it is tried again).
BUILD_WHILE_MISSING = (
    AutomationCondition.missing()
    & ~AutomationCondition.in_progress()
    & ~AutomationCondition.execution_failed()
).with_label("build while missing")
