"""The home gateway: BLE vital-sign devices in, durable MQTT batches out.

    BleCentral (bleak) -> NotificationDecoder (device_profiles) -> MeasurementBatch
        -> StoreAndForwardQueue (SQLite) -> Publisher (paho, QoS 1) -> broker

* `gateway.ble` — scan, recognise devices by catalogue profile, keep them connected.
* `gateway.decoding` — one GATT value to one contract `Measurement`, with counters.
* `gateway.queue` — the store-and-forward queue on disk.
* `gateway.publisher` — drains that queue to the broker from one thread.
* `gateway.service` — `Gateway`, and `run(settings)` for `hemma gateway`.
* `gateway.virtual_radio`, `gateway.virtual_devices` — a fake bleak backend of virtual devices.
* `gateway.scenarios`, `gateway.simulator` — simulated patients, and `run()` for `hemma simulate`.

Runs on a Raspberry Pi with the base install plus bleak: no psycopg, FastAPI or numpy here.
"""

__version__ = "0.1.0"
SOFTWARE = f"hemma-gateway/{__version__}"
