"""The home gateway: BLE vital-sign devices in, durable MQTT batches out.

    BleCentral (bleak) -> NotificationDecoder (device_profiles) -> MeasurementBatch
        -> StoreAndForwardQueue (SQLite) -> Publisher (paho, QoS 1) -> broker

* `gateway.ble` — scan, recognise devices by catalogue profile, keep them connected.
* `gateway.connect_steps` — a profile's connect steps: set clocks, read features, subscribe,
  ask a meter for its stored records (RACP).
* `gateway.decoding` — one GATT value to one contract `Measurement`, with counters.
* `gateway.rate_limit` — streams (BCI, PLX Continuous, Heart Rate) to one measurement per interval.
* `gateway.queue` — the store-and-forward queue on disk.
* `gateway.publisher` — drains that queue to the broker from one thread.
* `gateway.box` — the box's button ("kontakta mig", a contact request through the queue) and its
  light (a request waiting for its receipt; a planned measurement due); gpiozero on a Pi.
* `gateway.service` — `Gateway`, and `run(settings)` for `hemma gateway`.
* `simulator.virtual_radio`, `simulator.virtual_peripheral` — a fake bleak backend of virtual devices;
  `simulator.virtual_models`, `simulator.virtual_devices` — device models (A&D, glucose meter,
  BerryMed) and the home kit built from catalogue profiles.
* `simulator.virtual_box` — a fake button and light for the box (tests, the demo).
* `simulator.scenarios`, `simulator.homes` — simulated patients, and `run()` for `hemma simulate`.

Runs on a Raspberry Pi with the base install plus bleak: no psycopg, FastAPI or numpy here.
"""

__version__ = "0.1.0"
SOFTWARE = f"hemma-gateway/{__version__}"
