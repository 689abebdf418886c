"""Running a program "in a container" on a host reached through a Session.

Three kinds share one interface:

* ``podman`` (default) and ``docker``: the same CLI shape. Podman on Debian 12 needs the
  runc runtime (crun fails on hybrid cgroups) and a containers.conf without default
  ulimits; the file ships next to this module and is uploaded to the host's work dir.
* ``process``: no engine. The "container" is a plain process on the host, mounts become
  path translations, and the report can say so through ``kind`` and ``fallback_reason``.
"""

from __future__ import annotations

import functools
import logging
import re
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from framework.errors import CommandFailed, ConfigError, FrameworkError, RemoteError
from framework.remote.session import CommandResult, Session

log = logging.getLogger("howto.container")

KINDS = ("podman", "docker", "process")
NAME_PREFIX = "howto-"
_NAME = re.compile(r"howto-[A-Za-z0-9_.-]+")
_USER = re.compile(r"\d+:\d+")
_CONF = Path(__file__).with_name("containers.conf")
# Marks a fallback process so remove() can check a pid file still names our process.
_MARKER = "HOWTO_CONTAINER"

# $1 pid file, rest: the program. Records the pid, then becomes the program (same pid).
_PROCESS_WRAPPER = 'echo $$ >"$1"; shift; exec "$@"'

# $1 pid dir, $2 name, $3 grace seconds. Stops the process a pid file names, if it is ours.
_PROCESS_REMOVE = r"""
set -u
pidfile="$1/$2.pid"
[[ -f $pidfile ]] || exit 0
pid=$(<"$pidfile")
ours() {
    [[ -r /proc/$pid/environ ]] \
        && tr '\0' '\n' <"/proc/$pid/environ" | grep -qx "HOWTO_CONTAINER=$2"
}
if [[ $pid =~ ^[0-9]+$ ]] && ours; then
    kill -TERM "$pid" 2>/dev/null
    for ((i = 0; i < $3 * 10; i++)); do ours || break; sleep 0.1; done
    ours && kill -KILL "$pid" 2>/dev/null
    for ((i = 0; i < 20; i++)); do ours || break; sleep 0.1; done
fi
rm -f -- "$pidfile"
"""

# $1 pid dir. Prints the names whose pid file still points at a live process of ours.
_PROCESS_LIST = r"""
shopt -s nullglob
for pidfile in "$1"/*.pid; do
    name=$(basename "$pidfile" .pid)
    pid=$(<"$pidfile")
    [[ $pid =~ ^[0-9]+$ && -r /proc/$pid/environ ]] || continue
    tr '\0' '\n' <"/proc/$pid/environ" | grep -qx "HOWTO_CONTAINER=$name" && echo "$name"
done
exit 0
"""


def _check_name(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise ConfigError(
            f"container name {name!r} must start with {NAME_PREFIX!r} and use only "
            "letters, digits, '_', '.', '-'"
        )
    return name


def _check_user(user: str) -> str:
    if not _USER.fullmatch(user):
        raise ConfigError(f"container user {user!r} must be numeric uid:gid (e.g. 65534:65534)")
    return user


def _keep_separator(source: str, match: re.Match[str]) -> str:
    # re.sub replacement: the separator before the container path stays, the path becomes
    # the host one (a function, so a backslash in the path is never read as an escape).
    return match.group(1) + source


def _last_line(result: CommandResult) -> str:
    text = (result.stderr.strip() or result.stdout.strip()).splitlines()
    return text[-1].strip() if text else f"exit code {result.exit_code}"


class ContainerEngine:
    """One container engine (or its absence) on one host."""

    def __init__(
        self,
        session: Session,
        kind: str = "podman",
        *,
        work_dir: str = "/tmp/howto",
        fallback_reason: str | None = None,
        runtime: str | None = "runc",
    ) -> None:
        if kind not in KINDS:
            raise ConfigError(f"container engine {kind!r} is not one of {', '.join(KINDS)}")
        self.session = session
        self.kind = kind
        self.work_dir = work_dir.rstrip("/") or "/"
        self.fallback_reason = fallback_reason
        # runc by default: Debian 12's crun cannot start containers on hybrid cgroups.
        self.runtime = runtime
        self._prepared = False

    def __repr__(self) -> str:
        extra = f", fallback_reason={self.fallback_reason!r}" if self.fallback_reason else ""
        return f"ContainerEngine({self.session.name}, {self.kind}{extra})"

    @property
    def description(self) -> str:
        """One line for reports: what actually isolates the program."""
        if self.kind == "process":
            why = f" ({self.fallback_reason})" if self.fallback_reason else ""
            return f"plain host process, no container engine{why}"
        return f"{self.kind} container" + (f" (runtime {self.runtime})" if self.runtime else "")

    # -- setup ------------------------------------------------------------------------

    @classmethod
    def probe(
        cls,
        session: Session,
        preferred: str = "podman",
        work_dir: str = "/tmp/howto",
        *,
        runtime: str | None = "runc",
    ) -> ContainerEngine:
        """The preferred engine if it can run a trivial container here, else `process`.

        The probe builds (once) a tiny image holding `true` and runs it, so it fails for
        the reasons a real test container would: missing binary, runtime, cgroups, ulimits.
        """
        if preferred == "process":
            return cls(session, "process", work_dir=work_dir)
        engine = cls(session, preferred, work_dir=work_dir, runtime=runtime)
        started = time.monotonic()
        try:
            from framework.container.image import ensure_probe_image

            engine.prepare()
            ref = ensure_probe_image(session, engine)
            argv, env = engine.cli("run", "--rm", "--pull=never", "--network", "none", ref, "true")
            result = session.run(argv, env=env, check=False, timeout=60)
            if not result.ok:
                raise RemoteError(f"`{preferred} run {ref} true` failed: {_last_line(result)}")
        except FrameworkError as exc:
            reason = f"{preferred} unusable: {exc}"
            log.warning("[%s] %s; falling back to plain processes", session.name, reason)
            return cls(session, "process", work_dir=work_dir, fallback_reason=reason)
        log.info(
            "[%s] %s works (probe %.2f s)", session.name, preferred, time.monotonic() - started
        )
        return engine

    def prepare(self) -> None:
        """Create the work dir on the host and, for podman, upload containers.conf."""
        if self._prepared:
            return
        self.session.run(["mkdir", "-p", "--", self.work_dir, self._pid_dir])
        if self.kind != "process":
            found = self.session.run(["bash", "-c", 'type -P -- "$1"', "-", self.kind], check=False)
            if not found.ok:
                raise RemoteError(f"{self.session.name}: `{self.kind}` is not installed")
        if self.kind == "podman":
            self.session.put(_CONF, self._conf_path)
        self._prepared = True

    @property
    def _conf_path(self) -> str:
        return f"{self.work_dir}/containers.conf"

    @property
    def _pid_dir(self) -> str:
        return f"{self.work_dir}/processes"

    def cli(self, *args: str) -> tuple[list[str], dict[str, str]]:
        """Argv and environment for one engine CLI call (`podman --runtime runc ...`)."""
        runtime = ["--runtime", self.runtime] if self.runtime else []
        if self.kind == "podman":
            # A global option for podman; docker only takes it on `run`.
            return ["podman", *runtime, *args], {"CONTAINERS_CONF": self._conf_path}
        if self.kind == "docker":
            if args and args[0] == "run":
                args = ("run", *runtime, *args[1:])
            return ["docker", *args], {}
        raise FrameworkError(f"{self.session.name}: no container engine, cannot run `{args[0]}`")

    def _run(self, *args: str, check: bool = True, timeout: float = 120) -> CommandResult:
        self.prepare()
        argv, env = self.cli(*args)
        return self.session.run(argv, env=env, check=check, timeout=timeout)

    # -- images -----------------------------------------------------------------------

    def image_exists(self, ref: str) -> bool:
        """Whether the engine has image `ref` locally (never, for plain processes)."""
        if self.kind == "process":
            return False
        # `image inspect` rather than podman's `image exists`: docker has only the former.
        return self._run("image", "inspect", "--format", "{{.Id}}", ref, check=False).ok

    def import_image(self, tarball: str, ref: str) -> None:
        """Turn a rootfs tarball on the host into image `ref`."""
        try:
            self._run(
                "import",
                "--change",
                "ENV PATH=/usr/bin:/bin:/usr/sbin:/sbin",
                tarball,
                ref,
                timeout=300,
            )
        except CommandFailed as exc:
            raise RemoteError(
                f"{self.session.name}: `{self.kind} import` of {ref} failed: "
                f"{exc.stderr.strip().splitlines()[-1] if exc.stderr.strip() else exc}"
            ) from exc

    def remove_image(self, ref: str) -> None:
        """Delete an image; no error if it is not there."""
        if self.kind == "process" or not self.image_exists(ref):
            return
        self._run("rmi", ref, timeout=120)

    # -- containers -------------------------------------------------------------------

    def run_argv(
        self,
        image: str,
        argv: Sequence[str],
        *,
        name: str,
        mounts: Sequence[tuple[str, str]] = (),
        privileged: bool = True,
        network: str = "none",
        interactive: bool = True,
        env: Mapping[str, str] | None = None,
        user: str | None = None,
    ) -> tuple[list[str], dict[str, str]]:
        """The command (and its environment) that runs `argv` in a container named `name`.

        Open it with session.open_shell(argv, env=env, ...) for an interactive program:
        `-i -t` gives testpmd a PTY inside the container too, so its output is line
        buffered. interactive=False drops `-t`, for session.run(argv, env=env, stdin=...).
        mounts are (host path, container path) pairs; the process engine rewrites
        container paths in argv to host paths instead. The container is removed when the
        program exits; call remove(name) anyway in teardown. `user` ("uid:gid") runs the
        program as that user instead of root.
        """
        _check_name(name)
        if not argv:
            raise ConfigError(f"container {name}: empty command")
        self.prepare()
        if self.kind == "process":
            return self._process_argv(argv, name=name, mounts=mounts, env=env, user=user)
        args = ["run", "--rm", "--pull=never", "--name", name]
        if user is not None:
            args += ["--user", _check_user(user)]
        # -i always: a piped stdin (`quit`) must reach the program; -t only for a PTY user.
        args += ["-i", "-t"] if interactive else ["-i"]
        if privileged:
            args.append("--privileged")
        args += ["--network", network]
        for source, target in mounts:
            if ":" in source or ":" in target:
                raise ConfigError(f"container {name}: mount path {source}:{target} contains ':'")
            args += ["-v", f"{source}:{target}"]
        for key, value in (env or {}).items():
            args += ["-e", f"{key}={value}"]
        return self.cli(*args, image, *argv)

    def _process_argv(
        self,
        argv: Sequence[str],
        *,
        name: str,
        mounts: Sequence[tuple[str, str]],
        env: Mapping[str, str] | None,
        user: str | None = None,
    ) -> tuple[list[str], dict[str, str]]:
        # Without a mount namespace, every container path the program is given has to be
        # the host path it would have been mounted from (longest target first).
        rules = sorted(
            ((t.rstrip("/"), s.rstrip("/")) for s, t in mounts), key=lambda r: -len(r[0])
        )
        mapped = []
        for arg in argv:
            for target, source in rules:
                arg = re.sub(
                    rf"(^|[=,:]){re.escape(target)}(?=$|[/,:])",
                    functools.partial(_keep_separator, source),
                    arg,
                )
            mapped.append(arg)
        if user is not None:
            # No engine to switch users: setpriv drops to that uid and gid, no groups.
            uid, gid = _check_user(user).split(":")
            mapped = ["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups", *mapped]
        wrapped = [
            "bash",
            "-c",
            _PROCESS_WRAPPER,
            "howto-process",
            f"{self._pid_dir}/{name}.pid",
            *mapped,
        ]
        return wrapped, {**(env or {}), _MARKER: name}

    def remove(self, name: str, *, grace: float = 2) -> None:
        """Stop (SIGTERM, then SIGKILL after `grace` s) and delete a container; no error if gone."""
        _check_name(name)
        if self.kind == "process":
            self.prepare()
            self.session.run(
                [
                    "bash",
                    "-c",
                    _PROCESS_REMOVE,
                    "-",
                    self._pid_dir,
                    name,
                    str(max(1, round(grace))),
                ],
                timeout=grace + 30,
            )
            return
        if self.kind == "podman":
            result = self._run(
                "rm",
                "--force",
                "--ignore",
                "--time",
                str(max(0, round(grace))),
                name,
                check=False,
                timeout=grace + 60,
            )
        else:
            self._run(
                "stop", "--time", str(max(0, round(grace))), name, check=False, timeout=grace + 60
            )
            result = self._run("rm", "--force", name, check=False, timeout=60)
            if "No such container" in result.stderr:
                return
        if not result.ok:
            raise RemoteError(
                f"{self.session.name}: cannot remove container {name}: {_last_line(result)}"
            )

    def pid(self, name: str) -> int:
        """The host's pid of the program running in container `name`."""
        _check_name(name)
        if self.kind == "process":
            self.prepare()
            out = self.session.run(["cat", "--", f"{self._pid_dir}/{name}.pid"], check=False)
        else:
            out = self._run("inspect", "--format", "{{.State.Pid}}", name, check=False)
        text = out.stdout.strip()
        if not out.ok or not text.isdigit() or text == "0":
            raise RemoteError(f"{self.session.name}: container {name} is not running")
        return int(text)

    def names(self, prefix: str = NAME_PREFIX) -> list[str]:
        """Containers (running or not) whose name starts with prefix."""
        if self.kind == "process":
            self.prepare()
            out = self.session.run(["bash", "-c", _PROCESS_LIST, "-", self._pid_dir]).stdout
        else:
            out = self._run("ps", "--all", "--format", "{{.Names}}").stdout
        return sorted(n for n in out.split() if n.startswith(prefix))

    def remove_all(self, prefix: str = NAME_PREFIX) -> list[str]:
        """Remove every container whose name starts with prefix; return their names."""
        if not prefix.startswith(NAME_PREFIX):
            raise ConfigError(f"remove_all prefix {prefix!r} must start with {NAME_PREFIX!r}")
        gone = self.names(prefix)
        for name in gone:
            self.remove(name)
        return gone
