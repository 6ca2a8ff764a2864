{#-
    Every ticket that counts (deleted tickets excluded) with its unified customer when the organization
    resolves (null otherwise), whether it is still unresolved, and the agent's sentiment as a number.
-#}
select
    tickets.ticket_id,
    customers.customer_id,
    tickets.product_sku_text,
    tickets.ticket_status,
    tickets.ticket_status in ('new', 'open', 'pending', 'hold') as is_open,
    tickets.priority,
    cast(timezone('UTC', tickets.created_at) as date) as created_date,
    {{ sentiment_score('tickets.agent_sentiment') }} as sentiment_score
from {{ ref('stg_support__tickets') }} as tickets
left join {{ ref('int_customer_identity') }} as customers
    on
        customers.source_system = 'support'
        and tickets.support_organization_id = customers.source_customer_id
where not tickets.is_deleted
