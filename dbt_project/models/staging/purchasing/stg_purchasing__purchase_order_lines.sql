{#-
    Coupa states no exchange rate on a purchase order, so USD amounts use the reference rate in force on
    the order's creation day (seed `currency_rates`); a currency without a rate gets a null USD amount,
    which the `not_null` test on `amount_usd` reports.
-#}

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
),

lines as (
    select
        id as purchase_order_id,
        status is not distinct from 'cancelled' as is_cancelled,
        currency_code,
        created_at as ordered_at,
        updated_at,
        _extracted_at as extracted_at,
        unnest(lines) as line
    from latest
    where {{ all_values_cast() }}
)

select
    lines.purchase_order_id || '-' || lines.line.line_id as purchase_order_line_id,
    lines.purchase_order_id,
    lines.line.line_num,
    lines.line.item_id as purchasing_item_id,
    lines.line.item_number as product_sku_text,
    lines.line.quantity,
    lines.line.price as unit_price,
    round(lines.line.quantity * lines.line.price, 2) as amount,
    round(lines.line.quantity * lines.line.price * rates.usd_per_unit, 2) as amount_usd,
    lines.line.need_by_date,
    lines.is_cancelled,
    lines.ordered_at,
    lines.updated_at,
    lines.extracted_at
from lines
asof left join {{ ref('currency_rates') }} as rates
    on
        lines.currency_code = rates.currency_code
        and cast(timezone('UTC', lines.ordered_at) as date) >= rates.valid_from
