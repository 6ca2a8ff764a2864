{#-
    Where the `ml` group writes a table for dbt (the `ml` source's external location), and whether it has
    been written yet: a fresh data folder has none until the Python asset first runs.
-#}
{% macro ml_output_path(name) -%}
    {{ var("handoff_dir") }}/{{ name }}.parquet
{%- endmacro %}

{% macro ml_output_exists(name) -%}
    {%- if not execute -%}
        {{ return(true) }}
    {%- endif -%}
    {#- The folder is listed: a glob with no wildcard is answered without asking a bucket whether the file
        is there. -#}
    {%- set found = run_query(
        "select count(*) from glob('" ~ var('handoff_dir') ~ "/*.parquet') where file = '"
        ~ ml_output_path(name) ~ "'"
    ) -%}
    {{ return(found.columns[0].values()[0] > 0) }}
{%- endmacro %}
