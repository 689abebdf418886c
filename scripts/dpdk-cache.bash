# Sourced by scripts/dpdk-root and scripts/dpdk-build: the build cache they share.

# Where builds live: $HOWTO_CACHE/dpdk (default ~/.cache/howto-conformance/dpdk).
dpdk_cache="${HOWTO_CACHE:-$HOME/.cache/howto-conformance}/dpdk"

# Hold the cache's lock until the calling script exits: two set-ups at once (CI and a
# developer) make a build once; the second waits, then finds it done.
lock_dpdk_cache() {
    mkdir -p "$dpdk_cache"
    exec 9>"$dpdk_cache/.lock"
    flock 9
}

# The DPDK release a testpmd reports in its banner ("24.11.3", "24.11.0-rc1"), or nothing.
# It is asked without hugepages or devices; its runtime directory is removed after.
testpmd_release() {
    local binary=$1 prefix="hcrel$$"
    "$binary" -v --no-huge --no-pci --no-shconf -m 64 --file-prefix "$prefix" -- --help 2>&1 \
        | sed -n "s/.*RTE Version: 'DPDK \([0-9.rc-]*\)'.*/\1/p" | head -n 1
    rm -rf "/var/run/dpdk/$prefix"
}
