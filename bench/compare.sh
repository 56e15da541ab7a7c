#!/usr/bin/env bash
# Side-by-side benchmark: rtm, the bare tokio-tungstenite relay, nats-server
# (WebSocket listener) and socket.io, one after another on this machine with
# the same client counts and rates: fanout-max (the most deliveries/s each
# sustains to one channel, nothing lost), fanout at a fixed rate (latency),
# peer round trips and idle connections (memory). Writes bench/results/<date>.{json,md} and
# bench/results/latest.{json,md}, and prints the table. Then call invitations,
# rtm only (the references have none): bench/results/invite-latest.json.
#
#   bench/compare.sh                       # the defaults below
#   FANOUT_CLIENTS=2000 FANOUT_RATE=20 bench/compare.sh
#
# Run it on a quiet machine: the numbers are only comparable within one run.
set -euo pipefail
cd "$(dirname "$0")/.."

FANOUT_CLIENTS=${FANOUT_CLIENTS:-1000}   # channel members
FANOUT_RATE=${FANOUT_RATE:-200}          # publishes/s → deliveries/s ≈ rate × (members − 1)
FANOUT_WINDOW=${FANOUT_WINDOW:-1024}     # fanout-max: messages ahead of the slowest member
PEER_CLIENTS=${PEER_CLIENTS:-200}        # 100 pairs
PEER_RATE=${PEER_RATE:-5000}             # round trips/s in total
CONNECT_CLIENTS=${CONNECT_CLIENTS:-10000}
INVITE_PAIRS=${INVITE_PAIRS:-100}        # callers, each ringing its own callee
INVITE_RATE=${INVITE_RATE:-5000}         # invitations/s in total
DURATION=${DURATION:-10}
TARGETS=${TARGETS:-rtm,bare,nats,socketio}

need() { command -v "$1" >/dev/null 2>&1; }
if ! need nats-server; then
    echo "== installing nats-server"
    apt-get update -qq && apt-get install -y -qq nats-server
fi
if ! need node; then
    echo "== installing nodejs and npm"
    apt-get update -qq && apt-get install -y -qq nodejs npm
fi
echo "== npm ci in bench/peers"
(cd bench/peers && npm ci --no-audit --no-fund --silent)
echo "== cargo build --release"
cargo build --release --quiet
RTM=target/release/rtm

"$RTM" bench compare --targets "$TARGETS" --scenarios fanout-max,fanout,peer,connect \
    --window "$FANOUT_WINDOW" \
    --clients "$FANOUT_CLIENTS" --rate "$FANOUT_RATE" \
    --peer-clients "$PEER_CLIENTS" --peer-rate "$PEER_RATE" \
    --connect-clients "$CONNECT_CLIENTS" --duration "$DURATION" --out bench/results

echo "== invite against rtm ($INVITE_PAIRS pairs, $INVITE_RATE/s)"
"$RTM" bench invite --pairs "$INVITE_PAIRS" --rate "$INVITE_RATE" --duration "$DURATION" \
    --json bench/results/invite-latest.json
