{#-
    Purchase-order lines that count as demand (cancelled orders excluded), with their unified SKU and,
    when the ordering account resolves, their unified customer (null otherwise).
-#}
select
    lines.purchase_order_line_id,
    orders.customer_id,
    products.product_sku,
    cast(timezone('UTC', lines.ordered_at) as date) as order_date,
    lines.quantity
from {{ ref('stg_purchasing__purchase_order_lines') }} as lines
inner join {{ ref('int_purchase_orders') }} as orders
    on lines.purchase_order_id = orders.purchase_order_id
inner join {{ ref('int_product_identity') }} as products
    on products.source_system = 'purchasing' and lines.product_sku_text = products.source_product
where not lines.is_cancelled and products.product_sku is not null
