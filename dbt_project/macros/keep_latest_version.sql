{#-
    Extraction is at-least-once and a record lands once per version: keep the newest version of each.
    Use as the last clause of a select over a raw source.
-#}
{% macro keep_latest_version(key, order_by="updated_at desc") -%}
    qualify row_number() over (partition by {{ key }} order by {{ order_by }}) = 1
{%- endmacro %}
