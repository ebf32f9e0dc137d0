"""File and FTP batch pickup: dropped CSV/Parquet files of readings become edge packages on Kafka."""
