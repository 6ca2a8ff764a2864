{#-
    True for a record version whose typed values all cast. The raw layer lists the source fields whose
    value was present but did not cast in `_uncastable`; staging keeps such records out rather than let a
    null stand for a value the source did send (the `no_uncastable_values` check on each raw asset counts
    them, and `_raw` keeps the original). Partitions landed before the column existed read as null.
-#}
{% macro all_values_cast() -%}
    coalesce(len(_uncastable), 0) = 0
{%- endmacro %}
