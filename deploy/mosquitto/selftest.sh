#!/usr/bin/env bash
# Start a throw-away Mosquitto with deploy/mosquitto/mosquitto.conf and acl, then run verify_acl.py
# against it. Use it after editing the config or the ACL, before deploying them.
#
#   deploy/mosquitto/selftest.sh            # plain listeners only
#   deploy/mosquitto/selftest.sh --tls      # the gateway listener with TLS (a throw-away CA, needs openssl)
#   deploy/mosquitto/selftest.sh --debug    # further arguments go to verify_acl.py (--debug logs every packet)
#
# The copy differs from the production file only in what a test needs: paths under a temporary
# directory, both listeners on free ports bound to 127.0.0.1, a password file with six test
# accounts, and (without --tls) no certfile/keyfile/tls_version lines. Every other line, and
# the ACL, are used as they are. Nothing outside the temporary directory is touched, and only
# the mosquitto process this script starts is stopped.
#
# verify_acl.py runs twice: as an operator runs it against a live broker (hemma-verify plays
# ingest), and then as hemma-ingest itself (--throwaway-broker), which is safe only here.
# tests/test_broker_config.py runs this script.
#
# Environment: MOSQUITTO (default: mosquitto on PATH or /usr/sbin/mosquitto), MOSQUITTO_PASSWD,
# PYTHON (an interpreter with paho-mqtt >= 2; default python3).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
tls=false
if [[ "${1:-}" == "--tls" ]]; then
    tls=true
    shift
fi

mosquitto="${MOSQUITTO:-$(command -v mosquitto || echo /usr/sbin/mosquitto)}"
mosquitto_passwd="${MOSQUITTO_PASSWD:-$(command -v mosquitto_passwd || echo /usr/bin/mosquitto_passwd)}"
python="${PYTHON:-python3}"
[[ -x "$mosquitto" ]] || { echo "mosquitto not found (set MOSQUITTO)" >&2; exit 2; }
[[ -x "$mosquitto_passwd" ]] || { echo "mosquitto_passwd not found (set MOSQUITTO_PASSWD)" >&2; exit 2; }

tmp="$(mktemp -d /tmp/hemma-mosquitto-selftest.XXXXXX)"
pid=""
cleanup() {
    if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
        kill "$pid"
        wait "$pid" 2>/dev/null || true
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT

read -r port_services port_gateways < <("$python" - <<'EOF'
import socket
socks = [socket.socket() for _ in range(2)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in socks))
EOF
)

mkdir -p "$tmp/data" "$tmp/certs"
cp "$here/acl" "$tmp/acl"
gw_pw="gw-$RANDOM$RANDOM"; other_pw="ot-$RANDOM$RANDOM"; ingest_pw="in-$RANDOM$RANDOM"
verify_pw="ve-$RANDOM$RANDOM"; notifier_pw="no-$RANDOM$RANDOM"; monitor_pw="mo-$RANDOM$RANDOM"
"$mosquitto_passwd" -c -b "$tmp/passwd" selftest-gw-a "$gw_pw"
"$mosquitto_passwd" -b "$tmp/passwd" selftest-gw-b "$other_pw"
"$mosquitto_passwd" -b "$tmp/passwd" hemma-ingest "$ingest_pw"
"$mosquitto_passwd" -b "$tmp/passwd" hemma-verify "$verify_pw"
"$mosquitto_passwd" -b "$tmp/passwd" hemma-notifier "$notifier_pw"
"$mosquitto_passwd" -b "$tmp/passwd" hemma-monitor "$monitor_pw"

verify_tls=()
if $tls; then
    openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj "/CN=Hemma selftest CA" \
        -keyout "$tmp/certs/ca.key" -out "$tmp/certs/ca.crt" 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" \
        -keyout "$tmp/certs/server.key" -out "$tmp/certs/server.csr" 2>/dev/null
    printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' > "$tmp/certs/san.ext"
    openssl x509 -req -in "$tmp/certs/server.csr" -CA "$tmp/certs/ca.crt" -CAkey "$tmp/certs/ca.key" \
        -CAcreateserial -days 1 -extfile "$tmp/certs/san.ext" -out "$tmp/certs/server.crt" 2>/dev/null
    verify_tls=(--tls --cafile "$tmp/certs/ca.crt")
fi

sed -e "s#/mosquitto/config/#$tmp/#g" \
    -e "s#/mosquitto/data/#$tmp/data/#g" \
    -e "s#/mosquitto/certs/#$tmp/certs/#g" \
    -e "s#^listener 1883\$#listener $port_services 127.0.0.1#" \
    -e "s#^listener 8883\$#listener $port_gateways 127.0.0.1#" \
    -e "s#^log_dest stdout\$#log_dest file $tmp/mosquitto.log#" \
    "$here/mosquitto.conf" > "$tmp/mosquitto.conf"
if ! $tls; then
    sed -i -e '/^certfile /d' -e '/^keyfile /d' -e '/^tls_version /d' "$tmp/mosquitto.conf"
fi
grep -q "^listener $port_services 127.0.0.1\$" "$tmp/mosquitto.conf" || { echo "service listener not rewritten" >&2; exit 2; }
grep -q "^listener $port_gateways 127.0.0.1\$" "$tmp/mosquitto.conf" || { echo "gateway listener not rewritten" >&2; exit 2; }

# Started as root, mosquitto drops to the "mosquitto" user, which must read the files and write data/.
if [[ "$(id -u)" == 0 ]] && id mosquitto >/dev/null 2>&1; then
    chown -R mosquitto: "$tmp"
    chmod 0600 "$tmp/passwd"
fi

"$mosquitto" -c "$tmp/mosquitto.conf" &
pid=$!
for _ in $(seq 50); do
    if "$python" -c "import socket,sys; [socket.create_connection(('127.0.0.1', p), 0.2).close() for p in sys.argv[1:]]" \
        "$port_services" "$port_gateways" 2>/dev/null; then
        break
    fi
    kill -0 "$pid" 2>/dev/null || { echo "mosquitto exited during start-up:" >&2; cat "$tmp/mosquitto.log" >&2 || true; exit 1; }
    sleep 0.1
done
echo "mosquitto $("$mosquitto" -h 2>/dev/null | head -1 | awk '{print $3}') pid $pid:" \
     "service listener 127.0.0.1:$port_services, gateway listener 127.0.0.1:$port_gateways$($tls && echo ' (TLS)')"
echo "--- broker log (start-up) ---"
cat "$tmp/mosquitto.log"
echo "-----------------------------"

status=0
verify() {  # verify() <ingest account> <its password> [verify_acl.py arguments]
    local account="$1" password="$2"
    shift 2
    echo "=== verify_acl.py with $account as ingest ==="
    HEMMA_VERIFY_GATEWAY_PASSWORD="$gw_pw" HEMMA_VERIFY_OTHER_GATEWAY_PASSWORD="$other_pw" \
    HEMMA_VERIFY_INGEST_PASSWORD="$password" \
    HEMMA_VERIFY_NOTIFIER_PASSWORD="$notifier_pw" HEMMA_VERIFY_MONITOR_PASSWORD="$monitor_pw" \
    "$python" "$here/verify_acl.py" --host 127.0.0.1 --port "$port_gateways" "${verify_tls[@]}" \
        --services-port "$port_services" \
        --gateway selftest-gw-a --other-gateway selftest-gw-b \
        --ingest "$account" --notifier hemma-notifier --monitor hemma-monitor "$@" || status=$?
}
verify hemma-verify "$verify_pw" "$@"
verify hemma-ingest "$ingest_pw" --throwaway-broker "$@"

kill -0 "$pid" 2>/dev/null || { echo "mosquitto is no longer running" >&2; status=1; }
exit $status
