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
)

select
    id as invoice_id,
    doc_number as invoice_number,
    customer_ref as accounting_customer_id,
    customer_name,
    currency_code,
    exchange_rate as usd_per_unit,
    txn_date as invoice_date,
    due_date,
    case
        when private_note = 'Voided' then 'voided'
        when balance = 0 then 'paid'
        else 'open'
    end as invoice_status,
    total_amount,
    balance as open_balance,
    round(total_amount * {{ usd_rate('currency_code', 'exchange_rate') }}, 2) as total_amount_usd,
    round(balance * {{ usd_rate('currency_code', 'exchange_rate') }}, 2) as open_balance_usd,
    created_at,
    updated_at,
    _extracted_at as extracted_at
from latest
where {{ all_values_cast() }}
