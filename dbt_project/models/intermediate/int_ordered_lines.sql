{#-
    Purchase-order lines that count as demand (cancelled orders excluded), with their unified SKU and,
    when the ordering account resolves, their unified customer (null otherwise).
-#}
select
    lines.purchase_order_line_id,
    customers.customer_id,
    products.product_sku,
    cast(timezone('UTC', lines.ordered_at) as date) as order_date,
    lines.quantity
from {{ ref('stg_purchasing__purchase_order_lines') }} as lines
inner join {{ ref('stg_purchasing__purchase_orders') }} as orders
    on lines.purchase_order_id = orders.purchase_order_id
inner join {{ ref('int_product_identity') }} as products
    on products.source_system = 'purchasing' and lines.product_sku_text = products.source_product
left join {{ ref('int_customer_identity') }} as customers
    on customers.source_system = 'purchasing' and orders.customer_account = customers.source_customer_id
where not lines.is_cancelled and products.product_sku is not null
