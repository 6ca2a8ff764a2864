{#-
    Purchase orders with their unified customer (null when the purchasing account does not resolve),
    whether they are still open, and their ordered quantity and USD amount.
-#}
with line_totals as (
    select
        purchase_order_id,
        sum(quantity) as ordered_quantity,
        sum(amount_usd) as ordered_amount_usd
    from {{ ref('stg_purchasing__purchase_order_lines') }}
    group by purchase_order_id
)

select
    orders.purchase_order_id,
    customers.customer_id,
    orders.purchase_order_status,
    orders.purchase_order_status in ('pending', 'approved') as is_open,
    orders.created_at as ordered_at,
    coalesce(line_totals.ordered_quantity, 0) as ordered_quantity,
    coalesce(line_totals.ordered_amount_usd, 0) as ordered_amount_usd
from {{ ref('stg_purchasing__purchase_orders') }} as orders
left join line_totals
    on orders.purchase_order_id = line_totals.purchase_order_id
left join {{ ref('int_customer_identity') }} as customers
    on customers.source_system = 'purchasing' and orders.customer_account = customers.source_customer_id
