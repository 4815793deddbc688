"""The glue to Airflow and the shell: task bodies the DAG file wires, and the `hyperline-sync` CLI."""
