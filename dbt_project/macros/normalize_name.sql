{#-
    A company name reduced to what survives each system's own spelling: lower case, "&" as "and",
    no dots or apostrophes, other punctuation as spaces, single spaces, and no trailing legal suffixes
    ("Acme Corporation", "ACME Corp." and "acme corp" all become "acme").
-#}
{% macro normalize_name(column) -%}
    regexp_replace(
        trim(regexp_replace(regexp_replace(regexp_replace(
            replace(lower({{ column }}), '&', ' and '),
            '[.'']', '', 'g'),
            '[^a-z0-9]+', ' ', 'g'),
            '\s+', ' ', 'g')),
        '(\s+({{ legal_suffixes() | join('|') }}))+$', ''
    )
{%- endmacro %}

{% macro legal_suffixes() -%}
    {{ return(['inc', 'incorporated', 'corp', 'corporation', 'co', 'company', 'llc', 'ltd', 'limited',
               'plc', 'gmbh', 'ag', 'kg', 'bv', 'nv', 'sa', 'sarl', 'sas']) }}
{%- endmacro %}
