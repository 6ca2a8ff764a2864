{#-
    The daily series summed to ISO weeks (starting Monday); sentiment averaged over labelled tickets; the
    open purchase-order book at the week's end (zero when nothing was open).
-#}
with weeks as (
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
)

select
    weeks.*,
    coalesce(book.due_week_1, 0) as open_order_quantity_due_week_1,
    coalesce(book.due_week_2, 0) as open_order_quantity_due_week_2,
    coalesce(book.due_week_3, 0) as open_order_quantity_due_week_3,
    coalesce(book.due_week_4, 0) as open_order_quantity_due_week_4
from weeks
left join {{ ref('int_open_order_book') }} as book
    on weeks.product_sku = book.product_sku and weeks.week_start = book.week_start
