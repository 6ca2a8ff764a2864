{#- An agent's sentiment label as a number: -1 negative, 0 neutral, 1 positive, null when unlabelled. -#}
{% macro sentiment_score(column) -%}
    case {{ column }}
        when 'positive' then 1.0
        when 'neutral' then 0.0
        when 'negative' then -1.0
    end
{%- endmacro %}
