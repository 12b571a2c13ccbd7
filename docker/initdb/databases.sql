-- The stack's other databases beside Airflow's (POSTGRES_DB): MLflow's and Feast's registry.
CREATE DATABASE mlflow;
CREATE DATABASE feast;
