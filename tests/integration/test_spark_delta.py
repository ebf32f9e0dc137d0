"""Spark (with the jars `make up` resolved) writes Delta to MinIO and reads Kafka; Trino reads what Spark wrote."""

from __future__ import annotations

import uuid

import pytest
import trino
from confluent_kafka import KafkaError, Message, Producer
from pyspark.sql import SparkSession

from infra import minio
from infra.settings import InfraSettings

pytestmark = pytest.mark.integration


def test_spark_writes_delta_that_trino_reads(spark: SparkSession, platform: InfraSettings) -> None:
    name = f"spark_it_{uuid.uuid4().hex[:10]}"
    location = f"s3a://lake/bronze/{name}"
    rows = [(i, f"sensor-{i % 3}", i * 0.5) for i in range(50)]
    spark.createDataFrame(rows, "id long, sensor string, v double").write.format("delta").save(location)
    assert spark.read.format("delta").load(location).count() == 50

    connection = trino.dbapi.connect(  # type: ignore[no-untyped-call]
        host=platform.host, port=platform.trino_port, user="vigil-tests", catalog="vigil"
    )
    cursor = connection.cursor()
    try:
        # Spark writes s3a://, Trino's native S3 file system reads s3:// - the same object keys.
        cursor.execute(
            f"CALL system.register_table(schema_name => 'bronze', table_name => '{name}', "
            f"table_location => 's3://lake/bronze/{name}')"
        )
        cursor.fetchall()
        cursor.execute(f"SELECT count(*), sum(v), count(DISTINCT sensor) FROM bronze.{name}")
        assert cursor.fetchall() == [[50, sum(r[2] for r in rows), 3]]
    finally:
        cursor.execute(f"DROP TABLE IF EXISTS bronze.{name}")  # drops the files too: the table is managed now
        cursor.fetchall()
        connection.close()
        client = minio.client(platform)
        for obj in client.list_objects("lake", prefix=f"bronze/{name}/", recursive=True):
            client.remove_object("lake", obj.object_name)


def test_spark_reads_kafka(spark: SparkSession, platform: InfraSettings) -> None:
    topic = "edge.packages.v1"
    marker = uuid.uuid4().hex
    producer = Producer({"bootstrap.servers": platform.kafka_bootstrap, "acks": "all"})
    offsets: list[tuple[int, int]] = []

    def delivered(err: KafkaError | None, msg: Message) -> None:
        partition, offset = msg.partition(), msg.offset()
        assert err is None, err
        assert partition is not None
        assert offset is not None
        offsets.append((partition, offset))

    for i in range(3):
        producer.produce(topic, key=b"spark-it", value=f"{marker}-{i}".encode(), on_delivery=delivered)
    assert producer.flush(30) == 0
    partition = offsets[0][0]
    frame = (
        spark.read.format("kafka")
        .option("kafka.bootstrap.servers", platform.kafka_bootstrap)
        .option("assign", f'{{"{topic}": [{partition}]}}')
        .option("startingOffsets", f'{{"{topic}": {{"{partition}": {min(o for _, o in offsets)}}}}}')
        .option("endingOffsets", "latest")
        .load()
    )
    values = {r.value.decode() for r in frame.selectExpr("CAST(value AS BINARY) AS value").collect()}
    assert {f"{marker}-{i}" for i in range(3)} <= values
