{{
    config(
        pre_hook="{{ delete_changed_records(source('support', 'support_tickets'), 'ticket_id') }}",
    )
}}

with source as (
    select * from {{ source('support', 'support_tickets') }}
    {{ only_changed_records(source('support', 'support_tickets')) }}
),

latest as (
    {{ latest_versions('source') }}
)

select
    id as ticket_id,
    organization_id as support_organization_id,
    requester_id,
    status as ticket_status,
    status is not distinct from 'deleted' as is_deleted,
    case priority
        when 'urgent' then 'P1'
        when 'high' then 'P2'
        when 'normal' then 'P3'
        when 'low' then 'P4'
    end as priority,
    ticket_type,
    via_channel,
    subject,
    description,
    {{ ticket_field('support_field_product_sku') }} as product_sku_text,
    {{ ticket_field('support_field_account_name') }} as account_name,
    {{ ticket_field('support_field_agent_sentiment') }} as agent_sentiment,
    tags,
    created_at,
    updated_at,
    _extracted_at as extracted_at
from latest
where {{ all_values_cast() }}
