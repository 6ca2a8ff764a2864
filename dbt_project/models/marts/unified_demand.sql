{#-
    One row per customer x product SKU with what finance, procurement and support know about it. Each
    source is aggregated to this grain on its own before the join: joining invoice lines, order lines
    and tickets first and summing afterwards would multiply every amount by the other sources' rows.
-#}
with invoiced as (
    select
        customer_id,
        product_sku,
        sum(amount_usd) as total_invoiced_amount,
        sum(quantity) as total_invoiced_quantity
    from {{ ref('int_invoiced_lines') }}
    group by customer_id, product_sku
),

ordered as (
    select
        customer_id,
        product_sku,
        sum(quantity) as total_ordered_quantity
    from {{ ref('int_ordered_lines') }}
    where customer_id is not null
    group by customer_id, product_sku
),

supported as (
    select
        mentions.customer_id,
        mentions.product_sku,
        count(*) as ticket_count,
        avg(scores.sentiment_score) as avg_product_sentiment
    from {{ ref('int_ticket_mentions') }} as mentions
    left join {{ ref('stg_ml__ticket_sentiment') }} as scores using (ticket_id)
    where mentions.customer_id is not null
    group by mentions.customer_id, mentions.product_sku
),

-- Every customer here is a unified customer (int_customers); the join says so in the lineage too.
grain as (
    select pairs.customer_id, pairs.product_sku
    from (
        select customer_id, product_sku from invoiced
        union
        select customer_id, product_sku from ordered
        union
        select customer_id, product_sku from supported
    ) as pairs
    inner join {{ ref('int_customers') }} as customers on pairs.customer_id = customers.customer_id
)

select
    grain.customer_id,
    grain.product_sku,
    coalesce(invoiced.total_invoiced_amount, 0) as total_invoiced_amount,
    coalesce(invoiced.total_invoiced_quantity, 0) as total_invoiced_quantity,
    coalesce(ordered.total_ordered_quantity, 0) as total_ordered_quantity,
    coalesce(supported.ticket_count, 0) as ticket_count,
    supported.avg_product_sentiment,
    {{ reporting_date() }} as snapshot_date
from grain
left join invoiced using (customer_id, product_sku)
left join ordered using (customer_id, product_sku)
left join supported using (customer_id, product_sku)
