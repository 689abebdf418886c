"""The built-in guest: the host's kernel plus an initramfs built from the host's own files.

No guest image can be downloaded in a lab, and a disk image would need a package manager
inside. An initramfs collected from the host is small (about 10 MB gz), builds in seconds and
always holds the same dpdk-testpmd as the host: static busybox, testpmd with every library
ldd lists, a PMD plugin dir trimmed to what the guides use, the kernel modules DPDK needs,
and an /init that binds every guest NIC to uio_pci_generic (vfio-pci in a guest with a
vIOMMU) and gives a shell on ttyS1 (ttyS0 stays free for testpmd).

The build runs on the host through its Session; the result is cached on the host under a
key made of every input, so an unchanged host reuses it in well under a second.
"""

from __future__ import annotations

import hashlib
import logging
import shlex
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from framework.config.model import DEFAULT_TESTPMD
from framework.container import image as container_image
from framework.errors import CommandFailed, FrameworkError

if TYPE_CHECKING:
    from framework.remote.session import Session

log = logging.getLogger("howto.virt")

# Bump when _INIT or _BUILD_SCRIPT change what ends up in the initramfs.
INIT_VERSION = "7"

DEFAULT_CACHE_DIR = "~/.cache/howto-conformance/guest"

# EAL dlopen()s every *.so in the plugin dir: only what the guides' guests use.
# The container's set plus e1000, the NIC that stands in for guide 1's VF.
GUEST_PMDS: tuple[str, ...] = (*container_image.CONTAINER_PMDS, "net_e1000")

# Loaded in this order, each after its dependencies (modprobe --show-depends resolves them
# at build time; the guest has no modprobe or modules.dep). virtio_pci/virtio_net are left
# out on purpose: with no kernel driver bound, the NICs wait for uio_pci_generic. vfio is
# optional (only guests with a vIOMMU can use it: a topology VM's `viommu`) and skipped if
# the kernel lacks it.
GUEST_MODULES: tuple[str, ...] = (
    "uio",
    "uio_pci_generic",
    "tun",
    "tap",
    "vhost_iotlb",
    "vhost",
    "vhost_net",
)
OPTIONAL_MODULES: tuple[str, ...] = ("vfio", "vfio_iommu_type1", "vfio_pci")
# Copied in but loaded only when a test hands NICs to the kernel (howto-kernel-net): guide
# 2's guest forwarding with the kernel's virtio-net, as DPDK's migration plan also runs it.
# Loaded at boot they would claim every virtio NIC before uio_pci_generic could. Skipped
# if the kernel lacks them; howto-kernel-net then says so.
KERNEL_NET_MODULES: tuple[str, ...] = ("virtio_pci", "virtio_net")

# Copied in when the host has them (scripts/setup installs them). Guide 7 reads the tap's
# offloads (busybox has no ethtool), echoes UDP on the tap's address (busybox-static has no
# udpsvd) and measures TCP through the tap with iperf3 on both ends.
GUEST_TOOLS: tuple[str, ...] = ("ethtool", "socat", "iperf3")

# The guest kernel parameter naming the driver howto-bind binds NICs to (uio_pci_generic
# when absent): a guest with a vIOMMU gets vfio-pci. Dotted, so the kernel neither warns
# about it nor hands it to /init as an environment variable.
BIND_PARAM = "howto.bind"

SHELL_PROMPT = "guest# "
READY_LINE = "howto-guest: ready"

# The guest's /init. It must never exit (PID 1 exiting panics the kernel), so the shell on
# the console (ttyS1) is restarted in a loop.
_INIT = r"""#!/bin/sh
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/hugepages /tmp /run
mount -t devpts devpts /dev/pts
mount -t hugetlbfs hugetlbfs /dev/hugepages
mount -t tmpfs tmpfs /tmp
mount -t tmpfs tmpfs /run
ln -s /run /var/run 2>/dev/null
while read -r ko args; do
    [ -n "$ko" ] || continue
    insmod "/lib/howto-modules/$ko" $args || echo "howto-guest: insmod $ko failed"
done < /etc/howto-modules
howto-bind
hostname howto-guest
# Kernel messages would land in the middle of shell output on the console.
dmesg -n 1
echo "howto-guest: $(grep -c ^processor /proc/cpuinfo) cpus, $(grep HugePages_Total /proc/meminfo)"
echo "__READY__"
export PS1='__PROMPT__'
while :; do
    setsid cttyhack sh
    sleep 1
done
"""

# Bind NICs to uio_pci_generic (or the __BIND_PARAM__= driver of the kernel command
# line: vfio-pci behind a vIOMMU): all Ethernet-class devices, or the PCI addresses given
# (a NIC hot-plugged after boot). driver_override beats the id tables, and no kernel net
# driver is loaded, so nothing else claims them.
_BIND = r"""#!/bin/sh
drv=uio_pci_generic
for arg in $(cat /proc/cmdline); do
    case $arg in __BIND_PARAM__=*) drv=${arg#*=} ;; esac
done
if [ $# -eq 0 ]; then
    set --
    for d in /sys/bus/pci/devices/*; do
        [ "$(cat "$d/class")" = 0x020000 ] && set -- "$@" "${d##*/}"
    done
fi
rc=0
for a in "$@"; do
    d=/sys/bus/pci/devices/$a
    [ -e "$d" ] || { echo "howto-bind: no PCI device $a"; rc=1; continue; }
    [ -e "$d/driver" ] && echo "$a" > "$d/driver/unbind"
    echo "$drv" > "$d/driver_override"
    echo "$a" > /sys/bus/pci/drivers_probe
    if [ "$(basename "$(readlink "$d/driver")")" = "$drv" ]; then
        echo "howto-bind: $a -> $drv"
    else
        echo "howto-bind: $a not bound"; rc=1
    fi
done
exit $rc
"""

# Hand PCI NICs to the kernel's virtio-net: load its modules (listed at build time, not
# loaded at boot), take each device from uio/vfio, print "PCI IFNAME" per device. IPv6
# is off first: a new netdev's router solicitations and DAD would be the guest's own frames
# on the wire.
_KERNEL_NET = r"""#!/bin/sh
[ -s /etc/howto-modules-net ] || { echo "howto-kernel-net: this guest has no virtio_net"; exit 1; }
echo 1 > /proc/sys/net/ipv6/conf/default/disable_ipv6 2>/dev/null
echo 1 > /proc/sys/net/ipv6/conf/all/disable_ipv6 2>/dev/null
while read -r ko; do
    [ -d "/sys/module/${ko%.ko}" ] && continue
    insmod "/lib/howto-modules/$ko" || { echo "howto-kernel-net: insmod $ko failed"; exit 1; }
done < /etc/howto-modules-net
for a in "$@"; do
    d=/sys/bus/pci/devices/$a
    [ -e "$d" ] || { echo "howto-kernel-net: no PCI device $a"; exit 1; }
    [ -e "$d/driver" ] && echo "$a" > "$d/driver/unbind"
    echo virtio-pci > "$d/driver_override"
    echo "$a" > /sys/bus/pci/drivers_probe
done
for a in "$@"; do
    n=0
    while ! ls /sys/bus/pci/devices/$a/virtio*/net/ >/dev/null 2>&1; do
        n=$((n + 1))
        [ $n -gt 50 ] && { echo "howto-kernel-net: $a has no netdev"; exit 1; }
        sleep 0.1
    done
    echo "$a $(ls /sys/bus/pci/devices/$a/virtio*/net/)"
done
"""

# Read from stdin (bash -s) after _script_prelude(), so logs show the arguments, not pages
# of script. Arguments: MODE (key|build) CACHE KERNEL TESTPMD BUSYBOX KEY
#            -- MODULE... -- OPTIONAL_MODULE... -- KERNEL_NET_MODULE... -- TOOL... -- PMD...
#   TOOL : an executable copied in with its libraries when the host has it
#   key  : print every input (file hashes, module list) for the cache key; nothing written
#   build: write CACHE/KEY/{vmlinuz,initrd.img}
#   KERNEL_NET_MODULE: copied in, listed in /etc/howto-modules-net, not loaded at boot
# Values arrive as positional arguments only; nothing from a topology is spliced in.
_BUILD_SCRIPT = r"""
set -euo pipefail
mode=$1 cache=$2 kernel=$3 testpmd=$4 busybox=$5 key=$6 enter=$7
shift 7
[[ $1 == -- ]] && shift
mods=(); while (($#)) && [[ $1 != -- ]]; do mods+=("$1"); shift; done; (($#)) && shift
opts=(); while (($#)) && [[ $1 != -- ]]; do opts+=("$1"); shift; done; (($#)) && shift
later=(); while (($#)) && [[ $1 != -- ]]; do later+=("$1"); shift; done; (($#)) && shift
tools=(); while (($#)) && [[ $1 != -- ]]; do
    type -P -- "$1" >/dev/null && tools+=("$1"); shift
done; (($#)) && shift
pmds=("$@")
[[ $cache == "~/"* ]] && cache=$HOME/${cache#"~/"}

fail() { echo "howto-guest-image: $*" >&2; exit 3; }
if [[ $kernel == - ]]; then
    kernel=$(ls -1 /boot/vmlinuz-* 2>/dev/null | sort -V | tail -n 1 || true)
    [[ -n $kernel ]] || fail "no /boot/vmlinuz-* on $(hostname) (install linux-image-amd64)"
fi
[[ -r $kernel ]] || fail "kernel $kernel not readable"
kver=${kernel##*/vmlinuz-}
[[ -d /lib/modules/$kver ]] || fail "no /lib/modules/$kver for kernel $kernel"
[[ -x $busybox ]] || fail "no $busybox (install busybox-static)"
ldd "$busybox" >/dev/null 2>&1 && fail "$busybox is dynamically linked (install busybox-static)"

# Module files in load order, dependencies first, no duplicates; each with the list that
# loads it (boot: /etc/howto-modules, net: /etc/howto-modules-net).
declare -A seen=()
modfiles=() modlists=()
resolve() {
    local m=$1 optional=$2 list=$3 line out
    if ! out=$(modprobe -S "$kver" --show-depends "$m" 2>&1); then
        ((optional)) && return 0
        fail "kernel module $m not found for $kver: $out"
    fi
    while read -r line; do
        case $line in
            insmod\ *) line=${line#insmod }; line=${line%% *}
                [[ -n ${seen[$line]:-} ]] && continue
                seen[$line]=1; modfiles+=("$line"); modlists+=("$list") ;;
        esac
    done <<<"$out"
}
for m in "${mods[@]}"; do resolve "$m" 0 boot; done
for m in "${opts[@]}"; do resolve "$m" 1 boot; done
for m in "${later[@]}"; do resolve "$m" 1 net; done

# testpmd, its libraries and PMDs, and the tools: listed (MODE list, DIR -) or copied into
# DIR (MODE build). testpmd comes from its DPDK build's file system: the host's, or with
# `enter` a scripts/dpdk-root root (whose /tmp is the host's), copied over the host's
# tools so that its newer C library is the one the guest has.
collect() {
    local mode=$1 dir=$2
    if [[ $enter == - ]]; then
        set -- "$testpmd" "${tools[@]}" -- "${pmds[@]}"
    else
        set -- "${tools[@]}"
    fi
    if [[ $mode == list ]]; then
        bash -c "$rootfs_script" howto-image list - "$@"
        [[ $enter == - ]] || "$enter" bash -c "$rootfs_script" howto-image list - \
            "$testpmd" -- "${pmds[@]}"
        return 0
    fi
    bash -c "$rootfs_script" howto-image build "$stage/rootfs.tar" "$@"
    tar -C "$dir" -xf "$stage/rootfs.tar"
    if [[ $enter != - ]]; then
        # written where the root sees it (its /tmp is the host's), removed however we exit
        root_tar=$(mktemp /tmp/howto-guest-XXXXXX.tar)
        trap 'rm -f -- "$root_tar"; rm -rf -- "$stage"' EXIT
        "$enter" bash -c "$rootfs_script" howto-image build "$root_tar" "$testpmd" -- \
            "${pmds[@]}"
        tar -C "$dir" -xf "$root_tar"
    fi
    rm -f -- "$stage/rootfs.tar"
}

if [[ $mode == key ]]; then
    echo "kernel $kver"
    sha256sum -- "$kernel" "$busybox" "${modfiles[@]}"
    echo "loaded by: ${modlists[*]}"
    collect list -
    exit 0
fi

dest=$cache/$key
mkdir -p "$cache"
stage=$(mktemp -d "$cache/.build-XXXXXX")
trap 'rm -rf -- "$stage"' EXIT
root=$stage/root
mkdir -p "$root"
collect build "$root"
mkdir -p "$root"/{bin,sbin,etc,lib/howto-modules,proc,sys,dev,tmp,run,root}
rm -rf "$root/var/run"; mkdir -p "$root/var"
cp "$busybox" "$root/bin/busybox"
for applet in $("$busybox" --list); do
    [[ -e $root/bin/$applet ]] || ln -s busybox "$root/bin/$applet"
done
: >"$root/etc/howto-modules"
: >"$root/etc/howto-modules-net"
for i in "${!modfiles[@]}"; do
    f=${modfiles[$i]}
    name=${f##*/}
    case $name in
        *.ko.xz) xz -dc "$f" >"$root/lib/howto-modules/${name%.xz}"; name=${name%.xz} ;;
        *.ko.zst) zstd -qdc "$f" >"$root/lib/howto-modules/${name%.zst}"; name=${name%.zst} ;;
        *.ko.gz) gzip -dc "$f" >"$root/lib/howto-modules/${name%.gz}"; name=${name%.gz} ;;
        *) cp "$f" "$root/lib/howto-modules/$name" ;;
    esac
    case ${modlists[$i]} in
        boot) echo "$name" >>"$root/etc/howto-modules" ;;
        net) echo "$name" >>"$root/etc/howto-modules-net" ;;
    esac
done
printf '%s' "$init" >"$root/init"
printf '%s' "$bind" >"$root/bin/howto-bind"
printf '%s' "$kernel_net" >"$root/bin/howto-kernel-net"
chmod 755 "$root/init" "$root/bin/howto-bind" "$root/bin/howto-kernel-net"
echo 'root:x:0:0:root:/root:/bin/sh' >"$root/etc/passwd"
echo 'root:x:0:' >"$root/etc/group"
mkdir -p "$stage/out"
cp "$kernel" "$stage/out/vmlinuz"
if command -v cpio >/dev/null; then
    (cd "$root" && find . | cpio -o -H newc --quiet) | gzip -1 >"$stage/out/initrd.img"
else
    (cd "$root" && find . | "$busybox" cpio -o -H newc) | gzip -1 >"$stage/out/initrd.img"
fi
rm -rf -- "$dest"
mv "$stage/out" "$dest"
echo "$dest"
"""


@dataclass(frozen=True)
class GuestImage:
    """A bootable guest: kernel and initramfs paths on the host, and how it was obtained."""

    kernel: str
    initrd: str
    key: str
    built: bool
    seconds: float


def _script_argv(
    mode: str,
    cache_dir: str,
    kernel: str | None,
    testpmd: str,
    busybox: str,
    key: str,
    enter: Sequence[str],
    modules: Sequence[str],
    optional_modules: Sequence[str],
    kernel_net_modules: Sequence[str],
    tools: Sequence[str],
    pmds: Sequence[str],
) -> list[str]:
    return [
        "bash",
        "-s",
        "--",
        mode,
        cache_dir,
        kernel or "-",
        testpmd,
        busybox,
        key,
        enter[0] if enter else "-",
        "--",
        *modules,
        "--",
        *optional_modules,
        "--",
        *kernel_net_modules,
        "--",
        *tools,
        "--",
        *pmds,
    ]


def _script() -> str:
    """The build script with the framework's own texts (never topology values) assigned."""
    init = _INIT.replace("__READY__", READY_LINE).replace("__PROMPT__", SHELL_PROMPT)
    # The container rootfs recipe is reused as the one ldd/PMD collector of the project.
    bind = _BIND.replace("__BIND_PARAM__", BIND_PARAM)
    texts = {
        "rootfs_script": container_image.ROOTFS_SCRIPT,
        "init": init,
        "bind": bind,
        "kernel_net": _KERNEL_NET,
    }
    prelude = "".join(f"{name}={shlex.quote(text)}\n" for name, text in texts.items())
    return prelude + _BUILD_SCRIPT


def ensure_guest_image(
    session: Session,
    *,
    testpmd: str = DEFAULT_TESTPMD,
    enter: Sequence[str] = (),
    kernel: str | None = None,
    cache_dir: str = DEFAULT_CACHE_DIR,
    busybox: str = "/bin/busybox",
    modules: Sequence[str] = GUEST_MODULES,
    optional_modules: Sequence[str] = OPTIONAL_MODULES,
    kernel_net_modules: Sequence[str] = KERNEL_NET_MODULES,
    tools: Sequence[str] = GUEST_TOOLS,
    pmds: Sequence[str] = GUEST_PMDS,
) -> GuestImage:
    """The guest kernel + initramfs on `session`'s host, built unless the cache has them.

    `kernel` defaults to the newest /boot/vmlinuz-* on the host; its modules come from
    /lib/modules/<version>. testpmd is taken from the DPDK build's file system: the
    host's, or the root `enter` (a DpdkBuild's) runs commands in. Raises FrameworkError
    naming the missing input.
    """
    started = time.monotonic()

    def script(mode: str, cache: str, key: str) -> list[str]:
        return _script_argv(
            mode, cache, kernel, testpmd, busybox, key, enter, modules, optional_modules,
            kernel_net_modules, tools, pmds,
        )  # fmt: skip

    try:
        listing = session.run(script("key", cache_dir, "-"), timeout=120, stdin=_script()).stdout
    except CommandFailed as exc:
        raise FrameworkError(
            f"{session.name}: cannot collect the guest image inputs: {_last_line(exc.stderr)}"
        ) from exc
    digest = hashlib.sha256()
    digest.update(
        f"init={INIT_VERSION}\nrootfs={container_image.RECIPE}\n"
        f"modules={','.join(modules)}\noptional={','.join(optional_modules)}\n"
        f"kernel_net={','.join(kernel_net_modules)}\n"
        f"tools={','.join(tools)}\n"
        f"pmds={','.join(pmds)}\n".encode()
    )
    digest.update(listing.encode())
    kver = listing.splitlines()[0].removeprefix("kernel ").strip()
    key = f"{kver}-{digest.hexdigest()[:12]}"

    home = "" if not cache_dir.startswith("~/") else _home(session)
    base = (home + cache_dir[1:]) if home else cache_dir
    dest = f"{base}/{key}"
    kernel_path, initrd_path = f"{dest}/vmlinuz", f"{dest}/initrd.img"
    if session.run(["test", "-s", initrd_path, "-a", "-s", kernel_path], check=False).ok:
        seconds = time.monotonic() - started
        log.info("[%s] reusing guest image %s (checked in %.2f s)", session.name, key, seconds)
        return GuestImage(kernel_path, initrd_path, key, False, seconds)

    try:
        session.run(
            script("build", base, key),
            timeout=600,
            stdin=_script(),
        )
    except CommandFailed as exc:
        raise FrameworkError(
            f"{session.name}: building guest image {key} failed: {_last_line(exc.stderr)}"
        ) from exc
    seconds = time.monotonic() - started
    log.info("[%s] built guest image %s in %.2f s", session.name, key, seconds)
    return GuestImage(kernel_path, initrd_path, key, True, seconds)


def _home(session: Session) -> str:
    return session.run(["bash", "-c", 'printf %s "$HOME"']).stdout.strip()


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "(no output)"
