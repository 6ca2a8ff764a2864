{#-
    Rebuilt whole each time (the scores are a snapshot of one model version, not a change log). Until
    `ml/ticket_sentiment` has first run there is no file: the table is then empty, so the marts build with
    sentiment null rather than fail.
-#}
{{ config(materialized='table') }}

{% if ml_output_exists('ticket_sentiment') %}
    with source as (
        select * from {{ source('ml', 'ticket_sentiment') }}
    )

    select
        cast(ticket_id as bigint) as ticket_id,
        cast(sentiment_label as varchar) as sentiment_label,
        cast(sentiment_score as double) as sentiment_score,
        cast(model_version as varchar) as sentiment_model_version
    from source
{% else %}
    select
        cast(null as bigint) as ticket_id,
        cast(null as varchar) as sentiment_label,
        cast(null as double) as sentiment_score,
        cast(null as varchar) as sentiment_model_version
    where false
{% endif %}
