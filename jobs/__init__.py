"""Vigil's Spark batch jobs; `jobs.spark_session.build_spark` gives each one its session."""
