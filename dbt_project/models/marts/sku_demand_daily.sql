{#-
    The demand time series the forecaster trains on: one row per product SKU and day, from the SKU's first
    activity to the last day with data in any system, with explicit zeros on quiet days. Invoiced quantity
    is dated by invoice date, ordered quantity by order creation, tickets by creation (all in UTC). SKUs are
    counted whether or not the customer resolves: this is product demand, not customer demand.
-#}
with products as (
    select * from {{ ref('int_product_identity') }}
    where product_sku is not null
),

invoiced as (
    select
        products.product_sku,
        lines.invoice_date as demand_date,
        sum(lines.quantity) as invoiced_quantity,
        sum(lines.amount_usd) as invoiced_amount
    from {{ ref('stg_accounting__invoice_lines') }} as lines
    inner join products
        on products.source_system = 'accounting' and lines.product_sku_text = products.source_product
    where not lines.is_voided
    group by all
),

ordered as (
    select
        products.product_sku,
        cast(timezone('UTC', lines.ordered_at) as date) as demand_date,
        sum(lines.quantity) as ordered_quantity
    from {{ ref('stg_purchasing__purchase_order_lines') }} as lines
    inner join products
        on products.source_system = 'purchasing' and lines.product_sku_text = products.source_product
    where not lines.is_cancelled
    group by all
),

supported as (
    select
        products.product_sku,
        cast(timezone('UTC', tickets.created_at) as date) as demand_date,
        count(*) as ticket_count,
        count(tickets.agent_sentiment) as labelled_ticket_count,
        avg(
            case tickets.agent_sentiment
                when 'positive' then 1.0
                when 'neutral' then 0.0
                when 'negative' then -1.0
            end
        ) as avg_agent_sentiment
    from {{ ref('stg_support__tickets') }} as tickets
    inner join products
        on products.source_system = 'support' and tickets.product_sku_text = products.source_product
    where not tickets.is_deleted
    group by all
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
