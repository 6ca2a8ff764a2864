{#-
    The newest version of each record in `relation` (the staging model's import CTE over its source):
    extraction is at-least-once and a record lands once per version, keyed by `id` and ordered by
    `updated_at`. `tie_break` is an order-by expression, newest first, for two versions saved in the same
    instant; it belongs to the source (e.g. QuickBooks' SyncToken), so the staging model passes it in.
-#}
{% macro latest_versions(relation, tie_break=none) -%}
    select * from {{ relation }}
    qualify row_number() over (
        partition by id order by updated_at desc{% if tie_break %}, {{ tie_break }}{% endif %}
    ) = 1
{%- endmacro %}
