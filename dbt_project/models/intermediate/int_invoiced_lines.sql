{#- Invoice lines that count as demand (voided invoices excluded), with their unified customer and SKU. -#}
select
    lines.invoice_line_id,
    invoices.accounting_customer_id as customer_id,
    products.product_sku,
    lines.invoice_date,
    lines.quantity,
    lines.amount_usd
from {{ ref('stg_accounting__invoice_lines') }} as lines
inner join {{ ref('stg_accounting__invoices') }} as invoices
    on lines.invoice_id = invoices.invoice_id
inner join {{ ref('int_product_identity') }} as products
    on products.source_system = 'accounting' and lines.product_sku_text = products.source_product
where not lines.is_voided and products.product_sku is not null
