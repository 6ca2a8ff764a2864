{#-
    Which product SKU each system's spelling of a product is. The accounting item names are the SKU
    master ("AB-1234"); purchasing item numbers ("ab1234") and support's product field ("ab_1234")
    resolve when their letters and digits match one. Unresolved spellings keep a null product_sku.
-#}
with accounting_skus as (
    select distinct product_sku_text as product_sku
    from {{ ref('stg_accounting__invoice_lines') }}
    where product_sku_text is not null
),

sku_keys as (
    select
        {{ normalize_sku('product_sku') }} as sku_key,
        min(product_sku) as product_sku
    from accounting_skus
    group by sku_key
    having count(*) = 1
),

source_spellings as (
    select distinct
        'accounting' as source_system,
        product_sku_text as source_product
    from {{ ref('stg_accounting__invoice_lines') }}
    union
    select distinct
        'purchasing' as source_system,
        product_sku_text as source_product
    from {{ ref('stg_purchasing__purchase_order_lines') }}
    union
    select distinct
        'support' as source_system,
        product_sku_text as source_product
    from {{ ref('stg_support__tickets') }}
)

select
    source_spellings.source_system,
    source_spellings.source_product,
    sku_keys.product_sku
from source_spellings
left join sku_keys
    on {{ normalize_sku('source_spellings.source_product') }} = sku_keys.sku_key
where source_spellings.source_product is not null
