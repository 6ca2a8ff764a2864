{#- The combination of columns is unique: dbt_utils' test of the same name, as dbt packages cannot be installed here. -#}
{% test unique_combination_of_columns(model, columns) %}
    select {{ columns | join(', ') }}
    from {{ model }}
    group by {{ columns | join(', ') }}
    having count(*) > 1
{% endtest %}
