{#-
    Which unified customer each system's customer id is. Accounting is the customer master: its ids are
    the unified ids. A purchasing account or support organization resolves to the accounting customer
    whose normalized name matches one of the names it was seen with; a name key shared by two accounting
    customers is ambiguous and resolves nothing. Unresolved ids stay here with a null customer_id, so
    coverage can be measured rather than guessed.
-#}
with accounting_customers as (
    select
        accounting_customer_id as customer_id,
        arg_max(customer_name, updated_at) as customer_name
    from {{ ref('stg_accounting__invoices') }}
    group by accounting_customer_id
),

name_keys as (
    select
        {{ normalize_name('customer_name') }} as name_key,
        min(customer_id) as customer_id
    from accounting_customers
    group by name_key
    having count(*) = 1
),

source_names as (
    select
        'purchasing' as source_system,
        customer_account as source_customer_id,
        customer_name as source_name
    from {{ ref('stg_purchasing__purchase_orders') }}
    where customer_account is not null
    union all
    select
        'support' as source_system,
        support_organization_id as source_customer_id,
        account_name as source_name
    from {{ ref('stg_support__tickets') }}
    where support_organization_id is not null
),

source_customers as (
    select
        source_system,
        source_customer_id,
        mode(source_name) as source_name
    from source_names
    group by source_system, source_customer_id
),

matches as (
    select
        source_names.source_system,
        source_names.source_customer_id,
        name_keys.customer_id,
        count(*) as evidence
    from source_names
    inner join name_keys
        on {{ normalize_name('source_names.source_name') }} = name_keys.name_key
    group by source_names.source_system, source_names.source_customer_id, name_keys.customer_id
    qualify row_number() over (
        partition by source_names.source_system, source_names.source_customer_id
        order by count(*) desc, name_keys.customer_id
    ) = 1
)

select
    'accounting' as source_system,
    customer_id as source_customer_id,
    customer_name as source_name,
    customer_id
from accounting_customers
union all
select
    source_customers.source_system,
    source_customers.source_customer_id,
    source_customers.source_name,
    matches.customer_id
from source_customers
left join matches
    on
        source_customers.source_system = matches.source_system
        and source_customers.source_customer_id = matches.source_customer_id
