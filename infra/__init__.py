"""Vigil's local platform: fetch, configure, start, check and stop Kafka, MinIO, Trino and Spark jars."""
