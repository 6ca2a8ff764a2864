{#-
    The demand time series the forecaster trains on: one row per product SKU and day, from the SKU's first
    activity to the last day with data in any system, with explicit zeros on quiet days. Invoiced quantity
    is dated by invoice date, ordered quantity by order creation, tickets by creation (all in UTC). SKUs are
    counted whether or not the customer resolves: this is product demand, not customer demand.
-#}
with invoiced as (
    select
        product_sku,
        invoice_date as demand_date,
        sum(quantity) as invoiced_quantity,
        sum(amount_usd) as invoiced_amount
    from {{ ref('int_invoiced_lines') }}
    group by product_sku, demand_date
),

ordered as (
    select
        product_sku,
        order_date as demand_date,
        sum(quantity) as ordered_quantity
    from {{ ref('int_ordered_lines') }}
    group by product_sku, demand_date
),

supported as (
    select
        product_sku,
        created_date as demand_date,
        count(*) as ticket_count,
        count(sentiment_score) as labelled_ticket_count,
        avg(sentiment_score) as avg_agent_sentiment
    from {{ ref('int_ticket_mentions') }}
    group by product_sku, demand_date
),

activity as (
    select product_sku, demand_date from invoiced
    union
    select product_sku, demand_date from ordered
    union
    select product_sku, demand_date from supported
),

spine as (
    select
        first_days.product_sku,
        cast(unnest(generate_series(first_days.first_date, last_day.last_date, interval 1 day)) as date)
            as demand_date
    from (
        select product_sku, min(demand_date) as first_date
        from activity
        group by product_sku
    ) as first_days
    cross join (select max(demand_date) as last_date from activity) as last_day
)

select
    spine.product_sku,
    spine.demand_date,
    coalesce(invoiced.invoiced_quantity, 0) as invoiced_quantity,
    coalesce(invoiced.invoiced_amount, 0) as invoiced_amount,
    coalesce(ordered.ordered_quantity, 0) as ordered_quantity,
    coalesce(supported.ticket_count, 0) as ticket_count,
    coalesce(supported.labelled_ticket_count, 0) as labelled_ticket_count,
    supported.avg_agent_sentiment
from spine
left join invoiced using (product_sku, demand_date)
left join ordered using (product_sku, demand_date)
left join supported using (product_sku, demand_date)
