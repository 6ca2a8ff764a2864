{#- The unified customers: the accounting system's customers, by their latest name. -#}
select
    accounting_customer_id as customer_id,
    arg_max(customer_name, updated_at) as customer_name,
    arg_max(currency_code, updated_at) as billing_currency,
    min(invoice_date) as first_invoice_date
from {{ ref('stg_accounting__invoices') }}
group by accounting_customer_id
