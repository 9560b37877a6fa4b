"""Airflow wiring: DAG ids and shared DAG arguments, notifiers, the local ``dag.test`` runner,
``daily-mlops airflow``."""
