{#-
    One row per customer x product SKU with what finance, procurement and support know about it. Each
    source is aggregated to this grain on its own before the join: joining invoice lines, order lines
    and tickets first and summing afterwards would multiply every amount by the other sources' rows.
-#}
with customers as (
    select * from {{ ref('int_customer_identity') }}
    where customer_id is not null
),

products as (
    select * from {{ ref('int_product_identity') }}
    where product_sku is not null
),

invoiced as (
    select
        invoices.accounting_customer_id as customer_id,
        products.product_sku,
        sum(lines.amount_usd) as total_invoiced_amount,
        sum(lines.quantity) as total_invoiced_quantity
    from {{ ref('stg_accounting__invoice_lines') }} as lines
    inner join {{ ref('stg_accounting__invoices') }} as invoices
        on lines.invoice_id = invoices.invoice_id
    inner join products
        on products.source_system = 'accounting' and lines.product_sku_text = products.source_product
    where not lines.is_voided
    group by all
),

ordered as (
    select
        customers.customer_id,
        products.product_sku,
        sum(lines.quantity) as total_ordered_quantity
    from {{ ref('stg_purchasing__purchase_order_lines') }} as lines
    inner join {{ ref('stg_purchasing__purchase_orders') }} as orders
        on lines.purchase_order_id = orders.purchase_order_id
    inner join customers
        on customers.source_system = 'purchasing' and orders.customer_account = customers.source_customer_id
    inner join products
        on products.source_system = 'purchasing' and lines.product_sku_text = products.source_product
    where not lines.is_cancelled
    group by all
),

supported as (
    select
        customers.customer_id,
        products.product_sku,
        count(*) as ticket_count,
        avg(
            case tickets.agent_sentiment
                when 'positive' then 1.0
                when 'neutral' then 0.0
                when 'negative' then -1.0
            end
        ) as avg_product_sentiment
    from {{ ref('stg_support__tickets') }} as tickets
    inner join customers
        on
            customers.source_system = 'support'
            and tickets.support_organization_id = customers.source_customer_id
    inner join products
        on products.source_system = 'support' and tickets.product_sku_text = products.source_product
    where not tickets.is_deleted
    group by all
),

grain as (
    select customer_id, product_sku from invoiced
    union
    select customer_id, product_sku from ordered
    union
    select customer_id, product_sku from supported
)

select
    grain.customer_id,
    grain.product_sku,
    coalesce(invoiced.total_invoiced_amount, 0) as total_invoiced_amount,
    coalesce(invoiced.total_invoiced_quantity, 0) as total_invoiced_quantity,
    coalesce(ordered.total_ordered_quantity, 0) as total_ordered_quantity,
    coalesce(supported.ticket_count, 0) as ticket_count,
    supported.avg_product_sentiment,
    current_date as snapshot_date
from grain
left join invoiced using (customer_id, product_sku)
left join ordered using (customer_id, product_sku)
left join supported using (customer_id, product_sku)
