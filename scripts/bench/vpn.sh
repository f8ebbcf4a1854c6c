#!/usr/bin/env bash
# VPN throughput and latency, side by side in one run: raw veth, a wireguard-go tunnel and a den
# tunnel between two network namespaces joined by a veth pair. Each is measured RUNS times with
# iperf3 (one TCP stream, SECS seconds) and ping (20 × 0.05 s, the run's figure is the median of
# its 20 round trips); the summary prints min / median / max over the runs and den's ratios to
# wireguard-go.
#
# usage: scripts/bench/vpn.sh [-n RUNS] [-t SECS] [-o veth,wg,den]
# Needs root. Installs iperf3, wireguard-go, wireguard-tools, jq and ping with apt when missing.
# Everything it makes (namespaces, daemons, temp dirs) is removed on exit; every traffic
# generator runs under `timeout`.
set -euo pipefail
unset RUST_BACKTRACE

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
RUNS=3
SECS=10
ONLY=veth,wg,den
while getopts "n:t:o:" o; do
  case $o in
    n) RUNS=$OPTARG ;;
    t) SECS=$OPTARG ;;
    o) ONLY=$OPTARG ;;
    *) sed -n '7,10p' "$0"; exit 2 ;;
  esac
done
[ "$(id -u)" = 0 ] || { echo "vpn.sh: needs root (network namespaces, TUN devices)" >&2; exit 2; }
wants() { [[ ",$ONLY," == *",$1,"* ]]; }

missing=()
for pair in iperf3:iperf3 wireguard-go:wireguard-go wg:wireguard-tools jq:jq ping:iputils-ping; do
  command -v "${pair%%:*}" >/dev/null || missing+=("${pair#*:}")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "# installing ${missing[*]}" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
SHIM=$ROOT/dist/shim/libden_tun-linux-$(uname -m).so
[ -f "$SHIM" ] || bash "$ROOT/scripts/build-shim" >/dev/null

ID=$$
NS_A=denbA$ID
NS_B=denbB$ID
UNDER_A=10.230.0.1
UNDER_B=10.230.0.2
WG_A=10.231.0.1
WG_B=10.231.0.2
DEN_PREFIX=100.92.0.0/24
DEN_A=100.92.0.1
DEN_B=100.92.0.2
TMP=$(mktemp -d /tmp/den-bench-vpn.XXXXXX)
PIDS=()
RESULTS=$TMP/results.tsv

cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  ip netns del "$NS_A" 2>/dev/null || true
  ip netns del "$NS_B" 2>/dev/null || true
  rm -f "/var/run/wireguard/wbA$ID.sock" "/var/run/wireguard/wbB$ID.sock"
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

nsx() { local ns=$1; shift; ip netns exec "$ns" "$@"; }

ip netns add "$NS_A"
ip netns add "$NS_B"
ip link add "vbA$ID" netns "$NS_A" type veth peer name "vbB$ID" netns "$NS_B"
nsx "$NS_A" ip addr add "$UNDER_A/24" dev "vbA$ID"
nsx "$NS_B" ip addr add "$UNDER_B/24" dev "vbB$ID"
for ns in "$NS_A" "$NS_B"; do
  nsx "$ns" ip link set lo up
  nsx "$ns" ip link set "$( [ "$ns" = "$NS_A" ] && echo "vbA$ID" || echo "vbB$ID")" up
done

# measure LABEL DST: RUNS × (iperf3 TCP, ping), one line per figure into $RESULTS
measure() {
  local label=$1 dst=$2 run gbps rtt
  for run in $(seq "$RUNS"); do
    timeout $((SECS + 25)) ip netns exec "$NS_B" iperf3 -s -1 -B "$dst" >"$TMP/srv.log" 2>&1 &
    local srv=$!
    for _ in $(seq 50); do
      nsx "$NS_B" ss -Hltn "sport = :5201" | grep -q . && break
      sleep 0.1
    done
    gbps=$(timeout $((SECS + 15)) ip netns exec "$NS_A" iperf3 -c "$dst" -t "$SECS" -J |
      jq '.end.sum_received.bits_per_second / 1e9' 2>/dev/null || echo 0)
    wait "$srv" 2>/dev/null || true
    # the median of the run's 20 round trips: one stall of this noisy machine does not decide it
    rtt=$(timeout 20 ip netns exec "$NS_A" ping -n -c 20 -i 0.05 -w 15 "$dst" |
      sed -n 's/.*time=\([0-9.]*\) ms.*/\1/p' | sort -g |
      awk '{ v[NR] = $1 } END { if (NR) print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }')
    printf '%s\ttcp_gbps\t%s\n%s\tping_ms\t%s\n' "$label" "${gbps:-0}" "$label" "${rtt:-nan}" |
      tee -a "$RESULTS" | sed 's/^/# /' >&2
    sleep 1
  done
}

wg_up() {
  mkdir -p "$TMP/wg" /var/run/wireguard
  for s in A B; do
    (umask 077; wg genkey >"$TMP/wg/$s.key")
    wg pubkey <"$TMP/wg/$s.key" >"$TMP/wg/$s.pub"
  done
  for s in A B; do
    local ns=denb$s$ID
    WG_PROCESS_FOREGROUND=1 timeout 3600 ip netns exec "$ns" wireguard-go -f "wb$s$ID" \
      >"$TMP/wg/$s.log" 2>&1 &
    PIDS+=($!)
  done
  for _ in $(seq 50); do
    [ -S "/var/run/wireguard/wbA$ID.sock" ] && [ -S "/var/run/wireguard/wbB$ID.sock" ] && break
    sleep 0.1
  done
  nsx "$NS_A" wg set "wbA$ID" private-key "$TMP/wg/A.key" listen-port 51820 \
    peer "$(cat "$TMP/wg/B.pub")" allowed-ips "$WG_B/32" endpoint "$UNDER_B:51820"
  nsx "$NS_B" wg set "wbB$ID" private-key "$TMP/wg/B.key" listen-port 51820 \
    peer "$(cat "$TMP/wg/A.pub")" allowed-ips "$WG_A/32" endpoint "$UNDER_A:51820"
  nsx "$NS_A" ip addr add "$WG_A/24" dev "wbA$ID"
  nsx "$NS_B" ip addr add "$WG_B/24" dev "wbB$ID"
  nsx "$NS_A" ip link set "wbA$ID" mtu 1420 up
  nsx "$NS_B" ip link set "wbB$ID" mtu 1420 up
  nsx "$NS_A" ping -n -q -c 3 -i 0.2 -w 5 "$WG_B" >/dev/null
}

wg_down() {
  nsx "$NS_A" ip link del "wbA$ID" 2>/dev/null || true
  nsx "$NS_B" ip link del "wbB$ID" 2>/dev/null || true
}

DEN=(deno run --quiet --unstable-net --allow-all "$ROOT/main.ts")

den_up() {
  local s under fp
  for s in A B; do
    under=$UNDER_A
    [ $s = B ] && under=$UNDER_B
    "${DEN[@]}" init --home "$TMP/den$s" --name "bench$s" --no-passphrase \
      --listen "$under:7834" --metrics off >/dev/null 2>&1
  done
  for s in A B; do
    local other=B addr=$DEN_A peer_under=$UNDER_B
    [ $s = B ] && { other=A; addr=$DEN_B; peer_under=$UNDER_A; }
    fp=$(jq -r .fingerprint "$TMP/den$other/identity.pub")
    cat >>"$TMP/den$s/config.toml" <<EOF2

[[peers]]
name = "bench$other"
address = "$peer_under:7834"
fingerprint = "$fp"

[networks.bench]
prefix = "$DEN_PREFIX"
address = "$addr"
EOF2
  done
  for s in A B; do
    timeout 3600 ip netns exec "denb$s$ID" "${DEN[@]}" daemon --home "$TMP/den$s" \
      >"$TMP/den$s.log" 2>&1 &
    PIDS+=($!)
  done
  for _ in $(seq 150); do
    nsx "$NS_A" ping -n -q -c 1 -W 1 "$DEN_B" >/dev/null 2>&1 && return 0
    sleep 0.2
  done
  echo "vpn.sh: the den tunnel did not come up; daemon logs:" >&2
  tail -n 20 "$TMP/denA.log" "$TMP/denB.log" >&2
  return 1
}

# The path den's packets take, as `den peers` shows it: udp (direct), tcp or relay.
den_path() {
  "${DEN[@]}" peers --json --home "$TMP/denA" | jq -r '.[0].data_path // "?"'
}

den_wait_direct() {
  for _ in $(seq 50); do
    nsx "$NS_A" ping -n -q -c 1 -W 1 "$DEN_B" >/dev/null 2>&1 || true
    [ "$(den_path)" = udp ] && return 0
    sleep 0.2
  done
  echo "vpn.sh: warning: no direct path; measuring the $(den_path) path" >&2
  "${DEN[@]}" vpn status --home "$TMP/denA" >&2 || true
  tail -n 15 "$TMP/denA.log" "$TMP/denB.log" >&2
}

echo "# vpn.sh: $RUNS runs × (iperf3 TCP ${SECS} s, ping 20 × 0.05 s); $(nproc) cores" >&2
if wants veth; then
  echo "# raw veth" >&2
  measure veth "$UNDER_B"
fi
if wants wg; then
  echo "# wireguard-go $(dpkg-query -W -f '${Version}' wireguard-go 2>/dev/null || echo '?')" >&2
  wg_up
  measure wireguard-go "$WG_B"
  wg_down
fi
if wants den; then
  den_up
  den_wait_direct
  echo "# den ($(den_path) path)" >&2
  measure den "$DEN_B"
fi

# summary: min / median / max per label and figure, then den's ratios to wireguard-go
stats() { # label figure → "min median max"
  awk -F'\t' -v l="$1" -v f="$2" '$1 == l && $2 == f { print $3 }' "$RESULTS" | sort -g |
    awk '{ v[NR] = $1 } END { if (NR == 0) { print "nan nan nan"; exit }
      m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; print v[1], m, v[NR] }'
}
echo
printf '%-14s %28s   %28s\n' "" "TCP Gbit/s min/median/max" "ping RTT ms min/median/max"
for label in veth wireguard-go den; do
  grep -q "^$label	" "$RESULTS" 2>/dev/null || continue
  read -r tmin tmed tmax <<<"$(stats "$label" tcp_gbps)"
  read -r pmin pmed pmax <<<"$(stats "$label" ping_ms)"
  printf '%-14s %8.3f %8.3f %8.3f     %8.3f %8.3f %8.3f\n' "$label" \
    "$tmin" "$tmed" "$tmax" "$pmin" "$pmed" "$pmax"
done
if grep -q "^den	" "$RESULTS" && grep -q "^wireguard-go	" "$RESULTS"; then
  read -r _ dt _ <<<"$(stats den tcp_gbps)"
  read -r _ wt _ <<<"$(stats wireguard-go tcp_gbps)"
  read -r _ dp _ <<<"$(stats den ping_ms)"
  read -r _ wp _ <<<"$(stats wireguard-go ping_ms)"
  awk -v dt="$dt" -v wt="$wt" -v dp="$dp" -v wp="$wp" 'BEGIN {
    printf "den / wireguard-go: throughput %.2f× (median), ping RTT %.2f× (median; lower is better)\n",
      (wt > 0 ? dt / wt : 0), (wp > 0 ? dp / wp : 0) }'
fi
