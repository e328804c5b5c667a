"""Local development stack: a real Kafka broker (KRaft) and a MongoDB-wire server on loopback."""
