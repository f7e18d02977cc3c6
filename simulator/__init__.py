"""Simulated homes for `make demo`, tests and benchmarks: virtual BLE devices that speak the real
GATT profiles (`simulator.virtual_*`), clinical scenarios and the `hemma simulate` runner
(`simulator.homes`). Not part of any shipped service."""
