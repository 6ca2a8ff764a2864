{#- The daily series summed to ISO weeks (starting Monday); sentiment averaged over labelled tickets. -#}
select
    product_sku,
    cast(date_trunc('week', demand_date) as date) as week_start,
    sum(invoiced_quantity) as invoiced_quantity,
    sum(invoiced_amount) as invoiced_amount,
    sum(ordered_quantity) as ordered_quantity,
    sum(ticket_count) as ticket_count,
    sum(labelled_ticket_count) as labelled_ticket_count,
    sum(avg_agent_sentiment * labelled_ticket_count) / nullif(sum(labelled_ticket_count), 0)
        as avg_agent_sentiment
from {{ ref('sku_demand_daily') }}
group by product_sku, week_start
