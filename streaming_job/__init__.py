"""The clickpulse Spark Structured Streaming job: Kafka -> validate -> dedup -> windows -> MongoDB."""
