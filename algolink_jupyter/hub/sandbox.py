"""Keeping bundle code in its place: who a service, a build or a manifest read runs as, and what it sees.

A bundle is other people's code. Everything of it that the hub runs (the environment's build, the
bundle's own build steps, the manifest read, the service process) goes through :class:`Isolation`,
which gives what Linux has:

- **users** (the hub runs as root): each service runs as a system user of its own, ``alk<tag>s<id>``,
  made on first use with ``useradd`` (``<tag>`` names this hub's data folder, so two hubs on one machine
  never share users); each environment is built as a user made for that build alone,
  ``alk<tag>b<n>`` (removed, with every process it has, when the build ends: no build can watch or
  change another, nor outlive its own), and then handed to root, so no later build or service can
  change it. Every command runs in a process namespace of its own, whose processes all end when the
  command does (a daemon a build step or a service leaves behind, double-forked or not, goes with
  it). The hub's data folder is 0711 (nobody lists it), its secrets and database 0600, the stored
  bundles, files and logs 0700.
- **bwrap** (Debian's bubblewrap is installed): the process sees the machine read-only, with the hub's
  data folder and the hub's home replaced by empty folders, and in them only what it needs: its
  environment (read-only), its own working copy and ``/tmp`` (writable), its setup options' files
  (read-only); its own process, IPC and host-name namespaces, so it cannot see or signal the hub,
  and nothing of it outlives the sandbox.
  With bwrap the data folder is 0700.
- always: the process gets a clean environment (the hub's variables do not pass, but for locale, time
  zone, proxies, CUDA and thread settings), ``no_new_privs`` (no set-uid program gives it more), and the
  hub makes itself non-dumpable, so a process of the same user cannot read the hub's memory.

``auto`` takes users when root and bwrap when it works; ``none`` runs bundle code as the hub (for a
single-user machine, where the hub says so when it starts).
"""

from __future__ import annotations

import contextlib
import ctypes
import glob
import hashlib
import logging
import os
import pwd
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

__all__ = [
    "CACHE_USER",
    "DROP",
    "MODES",
    "Identity",
    "Isolation",
    "IsolationError",
    "clean_environment",
    "hub_tag",
    "kill_user",
    "make_not_dumpable",
    "processes_of",
    "remove_files_of",
    "tmp_env",
    "working_copy",
]

log = logging.getLogger("algolink.hub")

MODES = ("auto", "bwrap", "users", "none")
#: The user the machine-wide package cache of builds belongs to.
CACHE_USER = "algolink-cache"
#: The range the hub's system users take their ids from: far from people's and Debian's own.
UID_RANGE = (1_900_000, 1_999_999)

#: Variables a bundle's process may inherit from the hub; every other one stays with the hub.
PASSED = frozenset(
    {
        "PATH",
        "LANG",
        "LANGUAGE",
        "TZ",
        "TERM",
        "http_proxy",
        "https_proxy",
        "no_proxy",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "NO_PROXY",
        "SSL_CERT_FILE",
        "SSL_CERT_DIR",
        "REQUESTS_CA_BUNDLE",
        "LD_LIBRARY_PATH",
        "OMP_NUM_THREADS",
        "MKL_NUM_THREADS",
        "OPENBLAS_NUM_THREADS",
    }
)
PASSED_PREFIXES = ("LC_", "CUDA_", "NVIDIA_")
#: What builds also get: the package installers' settings (index URLs, constraints).
BUILD_PREFIXES = ("PIP_", "UV_")

# Run by the hub's Python as root, inside the sandbox when there is one: no new privileges ever
# (PR_SET_NO_NEW_PRIVS = 38), give up root for the service's user, then exec the command.
# ``DROP uid gid own_pids command...``: with own_pids (no bubblewrap, which has its own), the
# command runs in a PID namespace of its own (CLONE_NEWPID), under a small init that passes signals
# on and reaps; when the command ends, so does the init, and the kernel kills whatever is left in
# the namespace: a double fork and setsid do not get out of it. The init dies with this process
# (PR_SET_PDEATHSIG), and this process ends as the command did (its status, or its signal).
DROP = r"""
import ctypes, os, select, signal, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.prctl(38, 1, 0, 0, 0)
uid, gid, own_pids, argv = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3] == "1", sys.argv[4:]
PASSED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1,
          signal.SIGUSR2)


def run():
    for sig in (signal.SIGPIPE, signal.SIGXFSZ):
        signal.signal(sig, signal.SIG_DFL)
    if uid >= 0:
        os.setgroups([]); os.setgid(gid); os.setuid(uid)
    try:
        os.execvp(argv[0], argv)
    except OSError as e:
        sys.exit(f"Cannot run {argv[0]}: {e.strerror}.")


def pass_to(pid):
    def handler(signum, frame):
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass
    for sig in PASSED:
        signal.signal(sig, handler)


if not own_pids:
    run()
if libc.unshare(0x20000000) != 0:
    sys.exit("Cannot make a process namespace: " + os.strerror(ctypes.get_errno()) + ".")
r, w = os.pipe()
held, holder = os.pipe()  # this process holds the write end as long as it lives
init = os.fork()
if init == 0:
    os.close(r)
    os.close(holder)
    libc.prctl(1, signal.SIGKILL, 0, 0, 0)
    if select.select([held], [], [], 0)[0]:  # the parent died before the line above
        os._exit(1)
    os.close(held)
    child = os.fork()
    if child == 0:
        os.close(w)
        run()
    pass_to(child)
    while True:
        pid, status = os.wait()
        if pid == child:
            break
    os.write(w, str(status).encode())
    os._exit(0)
os.close(w)
os.close(held)
pass_to(init)
status = os.waitpid(init, 0)[1]
said = os.read(r, 64)
status = int(said) if said else status
if os.WIFSIGNALED(status):
    sig = os.WTERMSIG(status)
    signal.signal(sig, signal.SIG_DFL)
    os.kill(os.getpid(), sig)
    os._exit(128 + sig)
os._exit(os.waitstatus_to_exitcode(status))
"""
#: Where a build user's leftovers may be, outside the folders the hub removes itself.
SHARED_TMP = ("/tmp", "/var/tmp", "/dev/shm")


class IsolationError(RuntimeError):
    """Isolation that was asked for and cannot be had; the message says why and what to do."""


@dataclass(frozen=True)
class Identity:
    """A Unix user bundle code runs as."""

    name: str
    uid: int
    gid: int


def hub_tag(data: Path) -> str:
    """Six hex digits that name one hub's data folder (in user names)."""
    return hashlib.sha256(str(Path(data).resolve()).encode()).hexdigest()[:6]


def make_not_dumpable() -> None:
    """PR_SET_DUMPABLE = 0: no process of the hub's user may ptrace the hub or read its memory and
    environment through /proc."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(4, 0, 0, 0, 0)


def clean_environment(
    extra: Optional[dict] = None, *, build: bool = False, environ: Optional[dict] = None
) -> dict:
    """The variables a bundle's process starts with: what :data:`PASSED` allows of ``environ`` (the
    hub's), the installers' settings for a build, then ``extra``."""
    environ = os.environ if environ is None else environ
    prefixes = PASSED_PREFIXES + (BUILD_PREFIXES if build else ())
    env = {k: v for k, v in environ.items() if k in PASSED or k.startswith(prefixes)}
    env.setdefault("PATH", os.defpath)
    env.setdefault("LANG", "C.UTF-8")
    env.update({k: str(v) for k, v in (extra or {}).items()})
    return env


def _find_bwrap() -> Optional[str]:
    return shutil.which("bwrap")


def _bwrap_works(bwrap: str) -> bool:
    try:
        done = subprocess.run(
            [
                bwrap,
                "--ro-bind",
                "/",
                "/",
                "--dev",
                "/dev",
                "--proc",
                "/proc",
                "--unshare-pid",
                "true",
            ],
            capture_output=True,
            timeout=20,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def _reachable_by_others(path: Path) -> bool:
    """Whether every folder above ``path`` lets other users through (the x bit for others)."""
    path = Path(os.path.realpath(path))
    for parent in [*reversed(path.parents)][1:]:
        try:
            if not os.stat(parent).st_mode & 0o001:
                return False
        except OSError:
            return False
    return True


def python_prefix(python: Path) -> Path:
    """The installation a Python executable belongs to (``.../bin/python3.11`` -> ``...``)."""
    return Path(os.path.realpath(python)).parent.parent


def venv_base(env_path: Path) -> Optional[Path]:
    """The installation a virtual environment was made from (``home =`` in its ``pyvenv.cfg``)."""
    try:
        for line in (Path(env_path) / "pyvenv.cfg").read_text().splitlines():
            key, _, value = line.partition("=")
            if key.strip() == "home" and value.strip():
                return Path(os.path.realpath(value.strip())).parent
    except OSError:
        pass
    return None


class Isolation:
    """How this hub runs bundle code: see the module's text. ``mode`` is one of :data:`MODES`."""

    def __init__(self, data: Path, mode: str = "auto", *, bwrap: Optional[str] = None) -> None:
        if mode not in MODES:
            raise IsolationError(
                f"--isolation {mode!r} is not a mode: give one of {', '.join(MODES)}."
            )
        self.data = Path(data).resolve()
        self.tag = hub_tag(self.data)
        self.mode = mode
        root = os.geteuid() == 0
        found = bwrap or _find_bwrap()
        if mode == "none":
            self.users, self.bwrap = False, None
        elif mode == "users":
            if not root:
                raise IsolationError(
                    "--isolation users needs the hub to run as root (it runs each service as a "
                    "user of its own): start it as root, or use --isolation bwrap."
                )
            self.users, self.bwrap = True, None
        elif mode == "bwrap":
            if not found or not _bwrap_works(found):
                raise IsolationError(
                    "--isolation bwrap needs bubblewrap, which is "
                    + ("not installed" if not found else "installed but cannot make a sandbox here")
                    + ": install it (apt-get install bubblewrap) or use --isolation users/none."
                )
            self.users, self.bwrap = root, found
        else:
            self.users = root
            self.bwrap = found if found and _bwrap_works(found) else None
        self.home = Path(os.path.expanduser("~")).resolve()
        self._identities: dict[str, Identity] = {}
        self._builds = 0
        self._stale_checked = False
        self._users_lock = threading.RLock()  # useradd and userdel, one at a time

    # --- what the hub says about it --------------------------------------------------------------

    @property
    def isolated(self) -> bool:
        return self.users or self.bwrap is not None

    def describe(self) -> str:
        """One line for the hub's start-up output."""
        if self.users and self.bwrap:
            return (
                "Isolation: each service runs as a user of its own, in a bubblewrap sandbox that "
                "shows it nothing of the hub's data."
            )
        if self.users:
            return (
                "Isolation: each service runs as a user of its own (file modes keep it from the "
                "hub's data); install bubblewrap to also hide the data folder from it."
            )
        if self.bwrap:
            return (
                "Isolation: services run in a bubblewrap sandbox that shows them nothing of the "
                "hub's data, as the hub's own user (run the hub as root to give each its own user)."
            )
        return (
            "Warning: services run as the hub's own user with no sandbox, and can read the hub's "
            "data and secrets: run the hub as root or install bubblewrap (apt-get install "
            "bubblewrap) on a machine that others publish to."
        )

    # --- users -----------------------------------------------------------------------------------

    def service_user(self, service_id: int) -> Optional[Identity]:
        """The user a service runs as (made on first use); None when the hub runs services as
        itself."""
        return self._user(f"alk{self.tag}s{int(service_id)}") if self.users else None

    def new_build_user(self) -> Optional[Identity]:
        """A user for one build, ``alk<tag>b<n>``, made now (None when the hub runs builds as
        itself). No other build, of this hub or another, runs as it, so none can see its processes
        in /proc or write to what it builds; :meth:`end_build_user` removes it."""
        if not self.users:
            return None
        with self._users_lock:
            return self._new_build_user()

    def _new_build_user(self) -> Identity:
        if not self._stale_checked:  # left by a hub of this data folder that was killed
            self._stale_checked = True
            prefix = f"alk{self.tag}b"
            for entry in pwd.getpwall():
                if entry.pw_name.startswith(prefix) and entry.pw_name[len(prefix) :].isdigit():
                    self.end_build_user(Identity(entry.pw_name, entry.pw_uid, entry.pw_gid))
        self._builds += 1
        name = f"alk{self.tag}b{self._builds}"
        try:
            pw = pwd.getpwnam(name)
        except KeyError:
            pass
        else:
            self.end_build_user(Identity(name, pw.pw_uid, pw.pw_gid))
        who = self._user(name, "AlgoLink build")
        kill_user(who)  # a user id a removed user had may still have processes
        return who

    def end_build_user(self, who: Optional[Identity]) -> None:
        """Every process of the build's user killed, its files in the shared temporary folders
        removed, and the user removed."""
        if who is None or not who.name.startswith(f"alk{self.tag}b"):
            return
        with self._users_lock:
            kill_user(who)
            remove_files_of(who.uid, SHARED_TMP)
            _passwd_tool(["userdel", who.name])
            self._identities.pop(who.name, None)

    def cache_user(self) -> Optional[Identity]:
        """The user the shared package cache belongs to: it fetches packages and runs no code of
        theirs (a build reads the cache and never writes it)."""
        return self._user(CACHE_USER) if self.users else None

    def hub_users(self) -> list[str]:
        """The names of the service users this hub made (for removal)."""
        prefix = f"alk{self.tag}s"
        return sorted(p.pw_name for p in pwd.getpwall() if p.pw_name.startswith(prefix))

    def _user(self, name: str, comment: str = "AlgoLink service") -> Identity:
        known = self._identities.get(name)
        if known is not None:
            return known
        try:
            pw = pwd.getpwnam(name)
        except KeyError:
            low, high = UID_RANGE
            done = _passwd_tool(
                [
                    "useradd",
                    "--system",
                    "--user-group",
                    "--no-create-home",
                    "--home-dir",
                    "/nonexistent",
                    "--shell",
                    "/usr/sbin/nologin",
                    "--comment",
                    comment,
                    "-K",
                    f"SYS_UID_MIN={low}",
                    "-K",
                    f"SYS_UID_MAX={high}",
                    "-K",
                    f"SYS_GID_MIN={low}",
                    "-K",
                    f"SYS_GID_MAX={high}",
                    name,
                ]
            )
            try:
                pw = pwd.getpwnam(name)
            except KeyError:
                raise IsolationError(
                    f"The system user {name} could not be made ({done.stderr.strip() or done.returncode}): "
                    "the hub needs useradd (Debian's passwd package) to run services as their own "
                    "users, or --isolation none."
                ) from None
        identity = Identity(name, pw.pw_uid, pw.pw_gid)
        self._identities[name] = identity
        return identity

    def remove_user(self, identity: Optional[Identity]) -> None:
        if identity is None or not identity.name.startswith(f"alk{self.tag}s"):
            return
        subprocess.run(["userdel", identity.name], capture_output=True, timeout=60)
        self._identities.pop(identity.name, None)

    # --- files -----------------------------------------------------------------------------------

    def secure_data_folder(self) -> None:
        """The data folder's modes: 0700 (0711 when services run as other users without bwrap, so
        that they can reach their environments and working copies, but list nothing)."""
        self.data.mkdir(parents=True, exist_ok=True)
        passable = self.users and self.bwrap is None
        os.chmod(self.data, 0o711 if passable else 0o700)
        for name in ("bundles", "files", "uploads", "gallery", "services", "tmp"):
            path = self.data / name
            if path.is_dir():
                os.chmod(path, 0o700)
        for name in ("envs", "run", "wheels"):
            path = self.data / name
            path.mkdir(exist_ok=True)
            os.chmod(path, 0o711 if passable else 0o700)
        for name in ("admin_token", "cookie_secret", "secret_key", "hub.sqlite"):
            path = self.data / name
            if path.is_file():
                os.chmod(path, 0o600)
        for path in self.data.glob("hub.sqlite-*"):  # SQLite's journal and write-ahead log
            with contextlib.suppress(OSError):
                os.chmod(path, 0o600)

    def own(self, path: Path, who: Optional[Identity], mode: int = 0o700) -> None:
        """Give ``path`` (a folder made for bundle code) to ``who``."""
        if who is not None:
            os.chown(path, who.uid, who.gid)
        os.chmod(path, mode)

    def hand_to_root(self, path: Path) -> None:
        """After a build as the build user: the environment becomes root's and read-only to others.

        Walked through folder descriptors without following links (``os.fwalk``, ``O_NOFOLLOW``), so
        a link the build left in place never makes root change something else."""
        if not self.users:
            return
        for _folder, dirs, files, dir_fd in os.fwalk(path, follow_symlinks=False):
            for name in [*dirs, *files]:
                with contextlib.suppress(OSError):
                    os.chown(name, 0, 0, dir_fd=dir_fd, follow_symlinks=False)
                    fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=dir_fd)
                    try:
                        mode = os.fstat(fd).st_mode
                        os.fchmod(fd, mode & 0o7755 & ~0o6000)  # no set-id bits either
                    finally:
                        os.close(fd)
        os.chown(path, 0, 0)
        os.chmod(path, 0o755)

    # --- commands --------------------------------------------------------------------------------

    def command(
        self,
        argv: list,
        *,
        who: Optional[Identity],
        cwd: Path,
        read_only: Iterable[Path] = (),
        writable: Iterable[Path] = (),
        tmp: Optional[Path] = None,
    ) -> list:
        """``argv`` as it must be run: in the sandbox, as ``who``.

        ``read_only`` and ``writable`` are the paths (inside the hidden data folder or home) the
        process needs; ``tmp`` is a folder of its own for temporary files (writable; the caller sets
        ``TMPDIR`` and ``HOME`` to it, see :func:`tmp_env`), and ``/tmp`` is an empty one in memory.
        Without bwrap they are only documentation (file modes decide).
        """
        argv = [str(a) for a in argv]
        if who is not None and self.bwrap is None:
            blocked = next((p for p in [argv[0], *read_only] if not _reachable_by_others(p)), None)
            if blocked is not None:
                raise IsolationError(
                    f"{blocked} is in a folder the services' users cannot enter: install "
                    "bubblewrap (apt-get install bubblewrap), or use a Python outside it (python: "
                    "in algolink.yml names one the hub lists)."
                )
        if who is not None:
            argv = [
                os.path.realpath(sys.executable),
                "-I",
                "-c",
                DROP,
                str(who.uid),
                str(who.gid),
                "1" if self.bwrap is None else "0",  # bubblewrap makes the namespace itself
                *argv,
            ]
        if self.bwrap is None:
            return argv
        hidden = [self.data]
        if self.home != Path("/") and not self.data.is_relative_to(self.home):
            hidden.append(self.home)
        elif self.home != Path("/"):
            hidden = [self.home]
        ro = {Path(os.path.realpath(p)) for p in read_only}
        # What a Python started here needs: the hub's own (for DROP) when it lives in a hidden folder.
        ro.add(python_prefix(Path(sys.executable)))
        ro.add(Path(sys.base_prefix).resolve())
        rw = {Path(os.path.realpath(p)) for p in [*writable, *([tmp] if tmp is not None else [])]}
        args = [self.bwrap, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]
        args += ["--perms", "1777", "--tmpfs", "/dev/shm", "--perms", "1777", "--tmpfs", "/tmp"]
        for device in sorted(glob.glob("/dev/nvidia*")) + sorted(glob.glob("/dev/dri")):
            args += ["--dev-bind", device, device]
        for path in hidden:
            args += ["--perms", "0755", "--tmpfs", str(path)]
        binds = [(p, "--ro-bind") for p in ro if any(p.is_relative_to(h) for h in hidden)]
        binds += [(p, "--bind") for p in rw]
        made: set = set()
        for path, how in sorted(binds, key=lambda b: (len(b[0].parts), str(b[0]))):
            if not path.exists():
                continue
            # The folders above it, in the empty ones: passable (bwrap would make them 0700).
            for root in hidden:
                if path.is_relative_to(root):
                    for parent in reversed(path.relative_to(root).parents):
                        folder = root / parent
                        if folder != root and folder not in made:
                            made.add(folder)
                            args += ["--perms", "0755", "--dir", str(folder)]
            args += [how, str(path), str(path)]
        args += ["--unshare-pid", "--unshare-ipc", "--unshare-uts", "--die-with-parent"]
        args += ["--chdir", str(cwd), "--"]
        return args + argv


def _passwd_tool(argv: list) -> subprocess.CompletedProcess:
    """useradd or userdel, again a few times while another one (another hub's) holds the lock on
    /etc/passwd."""
    for attempt in range(20):
        done = subprocess.run(argv, capture_output=True, text=True, timeout=60)
        if done.returncode == 0 or "lock" not in done.stderr:
            return done
        time.sleep(0.05 * (attempt + 1))
    return done


def processes_of(uid: int) -> list[int]:
    """The processes whose real, effective or saved user id is ``uid`` (from /proc)."""
    found = []
    for entry in os.scandir("/proc"):
        if not (entry.name.isascii() and entry.name.isdigit()):
            continue
        try:
            with open(f"/proc/{entry.name}/status", "rb") as f:
                for line in f:
                    if line.startswith(b"Uid:"):
                        if str(uid).encode() in line.split()[1:4]:
                            found.append(int(entry.name))
                        break
        except OSError:
            continue
    return found


_KILL_ALL = (
    "import os, sys\n"
    "os.setgroups([]); os.setgid(int(sys.argv[2])); os.setuid(int(sys.argv[1]))\n"
    "try:\n"
    "    os.kill(-1, 9)\n"
    "except ProcessLookupError:\n"
    "    pass\n"
)


def kill_user(who: Identity) -> None:
    """SIGKILL every process of ``who`` (as root). Done by a helper that becomes ``who`` and sends
    SIGKILL to every process it may signal (``kill(-1)``): the kernel goes through them all at
    once, under the lock that fork takes, so a process that forks as fast as it can does not slip
    out. Nothing is started when /proc shows no process of ``who``."""
    for _ in range(5):
        if not processes_of(who.uid):
            return
        subprocess.run(
            [
                os.path.realpath(sys.executable),
                "-I",
                "-S",
                "-c",
                _KILL_ALL,
                str(who.uid),
                str(who.gid),
            ],
            capture_output=True,
            timeout=60,
        )
    if processes_of(who.uid):
        log.warning("processes of %s are still running after SIGKILL", who.name)


def remove_files_of(uid: int, folders: Iterable[str]) -> None:
    """What ``uid`` left at the top of ``folders`` (shared temporary folders), removed without
    following links."""
    for folder in folders:
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            try:
                if entry.stat(follow_symlinks=False).st_uid != uid:
                    continue
                if entry.is_dir(follow_symlinks=False):
                    shutil.rmtree(entry.path, ignore_errors=True)
                else:
                    os.unlink(entry.path)
            except OSError:
                continue


def tmp_env(tmp: Optional[Path]) -> dict:
    """The variables that send a process's temporary files and home to its own ``tmp`` folder."""
    return {} if tmp is None else {"TMPDIR": str(tmp), "HOME": str(tmp)}


def working_copy(bundle: Path, target: Path, who: Optional[Identity], *, link: bool) -> None:
    """``target`` made a working copy of the stored ``bundle`` for ``who`` to run in.

    With ``link`` (as root, where the stored files stay root's and read-only to ``who``) the files
    are hard links: the copy costs no disk, and ``who`` may add or replace files in its folders (they
    are its own) but never change the stored bundle. Otherwise they are copies.
    """
    bundle, target = Path(bundle), Path(target)
    if target.exists():
        shutil.rmtree(target)
    for folder, _dirs, files in os.walk(bundle):
        rel = Path(folder).relative_to(bundle)
        dest = target / rel
        dest.mkdir(parents=True, exist_ok=True)
        if who is not None:
            os.chown(dest, who.uid, who.gid)
        os.chmod(dest, 0o700)
        for name in files:
            src, dst = Path(folder) / name, dest / name
            if link:
                try:
                    os.link(src, dst)
                    continue
                except OSError:
                    link = False  # another file system: copies from here on
            shutil.copy2(src, dst)
            if who is not None:
                os.chown(dst, who.uid, who.gid)
            else:
                os.chmod(dst, os.stat(dst).st_mode | 0o200)
