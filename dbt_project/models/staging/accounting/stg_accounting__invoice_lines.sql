{{
    config(
        pre_hook="{{ delete_changed_records(source('accounting', 'invoices'), 'invoice_id') }}",
    )
}}

with source as (
    select * from {{ source('accounting', 'invoices') }}
    {{ only_changed_records(source('accounting', 'invoices')) }}
),

latest as (
    -- QuickBooks can save an invoice twice in one second: its SyncToken breaks the tie.
    {{ latest_versions('source', tie_break='sync_token desc') }}
),

lines as (
    select
        id as invoice_id,
        txn_date as invoice_date,
        private_note is not distinct from 'Voided' as is_voided,
        {{ usd_rate('currency_code', 'exchange_rate') }} as usd_rate,
        updated_at,
        _extracted_at as extracted_at,
        unnest(lines) as line
    from latest
    where {{ all_values_cast() }}
)

select
    invoice_id || '-' || line.line_id as invoice_line_id,
    invoice_id,
    line.line_num,
    line.item_ref as accounting_item_id,
    line.item_name as product_sku_text,
    line.quantity,
    line.unit_price,
    line.amount,
    round(line.amount * usd_rate, 2) as amount_usd,
    is_voided,
    invoice_date,
    updated_at,
    extracted_at
from lines
