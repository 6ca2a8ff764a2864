with latest as (
    select * from {{ source('raw', 'purchase_orders') }}
    {{ keep_latest_version('id') }}
),

lines as (
    select
        id as purchase_order_id,
        status is not distinct from 'cancelled' as is_cancelled,
        created_at as ordered_at,
        unnest(lines) as line
    from latest
)

select
    purchase_order_id || '-' || line.line_id as purchase_order_line_id,
    purchase_order_id,
    line.line_num,
    line.item_id as purchasing_item_id,
    line.item_number as product_sku_text,
    line.quantity,
    line.price as unit_price,
    line.need_by_date,
    is_cancelled,
    ordered_at
from lines
