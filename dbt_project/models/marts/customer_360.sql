{#-
    One row per unified customer: what finance, procurement and support know about them today. As in
    unified_demand, each system is aggregated to the customer on its own before the join. Purchase orders
    and tickets count only when their account resolves to the customer (see int_customer_identity).
-#}
with invoices as (
    select
        accounting_customer_id as customer_id,
        count(*) filter (where invoice_status != 'voided') as invoice_count,
        sum(total_amount_usd) filter (where invoice_status != 'voided') as lifetime_invoiced_amount,
        count(*) filter (where invoice_status = 'open') as open_invoice_count,
        sum(open_balance_usd) filter (where invoice_status = 'open') as open_invoice_balance,
        count(*) filter (
            where invoice_status = 'open' and due_date < {{ reporting_date() }}
        ) as past_due_invoice_count,
        sum(open_balance_usd) filter (
            where invoice_status = 'open' and due_date < {{ reporting_date() }}
        ) as past_due_balance
    from {{ ref('stg_accounting__invoices') }}
    group by accounting_customer_id
),

orders as (
    select
        customer_id,
        count(*) filter (where is_open) as open_purchase_order_count,
        sum(ordered_quantity) filter (where is_open) as open_ordered_quantity,
        sum(ordered_amount_usd) filter (where is_open) as open_ordered_amount
    from {{ ref('int_purchase_orders') }}
    where customer_id is not null
    group by customer_id
),

tickets as (
    select
        customer_id,
        count(*) as ticket_count,
        count(*) filter (where is_open) as open_ticket_count,
        count(*) filter (where priority = 'P1') as urgent_ticket_count,
        avg(sentiment_score) as avg_ticket_sentiment
    from {{ ref('int_tickets') }}
    where customer_id is not null
    group by customer_id
)

select
    customers.customer_id,
    customers.customer_name,
    customers.billing_currency,
    customers.first_invoice_date,
    coalesce(invoices.invoice_count, 0) as invoice_count,
    coalesce(invoices.lifetime_invoiced_amount, 0) as lifetime_invoiced_amount,
    coalesce(invoices.open_invoice_count, 0) as open_invoice_count,
    coalesce(invoices.open_invoice_balance, 0) as open_invoice_balance,
    coalesce(invoices.past_due_invoice_count, 0) as past_due_invoice_count,
    coalesce(invoices.past_due_balance, 0) as past_due_balance,
    coalesce(orders.open_purchase_order_count, 0) as open_purchase_order_count,
    coalesce(orders.open_ordered_quantity, 0) as open_ordered_quantity,
    coalesce(orders.open_ordered_amount, 0) as open_ordered_amount,
    coalesce(tickets.ticket_count, 0) as ticket_count,
    coalesce(tickets.open_ticket_count, 0) as open_ticket_count,
    coalesce(tickets.urgent_ticket_count, 0) as urgent_ticket_count,
    tickets.avg_ticket_sentiment,
    {{ reporting_date() }} as snapshot_date
from {{ ref('int_customers') }} as customers
left join invoices
    on customers.customer_id = invoices.customer_id
left join orders
    on customers.customer_id = orders.customer_id
left join tickets
    on customers.customer_id = tickets.customer_id
