{#-
    Tickets that name a product (deleted tickets excluded), with their unified SKU, their unified customer
    when the organization resolves (null otherwise), and the agent's sentiment as a number.
-#}
select
    tickets.ticket_id,
    customers.customer_id,
    products.product_sku,
    cast(timezone('UTC', tickets.created_at) as date) as created_date,
    {{ sentiment_score('tickets.agent_sentiment') }} as sentiment_score
from {{ ref('stg_support__tickets') }} as tickets
inner join {{ ref('int_product_identity') }} as products
    on products.source_system = 'support' and tickets.product_sku_text = products.source_product
left join {{ ref('int_customer_identity') }} as customers
    on
        customers.source_system = 'support'
        and tickets.support_organization_id = customers.source_customer_id
where not tickets.is_deleted and products.product_sku is not null
