{#- QuickBooks states ExchangeRate as home-currency (USD) units per unit of the invoice currency. -#}
{% macro usd_rate(currency_column, rate_column) -%}
    case when {{ currency_column }} = 'USD' then 1.0 else {{ rate_column }} end
{%- endmacro %}
