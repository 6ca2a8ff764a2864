{#-
    What a model or seed holds once dbt has built it, told to Dagster: its columns and their types, the
    columns of the models it refs (dagster-dbt derives column lineage from them and the compiled SQL, with
    sqlglot), and its row count. A post-hook of every model and seed (dbt_project.yml).

    It runs inside dbt, on dbt's connection: DuckDB admits no second process to the warehouse file while
    dbt writes it, so dagster-dbt's `fetch_column_metadata()` and `fetch_row_counts()`, which query from
    the Dagster process while the build runs, would wait on dbt's lock. The first log line is the
    structured record dagster-dbt's event stream attaches to the node's materialization; the second,
    `row_count <n>`, is read by the dbt asset (unified_assets/defs/transform/assets.py). A model that reads
    a source logs no parents, so no lineage is attempted: the sources are Parquet read through
    `read_parquet`, which gives sqlglot no columns to resolve. Outside a Dagster run (dbt by hand) it does
    nothing.
-#}

{% macro log_table_facts() %}
    {%- if execute and env_var('DAGSTER_DBT_CLI', '') == 'true' -%}
        {%- set parents = {} -%}
        {%- for ref_args in model.refs -%}
            {%- set parent = ref(ref_args['name']) -%}
            {%- do parents.update({parent.render(): {'columns': column_types(parent)}}) -%}
        {%- endfor -%}
        {%- set facts = {'relation_name': this.render(), 'columns': column_types(this)} -%}
        {%- if not model.sources -%}
            {%- do facts.update({'parents': parents}) -%}
        {%- endif -%}
        {%- do log(tojson(facts), info=true) -%}
        {%- set counted = run_query('select count(*) from ' ~ this) -%}
        {%- do log('row_count ' ~ counted.columns[0].values()[0], info=true) -%}
    {%- endif -%}
{% endmacro %}

{% macro column_types(relation) -%}
    {%- set types = {} -%}
    {%- for column in adapter.get_columns_in_relation(relation) -%}
        {%- do types.update({column.name: {'data_type': column.data_type}}) -%}
    {%- endfor -%}
    {{- return(types) -}}
{%- endmacro %}
