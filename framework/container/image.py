"""Container images built on the container host from what is already installed there.

No registry is reachable from a lab or the virtual lab, so an image is a rootfs collected
from the host (dpdk-testpmd, every library ldd lists, a trimmed PMD plugin dir) and
`<engine> import`ed. The tag is a short hash of those inputs: a rebuilt or upgraded DPDK
gets a new image, an unchanged one is reused in well under a second.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from framework.config.model import DEFAULT_TESTPMD
from framework.errors import CommandFailed, FrameworkError

if TYPE_CHECKING:
    from framework.container.engine import ContainerEngine
    from framework.remote.session import Session

log = logging.getLogger("howto.container")

# Bump when ROOTFS_SCRIPT changes what ends up in an image, so old tags are not reused.
RECIPE = "2"

TESTPMD_IMAGE = "localhost/howto-dpdk-testpmd"
PROBE_IMAGE = "localhost/howto-probe"

# EAL dlopen()s every *.so in its plugin dir, and each PMD drags in its own libraries
# (mlx, dpaa, crypto...). The container gets only the buses, mempools and vdev PMDs that
# container networking uses; PMDs testpmd links directly come along through ldd anyway.
CONTAINER_PMDS: tuple[str, ...] = (
    "bus_vdev",
    "bus_pci",
    "mempool_ring",
    "mempool_stack",
    "net_virtio",
    "net_vhost",
    "net_ring",
    "net_null",
    "net_af_packet",
    "net_tap",
    "net_bond",
)

# Arguments: MODE (list|build) OUT EXECUTABLE... [-- PMD...]
#   list : print "sha256  path" for every file the image would hold (the cache key input)
#   build: write the rootfs as a tarball to OUT
# Values arrive as positional arguments only; nothing from a topology is spliced in.
ROOTFS_SCRIPT = r"""
set -euo pipefail
mode=$1 out=$2
shift 2
exes=()
while (($#)) && [[ $1 != -- ]]; do exes+=("$1"); shift; done
(($#)) && shift
pmds=("$@")

declare -A seen=()
files=()      # copied with symlinks resolved, at the path the loader asks for
plugins=()    # PMD dir entries, copied as they are (symlinks stay symlinks)

add() {
    local f=$1 lib
    [[ -n ${seen[$f]:-} ]] && return 0
    seen[$f]=1
    files+=("$f")
    while read -r lib; do
        [[ -n $lib && -z ${seen[$lib]:-} ]] || continue
        seen[$lib]=1
        files+=("$lib")
    done < <(ldd "$f" 2>/dev/null \
             | sed -n -e 's/.*=> \(\/[^ ]*\) (.*/\1/p' -e 's/^[[:space:]]*\(\/[^ ]*\) (.*/\1/p')
}

for exe in "${exes[@]}"; do
    path=$(type -P -- "$exe" || true)
    if [[ -z $path ]]; then
        echo "howto-image: executable $exe not found on $(hostname)" >&2
        exit 3
    fi
    add "$path"
done

shared=0
for f in "${files[@]}"; do [[ $f == */librte_eal.so* ]] && shared=1; done
# A statically linked testpmd (DPDK's default build) carries its PMDs: no plugins to copy.
((shared)) || pmds=()
if ((${#pmds[@]})); then
    # The plugin dir is compiled into EAL; read it rather than guess a distribution layout.
    plugdir=$(grep -a -h -o 'DPDK_PLUGIN_PATH=[^[:space:][:cntrl:]]*' "${files[@]}" 2>/dev/null \
              | sed -n '1{s/^DPDK_PLUGIN_PATH=//;p}')
    if [[ -z $plugdir || ! -d $plugdir ]]; then
        echo "howto-image: no DPDK plugin dir (DPDK_PLUGIN_PATH) in the EAL of ${exes[0]}" >&2
        exit 3
    fi
    for pmd in "${pmds[@]}"; do
        found=0
        for p in "$plugdir/librte_$pmd.so" "$plugdir/librte_$pmd.so".*; do
            [[ -e $p ]] || continue
            found=1
            plugins+=("$p")
            [[ -L $p ]] || add "$p"
        done
        if ((!found)); then
            echo "howto-image: PMD $pmd not found in $plugdir" >&2
            exit 3
        fi
    done
fi

# glibc dlopen()s libgcc_s for pthread_cancel: without it testpmd segfaults on quit.
libc=""
for f in "${files[@]}"; do [[ $f == */libc.so.6 ]] && libc=$f; done
gcc_s=""
if [[ -n $libc ]]; then
    for d in "$(dirname "$libc")" "/usr$(dirname "$libc")"; do
        [[ -e $d/libgcc_s.so.1 ]] && { gcc_s=$d/libgcc_s.so.1; break; }
    done
fi
if [[ -z $gcc_s ]]; then
    gcc_s=$(ldconfig -p 2>/dev/null | sed -n 's/^[[:space:]]*libgcc_s\.so\.1 .*=> //p' | sed -n 1p)
fi
if [[ -z $gcc_s ]]; then
    echo "howto-image: libgcc_s.so.1 not found (testpmd would crash on quit without it)" >&2
    exit 3
fi
add "$gcc_s"

if [[ $mode == list ]]; then
    sha256sum -- "${files[@]}"
    for p in "${plugins[@]}"; do printf '%s -> %s\n' "$p" "$(readlink "$p" || true)"; done
    exit 0
fi

root=$(mktemp -d "$out.rootfs.XXXXXX")
trap 'rm -rf -- "$root"' EXIT
mkdir -p "$root"/{dev/hugepages,proc,sys,tmp,run,var,etc,usr/bin}
ln -s ../run "$root/var/run"
chmod 1777 "$root/tmp"
cp -L --parents -- "${files[@]}" "$root"
# After the resolved copies so that PMD symlinks mirror the host exactly: two inodes for
# one PMD would let EAL load it twice.
for p in "${plugins[@]}"; do cp -P --parents --remove-destination -- "$p" "$root"; done
# cp --parents gives each directory its host mode: a build under root's home (/root is
# 0700) would leave its testpmd out of reach of the container's non-root users.
find "$root" -type d -exec chmod a+rx {} +
tar -C "$root" -cf "$out" .
"""


@dataclass(frozen=True)
class ImageBuild:
    """What ensure_image did: the reference, whether it had to build, and how long it took."""

    ref: str
    built: bool
    seconds: float
    files: int
    # The testpmd a container of this image runs: its path in the image (or on the host,
    # for a `host:` reference); set by container.testpmd.testpmd_image.
    testpmd: str = DEFAULT_TESTPMD


def _inputs_key(
    session: Session, executables: Sequence[str], pmds: Sequence[str], enter: Sequence[str]
) -> tuple[str, int]:
    listing = session.run(
        [*enter, "bash", "-c", ROOTFS_SCRIPT, "howto-image", "list", "-", *executables, "--",
         *pmds],
        timeout=120,
    )  # fmt: skip
    digest = hashlib.sha256()
    digest.update(f"recipe={RECIPE}\npmds={','.join(pmds)}\n".encode())
    digest.update(listing.stdout.encode())
    return digest.hexdigest()[:12], len(listing.stdout.splitlines())


def ensure_image(
    session: Session,
    engine: ContainerEngine,
    repository: str,
    executables: Sequence[str],
    pmds: Sequence[str] = (),
    enter: Sequence[str] = (),
) -> ImageBuild:
    """Build `repository:<key>` from host files unless that tag already exists.

    `enter` (a DpdkBuild's) takes the files from a scripts/dpdk-root root instead; the
    engine's work dir must then be under /tmp, which the root shares with the host.
    """
    if engine.kind == "process":
        raise FrameworkError(
            f"{session.name}: no container engine ({engine.fallback_reason}); nothing to build"
        )
    started = time.monotonic()
    try:
        key, count = _inputs_key(session, executables, pmds, enter)
    except CommandFailed as exc:
        raise FrameworkError(
            f"{session.name}: cannot collect the image files: {exc.stderr.strip()}"
        ) from exc
    ref = f"{repository}:{key}"
    if engine.image_exists(ref):
        seconds = time.monotonic() - started
        log.info("[%s] reusing image %s (checked in %.2f s)", session.name, ref, seconds)
        return ImageBuild(ref, False, seconds, count)

    engine.prepare()
    tarball = f"{engine.work_dir}/image-{key}.tar"
    try:
        try:
            session.run(
                [
                    *enter,
                    "bash",
                    "-c",
                    ROOTFS_SCRIPT,
                    "howto-image",
                    "build",
                    tarball,
                    *executables,
                    "--",
                    *pmds,
                ],
                timeout=300,
            )
        except CommandFailed as exc:
            raise FrameworkError(
                f"{session.name}: building the rootfs of {ref} failed: {exc.stderr.strip()}"
            ) from exc
        engine.import_image(tarball, ref)
    finally:
        session.run(["rm", "-f", "--", tarball], check=False)
    seconds = time.monotonic() - started
    log.info("[%s] built image %s from %d files in %.2f s", session.name, ref, count, seconds)
    return ImageBuild(ref, True, seconds, count)


def build_testpmd_image(
    session: Session,
    testpmd: str = DEFAULT_TESTPMD,
    *,
    engine: ContainerEngine,
    pmds: Sequence[str] = CONTAINER_PMDS,
    enter: Sequence[str] = (),
) -> ImageBuild:
    """Like ensure_testpmd_image, but also says whether it built and how long it took."""
    return ensure_image(session, engine, TESTPMD_IMAGE, [testpmd], pmds, enter)


def ensure_testpmd_image(
    session: Session,
    testpmd: str = DEFAULT_TESTPMD,
    *,
    engine: ContainerEngine,
    pmds: Sequence[str] = CONTAINER_PMDS,
) -> str:
    """An image holding `testpmd` at the same path as on the host; built once per DPDK.

    With the `process` engine there is no image: the host's testpmd is run directly and
    the returned reference says so (`host:` and the testpmd path).
    """
    if engine.kind == "process":
        return f"host:{testpmd}"
    return build_testpmd_image(session, testpmd, engine=engine, pmds=pmds).ref


def ensure_probe_image(session: Session, engine: ContainerEngine) -> str:
    """A tiny image holding only `true`, to check that the engine can run a container."""
    return ensure_image(session, engine, PROBE_IMAGE, ["true"]).ref
