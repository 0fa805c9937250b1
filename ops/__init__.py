"""The roof: the ``nxem`` command line, the demo, the configuration doc and the local service
runner (Mosquitto, Kafka, PostgreSQL on loopback). It may import every package; nothing but
tests and benchmarks imports it (tests/unit/test_layers.py)."""
