{{
    config(
        pre_hook="{{ delete_changed_records(source('purchasing', 'purchase_orders'), 'purchase_order_id') }}",
    )
}}

with source as (
    select * from {{ source('purchasing', 'purchase_orders') }}
    {{ only_changed_records(source('purchasing', 'purchase_orders')) }}
),

latest as (
    {{ latest_versions('source') }}
)

select
    id as purchase_order_id,
    po_number,
    case status
        when 'buyer_hold' then 'pending'
        when 'issued' then 'approved'
        when 'cancelled' then 'cancelled'
        when 'closed' then 'closed'
    end as purchase_order_status,
    status as source_status,
    supplier_id,
    supplier_name,
    ship_to_name as customer_name,
    customer_account,
    currency_code,
    created_at,
    updated_at,
    _extracted_at as extracted_at
from latest
where {{ all_values_cast() }}
