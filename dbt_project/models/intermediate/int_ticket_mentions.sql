{#- Tickets that name a product, with its unified SKU: support's signal of demand for that product. -#}
select
    tickets.ticket_id,
    tickets.customer_id,
    products.product_sku,
    tickets.created_date,
    tickets.sentiment_score
from {{ ref('int_tickets') }} as tickets
inner join {{ ref('int_product_identity') }} as products
    on products.source_system = 'support' and tickets.product_sku_text = products.source_product
where products.product_sku is not null
