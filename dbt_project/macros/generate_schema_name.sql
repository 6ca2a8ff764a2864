{#- Use a model's custom schema as is (`staging`, `marts`) instead of dbt's `<target>_<custom>`. -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {{ custom_schema_name if custom_schema_name else target.schema }}
{%- endmacro %}
