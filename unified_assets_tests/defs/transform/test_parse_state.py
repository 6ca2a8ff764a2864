"""dbt's parse state is kept per set of `--vars`, so a build after the first parses only what changed."""

from unified_assets.defs.transform.assets import (
    PARTIAL_PARSE,
    keep_parse_state,
    parse_state_for,
    seed_parse_state,
)

VARS = {"lake_dir": "/data/lake", "handoff_dir": "/data/ml", "warehouse_path": "/data/w.duckdb"}


def test_each_set_of_vars_has_its_own_state(tmp_path):
    elsewhere = {**VARS, "warehouse_path": "/elsewhere/w.duckdb"}
    assert parse_state_for(tmp_path, VARS) == parse_state_for(
        tmp_path, dict(reversed(VARS.items()))
    )
    assert parse_state_for(tmp_path, VARS) != parse_state_for(tmp_path, elsewhere)


def test_a_build_starts_from_the_state_the_last_build_with_its_vars_left(tmp_path):
    state = parse_state_for(tmp_path, VARS)
    first, second = tmp_path / "build-1", tmp_path / "build-2"

    seed_parse_state(state, first)  # nothing saved yet: dbt parses everything
    assert not (first / PARTIAL_PARSE).exists()
    first.mkdir()
    (first / PARTIAL_PARSE).write_bytes(b"state of build 1")
    keep_parse_state(first, state)

    seed_parse_state(state, second)
    assert (second / PARTIAL_PARSE).read_bytes() == b"state of build 1"
    assert [path.name for path in tmp_path.iterdir() if path.suffix == ".tmp"] == []


def test_a_build_that_left_no_state_keeps_the_previous_one(tmp_path):
    state = parse_state_for(tmp_path, VARS)
    state.write_bytes(b"previous")
    (tmp_path / "failed-build").mkdir()
    keep_parse_state(tmp_path / "failed-build", state)
    assert state.read_bytes() == b"previous"
