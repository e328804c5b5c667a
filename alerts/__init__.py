"""clickpulse-alerts: watches what the job records (MongoDB) and Kafka, and tells people when the pipeline is unwell."""
