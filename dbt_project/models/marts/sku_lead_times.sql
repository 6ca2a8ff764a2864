{#-
    Per SKU, how far ahead purchase orders are placed (need-by date minus order time, the supplier lead time
    buyers plan with) over the last 180 days of orders, and the purchasing system's item id, which is where
    safety stock is written back.
-#}
with lines as (
    select
        products.product_sku,
        lines.purchasing_item_id,
        datediff('day', timezone('UTC', lines.ordered_at), timezone('UTC', lines.need_by_date))
            as planned_lead_time_days,
        lines.ordered_at
    from {{ ref('stg_purchasing__purchase_order_lines') }} as lines
    inner join {{ ref('int_product_identity') }} as products
        on products.source_system = 'purchasing' and lines.product_sku_text = products.source_product
    where products.product_sku is not null and not lines.is_cancelled
),

recent as (
    select *
    from lines
    where ordered_at >= (select max(ordered_at) from lines) - interval 180 day
)

select
    product_sku,
    mode(purchasing_item_id) as purchasing_item_id,
    median(planned_lead_time_days) as lead_time_days,
    max(planned_lead_time_days) as max_lead_time_days,
    count(*) as purchase_order_line_count
from recent
group by product_sku
