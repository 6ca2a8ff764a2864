{#-
    The newest version of each record of raw table `table`: extraction is at-least-once and a record lands
    once per version. On an incremental build, only the records that changed (see incremental_staging.sql),
    with all of their versions. QuickBooks can save an invoice twice in one second: its SyncToken breaks
    the tie.
-#}
{% macro latest_versions(table) -%}
    {%- set tie_breaks = {'invoices': ', sync_token desc'} -%}
    select * from {{ source('raw', table) }}
    {{ only_changed_records(table) }}
    qualify row_number() over (
        partition by id order by updated_at desc{{ tie_breaks.get(table, '') }}
    ) = 1
{%- endmacro %}
