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
    {%- set found = run_query("select count(*) from glob('" ~ ml_output_path(name) ~ "')") -%}
    {{ return(found.columns[0].values()[0] > 0) }}
{%- endmacro %}
