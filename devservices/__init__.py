"""PostgreSQL and Mosquitto for a machine that has neither: what `make demo`, the benchmarks and
the test session start when the services are absent. Not used in production."""
