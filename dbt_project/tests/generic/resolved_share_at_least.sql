{#-
    Per group, the share of rows whose column is not null is at least `minimum`; returns the groups below.
    Used for identity coverage: what share of each system's customers (or products) resolve.
-#}
{% test resolved_share_at_least(model, column_name, group_by, minimum) %}
    select
        {{ group_by }},
        avg(case when {{ column_name }} is null then 0.0 else 1.0 end) as resolved_share
    from {{ model }}
    group by {{ group_by }}
    having avg(case when {{ column_name }} is null then 0.0 else 1.0 end) < {{ minimum }}
{% endtest %}
