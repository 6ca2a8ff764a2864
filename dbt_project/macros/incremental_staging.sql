{#-
    Incremental staging. A run rebuilds only the records that have a version extracted since the previous
    run, from all of their versions in the lake, so the newest version still wins when an old day is
    re-extracted, and a record whose newest version no longer casts leaves staging as it would in a full
    build. A record kept from a re-extracted day that is gone from the lake (deleted at the source) is
    deleted. The staging folder is incremental with the `append` strategy (dbt_project.yml); each model
    over a source table, keyed by `k` and carrying `updated_at`, deletes before it appends, and narrows its
    import CTE to the changed records:

        {{ config(pre_hook="{{ delete_changed_records(source('system', 'table'), 'k') }}") }}
        with source as (
            select * from {{ source('system', 'table') }}
            {{ only_changed_records(source('system', 'table')) }}
        ),
        latest as ({{ latest_versions('source') }}) ...

    The macros take the source relation itself, not the CTE: DuckDB materializes a CTE read twice, which
    here would be the whole raw table. The watermark is the newest extraction the model holds, read before
    the pre-hook deletes anything, so the delete and the insert agree. The lookback
    (`staging_lookback_hours`) re-reads recent extractions, covering one that was still publishing while
    the previous run read the lake. `dbt build --full-refresh` (or the `full_refresh` run config in
    Dagster) rebuilds from the whole lake, e.g. after a model's columns change or a partition file was
    removed by hand.
-#}

{% macro staging_watermark() -%}
    {%- set newest = run_query("select max(extracted_at) from " ~ this).columns[0].values()[0] -%}
    {{- return(newest if newest is not none else "-infinity") -}}
{%- endmacro %}

{% macro extraction_cutoff() -%}
    cast('{{ staging_watermark() }}' as timestamptz) - to_hours({{ var('staging_lookback_hours') }})
{%- endmacro %}

{#- Records with a version extracted after the cutoff: the ones to rebuild. -#}
{% macro changed_record_ids(relation) -%}
    select distinct id from {{ relation }} where _extracted_at > {{ extraction_cutoff() }}
{%- endmacro %}

{#- Days re-extracted after the cutoff: a record kept from such a day that is no longer in the lake
    (deleted at the source) must leave staging too. -#}
{% macro reextracted_days(relation) -%}
    select distinct updated_date from {{ relation }}
    where _extracted_at > {{ extraction_cutoff() }}
{%- endmacro %}

{% macro only_changed_records(relation) -%}
    {%- if execute and is_incremental() -%}
        where id in ({{ changed_record_ids(relation) }})
    {%- endif -%}
{%- endmacro %}

{% macro delete_changed_records(relation, key) -%}
    {%- if execute and is_incremental() -%}
        delete from {{ this }}
        where
            {{ key }} in ({{ changed_record_ids(relation) }})
            or cast(timezone('UTC', updated_at) as date) in ({{ reextracted_days(relation) }})
    {%- endif -%}
{%- endmacro %}
