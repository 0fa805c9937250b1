"""Local service runner: installs and starts Mosquitto, Kafka (KRaft) and PostgreSQL without Docker."""
