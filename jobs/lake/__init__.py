"""The lakehouse: Delta tables on MinIO written by Spark, registered in Trino's `vigil` catalog."""
