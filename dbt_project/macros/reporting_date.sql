{#-
    The day (UTC) a build reports as of: today, or the `as_of_date` var to rebuild a past snapshot
    (`dbt build --vars '{as_of_date: 2026-03-31}'`). Past-due invoices and snapshot dates use it.
-#}
{% macro reporting_date() -%}
    {%- if var('as_of_date', none) -%}
        cast('{{ var("as_of_date") }}' as date)
    {%- else -%}
        cast(timezone('UTC', current_timestamp) as date)
    {%- endif -%}
{%- endmacro %}
