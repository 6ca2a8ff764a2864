{#- The value of one custom ticket field, by the field id held in a project var. -#}
{% macro ticket_field(field_var) -%}
    list_filter(custom_fields, lambda field: field.field_id = '{{ var(field_var) }}')[1].value
{%- endmacro %}
