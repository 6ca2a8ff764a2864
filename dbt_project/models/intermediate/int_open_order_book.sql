{#-
    The open purchase-order book as it stood at the end of each week (the Monday 00:00 UTC after it), per
    SKU, bucketed by need-by date: due within the next week (overdue lines included), in the second, third
    and fourth week. A line is open from its order's creation until the order is closed (delivered) or
    cancelled; the order's last update is when that happened, since nothing follows either. Built only from
    what was known at each week's end, so a forecaster may read it as of any week without seeing the future.
    The current week is as of the latest purchasing update.
-#}
with orders as (
    select
        purchase_order_id,
        case
            when purchase_order_status in ('closed', 'cancelled') then updated_at
        end as ended_at
    from {{ ref('stg_purchasing__purchase_orders') }}
),

lines as (
    select
        products.product_sku,
        lines.quantity,
        timezone('UTC', lines.ordered_at) as ordered_at,
        timezone('UTC', lines.need_by_date) as need_by_at,
        timezone('UTC', orders.ended_at) as ended_at
    from {{ ref('stg_purchasing__purchase_order_lines') }} as lines
    inner join orders on lines.purchase_order_id = orders.purchase_order_id
    inner join {{ ref('int_product_identity') }} as products
        on products.source_system = 'purchasing' and lines.product_sku_text = products.source_product
    where products.product_sku is not null
),

last_seen as (
    select max(timezone('UTC', updated_at)) as last_update
    from {{ ref('stg_purchasing__purchase_orders') }}
),

open_at_week_end as (
    select
        lines.product_sku,
        lines.quantity,
        lines.need_by_at,
        cast(
            unnest(
                generate_series(
                    date_trunc('week', lines.ordered_at),
                    coalesce(
                        date_trunc('week', lines.ended_at - interval 7 day),
                        date_trunc('week', last_seen.last_update)
                    ),
                    interval 7 day
                )
            ) as date
        ) as week_start
    from lines
    cross join last_seen
),

due as (
    select
        product_sku,
        week_start,
        quantity,
        datediff('day', week_start + interval 7 day, need_by_at) as days_until_due
    from open_at_week_end
)

select
    product_sku,
    week_start,
    coalesce(sum(quantity) filter (where days_until_due < 7), 0) as due_week_1,
    coalesce(sum(quantity) filter (where days_until_due between 7 and 13), 0) as due_week_2,
    coalesce(sum(quantity) filter (where days_until_due between 14 and 20), 0) as due_week_3,
    coalesce(sum(quantity) filter (where days_until_due between 21 and 27), 0) as due_week_4
from due
where days_until_due < 28
group by product_sku, week_start
