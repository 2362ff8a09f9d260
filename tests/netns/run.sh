#!/usr/bin/env bash
# Multicast, broadcast and IPv6 link-local between two network namespaces joined by a veth
# pair, with the real `rosco` binary on both sides. Creates and removes its own namespaces
# (needs root); prints a clear skip message and exits 0 where the kernel refuses them.
#
#   tests/netns/run.sh [path/to/rosco]
set -euo pipefail
ROSCO=${1:-${ROSCO_BIN:-target/debug/rosco}}
ROSCO=$(realpath "$ROSCO")
A=rosco-ns-a-$$
B=rosco-ns-b-$$
ADDR_A=10.231.7.1
ADDR_B=10.231.7.2
GROUP=239.255.42.7
WORK=$(mktemp -d)

cleanup() {
    ip netns del "$A" 2>/dev/null || true
    ip netns del "$B" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

if [ "$(id -u)" -ne 0 ] || ! ip netns add "$A" 2>/dev/null; then
    echo "netns: SKIPPED: creating network namespaces needs root and a kernel that allows it"
    exit 0
fi
ip netns add "$B"
ip link add "va-$$" netns "$A" type veth peer name "vb-$$" netns "$B"
ip -n "$A" addr add "$ADDR_A/24" dev "va-$$"
ip -n "$B" addr add "$ADDR_B/24" dev "vb-$$"
for ns in "$A" "$B"; do
    ip -n "$ns" link set lo up
done
ip -n "$A" link set "va-$$" up multicast on
ip -n "$B" link set "vb-$$" up multicast on
# Multicast and 255.255.255.255 leave through the veth.
ip -n "$A" route add 224.0.0.0/4 dev "va-$$"
ip -n "$B" route add 224.0.0.0/4 dev "vb-$$"
ip -n "$A" route add default dev "va-$$"

passed=0
failed=0
check() { # name, expected line, file
    if grep -qF -- "$2" "$3"; then
        echo "ok: $1"
        passed=$((passed + 1))
    else
        echo "FAILED: $1 (expected '$2' in $3):"
        cat "$3" "$3.err" 2>/dev/null | sed 's/^/    /'
        failed=$((failed + 1))
    fi
}

# Waits until a dump's stderr says it is listening.
wait_listening() {
    for _ in $(seq 100); do
        grep -q "listening on" "$1" 2>/dev/null && return 0
        sleep 0.05
    done
    echo "a dump did not start: $(cat "$1")"
    return 1
}

# Multicast: two receivers in B share the group's port; a third in A (loopback on).
for i in 1 2; do
    ip netns exec "$B" "$ROSCO" dump --count 1 --timeout 10 "osc.udp://$GROUP:7000?iface=$ADDR_B" \
        > "$WORK/mc$i" 2> "$WORK/mc$i.err" &
done
ip netns exec "$A" "$ROSCO" dump --count 1 --timeout 10 "osc.udp://$GROUP:7000?iface=$ADDR_A" \
    > "$WORK/mc-local" 2> "$WORK/mc-local.err" &
for f in mc1 mc2 mc-local; do wait_listening "$WORK/$f.err"; done
ip netns exec "$A" "$ROSCO" send "osc.udp://$GROUP:7000?iface=$ADDR_A&ttl=2" /multi/cast is 7 group
wait
check "multicast reaches receiver 1 in the other namespace" "/multi/cast is 7 \"group\"" "$WORK/mc1"
check "multicast reaches receiver 2 sharing the port" "/multi/cast is 7 \"group\"" "$WORK/mc2"
check "multicast loops back to a receiver on the sender's host" "/multi/cast is 7 \"group\"" "$WORK/mc-local"

# Multicast with loopback off: the sender's own host does not hear it.
ip netns exec "$A" "$ROSCO" dump --count 1 --timeout 2 "osc.udp://$GROUP:7001?iface=$ADDR_A&loop=0" \
    > "$WORK/noloop" 2> "$WORK/noloop.err" &
ip netns exec "$B" "$ROSCO" dump --count 1 --timeout 10 "osc.udp://$GROUP:7001?iface=$ADDR_B" \
    > "$WORK/far" 2> "$WORK/far.err" &
wait_listening "$WORK/noloop.err"
wait_listening "$WORK/far.err"
ip netns exec "$A" "$ROSCO" send "osc.udp://$GROUP:7001?iface=$ADDR_A&loop=0" /quiet i 1
wait || true
check "loop=0 still reaches the other namespace" "/quiet i 1" "$WORK/far"
if grep -q "/quiet" "$WORK/noloop"; then
    echo "FAILED: loop=0 delivered to the sender's own host"
    failed=$((failed + 1))
else
    echo "ok: loop=0 keeps it off the sender's own host"
    passed=$((passed + 1))
fi

# Broadcast: subnet broadcast and 255.255.255.255 to a listener in B.
for target in 10.231.7.255 255.255.255.255; do
    ip netns exec "$B" "$ROSCO" dump --count 1 --timeout 10 "osc.udp://:7002" \
        > "$WORK/bc-$target" 2> "$WORK/bc-$target.err" &
    wait_listening "$WORK/bc-$target.err"
    ip netns exec "$A" "$ROSCO" send "osc.udp://$target:7002" /broad/cast s "$target"
    wait
    check "broadcast to $target" "/broad/cast s \"$target\"" "$WORK/bc-$target"
done

# Unicast across the namespaces, both transports.
ip netns exec "$B" "$ROSCO" dump --count 1 --timeout 10 "osc.tcp://:7003" > "$WORK/tcp" 2> "$WORK/tcp.err" &
wait_listening "$WORK/tcp.err"
ip netns exec "$A" "$ROSCO" send "osc.tcp://$ADDR_B:7003" /across f 1.5
wait
check "TCP across namespaces" "/across f 1.500000" "$WORK/tcp"

# IPv6 link-local across the veth: the address needs its zone (the interface), given in
# the URL as liblo and getaddrinfo take it (%25 is RFC 6874's spelling of the '%').
# A second link in A (a veth pair of its own, also on fe80::/64) makes the zone matter:
# without it the kernel could take either.
if ip -n "$A" addr add fe80::a/64 dev "va-$$" nodad 2>/dev/null &&
    ip -n "$B" addr add fe80::b/64 dev "vb-$$" nodad 2>/dev/null; then
    ip link add "vx-$$" netns "$A" type veth peer name "vy-$$" netns "$A"
    ip -n "$A" addr add fe80::d/64 dev "vx-$$" nodad
    ip -n "$A" link set "vx-$$" up
    ip -n "$A" link set "vy-$$" up
    ip netns exec "$B" "$ROSCO" dump --count 2 --timeout 10 "osc.udp://:7004" \
        > "$WORK/ll" 2> "$WORK/ll.err" &
    wait_listening "$WORK/ll.err"
    ip netns exec "$A" "$ROSCO" send "osc.udp://[fe80::b%25va-$$]:7004" /link/local i 6
    ip netns exec "$A" "$ROSCO" send "osc.udp://[fe80::b%va-$$]:7004" /link/local i 7
    wait || true # a miss is reported by the check below
    check "IPv6 link-local with its zone (%25)" "/link/local i 6" "$WORK/ll"
    check "IPv6 link-local with its zone (%)" "/link/local i 7" "$WORK/ll"
    ip netns exec "$B" "$ROSCO" dump --count 1 --timeout 10 "osc.tcp://:7005" \
        > "$WORK/ll-tcp" 2> "$WORK/ll-tcp.err" &
    wait_listening "$WORK/ll-tcp.err"
    ip netns exec "$A" "$ROSCO" send "osc.tcp://[fe80::b%25va-$$]:7005" /link/tcp i 8
    wait || true # a miss is reported by the check below
    check "IPv6 link-local over TCP with its zone" "/link/tcp i 8" "$WORK/ll-tcp"
    if ip netns exec "$A" "$ROSCO" send "osc.udp://[fe80::b%25nosuchif]:7004" /x 2> "$WORK/ll-bad"; then
        echo "FAILED: a zone naming no interface was accepted"
        failed=$((failed + 1))
    else
        check "a zone naming no interface is refused" "no interface named 'nosuchif'" "$WORK/ll-bad"
    fi
else
    echo "netns: IPv6 link-local SKIPPED: the namespaces have no IPv6"
fi

echo "netns: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
