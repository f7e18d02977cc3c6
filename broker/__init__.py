"""The MQTT client set-up shared by the gateway and ingest (`broker.mqtt`). Imports only `core`."""
