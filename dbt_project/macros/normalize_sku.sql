{#- A SKU as letters and digits only, lower case: "AB-1234", "ab1234" and "ab_1234" agree. -#}
{% macro normalize_sku(column) -%}
    regexp_replace(lower({{ column }}), '[^a-z0-9]', '', 'g')
{%- endmacro %}
