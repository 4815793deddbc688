-- Run once by the postgres image on its first start (empty data volume), as POSTGRES_USER (airflow)
-- in POSTGRES_DB (airflow, Airflow's metadata DB). Adds the database that holds the sync ledger
-- (connection hyperline_ledger); its tables are created by hyperline_sync.state.ledger on first use.
-- An existing postgres-db-volume skips this script: create the database by hand there.
CREATE DATABASE hyperline_ledger OWNER airflow;
