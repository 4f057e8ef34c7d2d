#!/usr/bin/env python3
"""Run a real Neo4j Community 5.26 LTS server as a plain process on loopback (no Docker).

Used by the integration tests (tests/conftest.py) and the bench scripts, and runnable as a CLI::

    python scripts/neo4j_server.py fetch     # obtain Neo4j from Maven Central into the cache
    python scripts/neo4j_server.py run       # start one, print NEO4J_URI=... and wait for SIGTERM/SIGINT

How Neo4j is obtained (``ensure_neo4j``), in this order, with Maven (batch mode, no stdin):

a. the ``org.neo4j.assembly:neo4j-community:5.26.x:tar.gz:unix`` distribution, if Maven Central has it
   (it has not so far: Neo4j publishes that tarball only on its own download site);
b. otherwise ``org.neo4j:neo4j:[5.26.0,5.27.0)`` and its runtime dependencies, copied into
   ``<cache>/lib`` with ``dependency:copy-dependencies``; that jar set contains the server's own entry
   point ``org.neo4j.server.CommunityEntryPoint`` (Bolt, auth, system database), which is run directly;
c. if that class were missing, the same jars run as an embedded DBMS with its Bolt connector on, through
   a tiny launcher compiled with javac.

The newest 5.26.x patch that Maven resolves is used (``CMDB_NEO4J_VERSION`` pins one). The result is
cached in ``~/.cache/cmdb-test/neo4j-5.26`` (``CMDB_NEO4J_CACHE`` overrides) behind a marker file, so a
second call costs a file read. Maven's own repository is the user's ``~/.m2`` unless
``CMDB_NEO4J_MAVEN_REPO`` names another one.

Each ``Neo4jServer`` gets its own temporary home (config, data, logs), binds Bolt to 127.0.0.1 only (HTTP
and HTTPS are off), runs with authentication on for user ``neo4j`` and a generated password that is put in
place before the first start, and never prints that password.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import fcntl
import hashlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import types
import weakref
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "DEFAULT_CACHE_DIR",
    "NEO4J_VERSION_RANGE",
    "Neo4jInstall",
    "Neo4jServer",
    "Neo4jServerError",
    "ensure_neo4j",
    "load_install",
    "main",
]

NEO4J_VERSION_RANGE = "[5.26.0,5.27.0)"
DEFAULT_CACHE_DIR = Path.home() / ".cache" / "cmdb-test" / "neo4j-5.26"
MARKER_NAME = "neo4j-ready.json"
MARKER_FORMAT = 1
ENTRY_POINT = "org.neo4j.server.CommunityEntryPoint"
EMBEDDED_LAUNCHER = "CmdbNeo4jLauncher"
DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.6.1"
MAVEN_TIMEOUT_S = 3600.0
STARTED_LINE = re.compile(r"\bStarted\.\s*$", re.MULTILINE)
# Bolt preamble, then four offers: 5.0-5.8, 4.4, 4.0, 3.0 (each: 0x00, range, minor, major)
BOLT_HANDSHAKE = bytes.fromhex("6060b01700080805000004040000000400000003")

JVM_OPTIONS: tuple[str, ...] = (
    "-XX:+UseG1GC",
    "-XX:-OmitStackTraceInFastThrow",
    "-XX:+UnlockExperimentalVMOptions",
    "-XX:+TrustFinalNonStaticFields",
    "-XX:+DisableExplicitGC",
    "-XX:+ExitOnOutOfMemoryError",
    "-Djdk.nio.maxCachedBufferSize=1024",
    "-Dio.netty.tryReflectionSetAccessible=true",
    "-Djdk.tls.ephemeralDHKeySize=2048",
    "-Djdk.tls.rejectClientInitiatedRenegotiation=true",
    "-Dlog4j2.disable.jmx=true",
    "-Dfile.encoding=UTF-8",
    "--add-opens=java.base/java.nio=ALL-UNNAMED",
    "--add-opens=java.base/java.io=ALL-UNNAMED",
    "--add-opens=java.base/sun.nio.ch=ALL-UNNAMED",
)

_LAUNCHER_SOURCE = """\
import java.nio.file.Path;
import org.neo4j.dbms.api.DatabaseManagementService;
import org.neo4j.dbms.api.DatabaseManagementServiceBuilder;

public final class CmdbNeo4jLauncher {
    public static void main(String[] args) throws Exception {
        DatabaseManagementService dbms = new DatabaseManagementServiceBuilder(Path.of(args[0]))
                .loadPropertiesFromFile(Path.of(args[1]))
                .build();
        Runtime.getRuntime().addShutdownHook(new Thread(dbms::shutdown));
        System.out.println("Started.");
        System.out.flush();
        Thread.currentThread().join();
    }
}
"""


class Neo4jServerError(RuntimeError):
    """Neo4j could not be obtained, started or stopped."""


@dataclass(frozen=True)
class Neo4jInstall:
    """What ``ensure_neo4j`` left in the cache directory."""

    cache_dir: Path
    version: str
    approach: str  # "assembly" | "server" | "embedded"
    coordinates: str
    lib_dir: Path
    main_class: str
    extra_classpath: tuple[Path, ...] = ()

    @property
    def classpath(self) -> str:
        return os.pathsep.join([*(str(p) for p in self.extra_classpath), str(self.lib_dir / "*")])


# --------------------------------------------------------------------------------------------------------
# Obtaining Neo4j
# --------------------------------------------------------------------------------------------------------


def _default_cache_dir() -> Path:
    env = os.environ.get("CMDB_NEO4J_CACHE")
    return Path(env).expanduser() if env else DEFAULT_CACHE_DIR


def _find_tool(name: str) -> str:
    java_home = os.environ.get("JAVA_HOME")
    if java_home and name in ("java", "javac"):
        candidate = Path(java_home) / "bin" / name
        if candidate.is_file():
            return str(candidate)
    found = shutil.which(name)
    if found is None:
        raise Neo4jServerError(f"{name!r} not found on PATH (Java 17+ and Maven 3.6+ are needed)")
    return found


def load_install(cache_dir: Path | None = None) -> Neo4jInstall | None:
    """The install recorded in ``cache_dir``'s marker file, or None if there is no complete one."""
    cache = (cache_dir or _default_cache_dir()).expanduser().resolve()
    try:
        data = json.loads((cache / MARKER_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("format") != MARKER_FORMAT:
        return None
    try:
        install = Neo4jInstall(
            cache_dir=cache,
            version=str(data["version"]),
            approach=str(data["approach"]),
            coordinates=str(data["coordinates"]),
            lib_dir=cache / str(data["lib_dir"]),
            main_class=str(data["main_class"]),
            extra_classpath=tuple(cache / str(p) for p in data.get("extra_classpath", [])),
        )
    except (KeyError, TypeError):
        return None
    pinned = os.environ.get("CMDB_NEO4J_VERSION")
    if pinned and pinned != install.version:
        return None
    if not install.lib_dir.is_dir() or not any(install.lib_dir.glob("*.jar")):
        return None
    return install


def ensure_neo4j(cache_dir: Path | None = None) -> Path:
    """Make sure Neo4j 5.26.x is in ``cache_dir`` (see the module doc) and return that directory.

    Idempotent and cheap once done; safe to call from several processes at once (file lock).
    """
    cache = (cache_dir or _default_cache_dir()).expanduser().resolve()
    if load_install(cache) is not None:
        return cache
    cache.mkdir(parents=True, exist_ok=True)
    with open(cache / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if load_install(cache) is None:
                _build_install(cache)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    if load_install(cache) is None:
        raise Neo4jServerError(f"Neo4j install in {cache} is incomplete after fetching")
    return cache


def _pom(dependency: str) -> str:
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.cmdb-test</groupId>
  <artifactId>neo4j-fetch</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    {dependency}
  </dependencies>
</project>
"""


def _run_maven(pom_dir: Path, goal_args: Sequence[str]) -> subprocess.CompletedProcess[str]:
    cmd = [_find_tool("mvn"), "-B", "-q", "-Dstyle.color=never", "-Daether.connector.basic.threads=8"]
    repo = os.environ.get("CMDB_NEO4J_MAVEN_REPO")
    if repo:
        cmd.append(f"-Dmaven.repo.local={Path(repo).expanduser().resolve()}")
    cmd += ["-f", str(pom_dir / "pom.xml"), *goal_args]
    try:
        return subprocess.run(
            cmd,
            cwd=pom_dir,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=MAVEN_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise Neo4jServerError(f"Maven timed out after {MAVEN_TIMEOUT_S:.0f}s: {' '.join(cmd)}") from exc


def _maven_tail(result: subprocess.CompletedProcess[str], lines: int = 25) -> str:
    text = (result.stdout or "") + (result.stderr or "")
    return "\n".join(text.strip().splitlines()[-lines:])


def _log(message: str) -> None:
    print(f"[neo4j_server] {message}", file=sys.stderr, flush=True)


_NO_DEPS = "<exclusions><exclusion><groupId>*</groupId><artifactId>*</artifactId></exclusion></exclusions>"


def _resolve_versions(work: Path, group: str, artifact: str, extra: str = "") -> list[str]:
    """The newest 5.26.x of ``group:artifact`` that Maven's range resolution finds ([] if none).

    The range sits on a dependency with every transitive dependency excluded: a plain range dependency
    makes Maven read the whole dependency tree of every version in the range (thousands of poms).
    """
    pinned = os.environ.get("CMDB_NEO4J_VERSION")
    if pinned:
        return [pinned]
    pom_dir = work / f"range-{artifact}"
    pom_dir.mkdir(parents=True)
    dep = (
        f"<dependency><groupId>{group}</groupId><artifactId>{artifact}</artifactId>"
        f"<version>{NEO4J_VERSION_RANGE}</version>{extra}{_NO_DEPS}</dependency>"
    )
    (pom_dir / "pom.xml").write_text(_pom(dep), encoding="utf-8")
    listing = pom_dir / "list.txt"
    goals = [f"{DEPENDENCY_PLUGIN}:list", f"-DoutputFile={listing}", "-DexcludeTransitive=true"]
    result = _run_maven(pom_dir, goals)
    if result.returncode != 0 or not listing.exists():
        return []
    pattern = re.compile(rf"^\s*{re.escape(group)}:{re.escape(artifact)}:\S*?(5\.26\.(\d+)):", re.MULTILINE)
    found = pattern.search(listing.read_text(encoding="utf-8"))
    if found is None:
        return []
    newest = int(found.group(2))
    # Newest first; older patches are fallbacks in case the newest one is only partly published.
    return [f"5.26.{n}" for n in range(newest, max(-1, newest - 3), -1)]


def _try_assembly(cache: Path, work: Path) -> Neo4jInstall | None:
    """(a) The packaged community server from Maven Central, if it is published there."""
    extra = "<type>tar.gz</type><classifier>unix</classifier>"
    for version in _resolve_versions(work, "org.neo4j.assembly", "neo4j-community", extra):
        pom_dir = work / f"assembly-{version}"
        pom_dir.mkdir(parents=True)
        dep = (
            "<dependency><groupId>org.neo4j.assembly</groupId><artifactId>neo4j-community</artifactId>"
            f"<version>{version}</version>{extra}</dependency>"
        )
        (pom_dir / "pom.xml").write_text(_pom(dep), encoding="utf-8")
        out = pom_dir / "out"
        result = _run_maven(
            pom_dir,
            [
                f"{DEPENDENCY_PLUGIN}:copy-dependencies",
                f"-DoutputDirectory={out}",
                "-DexcludeTransitive=true",
            ],
        )
        tarball = out / f"neo4j-community-{version}-unix.tar.gz"
        if result.returncode != 0 or not tarball.is_file():
            continue
        dist = cache / "dist"
        shutil.rmtree(dist, ignore_errors=True)
        dist.mkdir()
        subprocess.run(["tar", "-xzf", str(tarball), "-C", str(dist)], check=True, stdin=subprocess.DEVNULL)
        lib_dirs = sorted(dist.glob("*/lib"))
        if lib_dirs:
            return Neo4jInstall(
                cache_dir=cache,
                version=version,
                approach="assembly",
                coordinates=f"org.neo4j.assembly:neo4j-community:{version}:tar.gz:unix",
                lib_dir=lib_dirs[0],
                main_class=ENTRY_POINT,
            )
    _log("org.neo4j.assembly:neo4j-community:tar.gz:unix is not on Maven Central; using org.neo4j:neo4j")
    return None


def _jar_has_class(jar: Path, class_name: str) -> bool:
    try:
        with zipfile.ZipFile(jar) as zf:
            return class_name.replace(".", "/") + ".class" in zf.namelist()
    except (OSError, zipfile.BadZipFile):
        return False


def _fetch_jars(cache: Path, work: Path) -> Neo4jInstall:
    """(b) org.neo4j:neo4j with its runtime dependencies; (c) if its server entry point is missing."""
    versions = _resolve_versions(work, "org.neo4j", "neo4j", "<type>pom</type>")
    if not versions:
        raise Neo4jServerError(f"Maven found no org.neo4j:neo4j in {NEO4J_VERSION_RANGE}")
    staging = cache / "lib.tmp"
    errors: list[str] = []
    for version in versions:
        pom_dir = work / f"server-{version}"
        pom_dir.mkdir(parents=True)
        dep = (
            "<dependency><groupId>org.neo4j</groupId><artifactId>neo4j</artifactId>"
            f"<version>{version}</version></dependency>"
        )
        (pom_dir / "pom.xml").write_text(_pom(dep), encoding="utf-8")
        shutil.rmtree(staging, ignore_errors=True)
        _log(f"resolving org.neo4j:neo4j:{version} and its runtime dependencies")
        result = _run_maven(
            pom_dir,
            [
                f"{DEPENDENCY_PLUGIN}:copy-dependencies",
                f"-DoutputDirectory={staging}",
                "-DincludeScope=runtime",
                "-DexcludeTypes=pom",
            ],
        )
        main_jar = staging / f"neo4j-{version}.jar"
        if result.returncode == 0 and main_jar.is_file():
            break
        errors.append(f"org.neo4j:neo4j:{version}:\n{_maven_tail(result)}")
    else:
        raise Neo4jServerError("Maven could not resolve Neo4j:\n" + "\n".join(errors))
    lib = cache / "lib"
    shutil.rmtree(lib, ignore_errors=True)
    staging.rename(lib)
    if _jar_has_class(lib / main_jar.name, ENTRY_POINT):
        return Neo4jInstall(
            cache_dir=cache,
            version=version,
            approach="server",
            coordinates=f"org.neo4j:neo4j:{version} (runtime deps) -> {ENTRY_POINT}",
            lib_dir=lib,
            main_class=ENTRY_POINT,
        )
    return _compile_launcher(cache, lib, version, f"{ENTRY_POINT} not found")


def _compile_launcher(cache: Path, lib: Path, version: str, reason: str) -> Neo4jInstall:
    """(c) Embedded DBMS with Bolt, through a launcher compiled with javac."""
    _log(f"{reason}; compiling an embedded launcher")
    src = cache / "launcher-src"
    classes = cache / "launcher"
    shutil.rmtree(src, ignore_errors=True)
    shutil.rmtree(classes, ignore_errors=True)
    src.mkdir()
    (src / f"{EMBEDDED_LAUNCHER}.java").write_text(_LAUNCHER_SOURCE, encoding="utf-8")
    result = subprocess.run(
        [
            _find_tool("javac"),
            "--release",
            "17",
            "-cp",
            str(lib / "*"),
            "-d",
            str(classes),
            str(src / f"{EMBEDDED_LAUNCHER}.java"),
        ],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise Neo4jServerError(f"javac failed for the embedded launcher:\n{_maven_tail(result)}")
    return Neo4jInstall(
        cache_dir=cache,
        version=version,
        approach="embedded",
        coordinates=f"org.neo4j:neo4j:{version} (runtime deps), embedded via {EMBEDDED_LAUNCHER}",
        lib_dir=lib,
        main_class=EMBEDDED_LAUNCHER,
        extra_classpath=(classes,),
    )


def _build_install(cache: Path) -> None:
    _find_tool("java")
    approach = os.environ.get("CMDB_NEO4J_APPROACH", "auto")
    if approach not in ("auto", "assembly", "server", "embedded"):
        raise Neo4jServerError(f"CMDB_NEO4J_APPROACH={approach!r}: expected auto|assembly|server|embedded")
    started = time.monotonic()
    spec = os.environ.get("CMDB_NEO4J_VERSION") or NEO4J_VERSION_RANGE
    _log(f"fetching Neo4j {spec} with Maven into {cache} (once; may take minutes)")
    (cache / MARKER_NAME).unlink(missing_ok=True)
    work = Path(tempfile.mkdtemp(prefix="fetch-", dir=cache))
    try:
        install: Neo4jInstall | None = None
        if approach in ("auto", "assembly"):
            install = _try_assembly(cache, work)
            if install is None and approach == "assembly":
                raise Neo4jServerError("the Neo4j community assembly is not available from Maven")
        if install is None:
            install = _fetch_jars(cache, work)
            if approach == "embedded" and install.approach != "embedded":
                reason = "CMDB_NEO4J_APPROACH=embedded"
                install = _compile_launcher(cache, install.lib_dir, install.version, reason)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    marker = {
        "format": MARKER_FORMAT,
        "version": install.version,
        "approach": install.approach,
        "coordinates": install.coordinates,
        "lib_dir": str(install.lib_dir.relative_to(cache)),
        "main_class": install.main_class,
        "extra_classpath": [str(p.relative_to(cache)) for p in install.extra_classpath],
        "fetched_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    tmp = cache / (MARKER_NAME + ".tmp")
    tmp.write_text(json.dumps(marker, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, cache / MARKER_NAME)
    _log(f"Neo4j {install.version} ready ({install.approach}) in {time.monotonic() - started:.1f}s")


# --------------------------------------------------------------------------------------------------------
# Running a server
# --------------------------------------------------------------------------------------------------------


def _free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _auth_ini_line(user: str, password: str) -> str:
    """The line ``neo4j-admin dbms set-initial-password`` writes to data/dbms/auth.ini.

    Neo4j 5 stores SHA-256 iterated 1024 times over salt+password (Shiro's SimpleHash), hex encoded.
    """
    iterations = 1024
    salt = secrets.token_bytes(32)
    digest = hashlib.sha256(salt + password.encode("utf-8")).digest()
    for _ in range(iterations - 1):
        digest = hashlib.sha256(digest).digest()
    return f"{user}:SHA-256,{digest.hex()},{salt.hex()},{iterations}:\n"


def _tail(path: Path, lines: int) -> str:
    try:
        with path.open("rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - 64 * 1024))
            text = f.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def _rss_bytes(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


_LIVE: set[Neo4jServer] = set()  # running servers: kept alive until stopped
_INSTANCES: weakref.WeakSet[Neo4jServer] = weakref.WeakSet()


@atexit.register
def _close_all_at_exit() -> None:
    """Stop servers still running when the interpreter exits, and delete the temporary homes."""
    for server in list(_INSTANCES):
        with contextlib.suppress(Exception):
            server.close()


class Neo4jServer:
    """One Neo4j server process on 127.0.0.1 with its own temporary home directory.

    ``home`` defaults to a fresh temporary directory that ``close()``, leaving the ``with`` block or the
    interpreter's exit deletes (unless ``CMDB_NEO4J_KEEP_HOME`` is set); a given ``home`` is kept.
    ``stop()``/``kill()`` keep the data so ``restart()`` can recover it.
    """

    def __init__(
        self,
        *,
        cache_dir: Path | None = None,
        home: Path | None = None,
        password: str | None = None,
        heap: str = "512m",
        pagecache: str = "128m",
        startup_timeout: float = 120.0,
        extra_config: Mapping[str, str] | None = None,
        jvm_options: Sequence[str] = (),
    ) -> None:
        self.cache_dir = cache_dir
        self.user = "neo4j"
        self.password = password or secrets.token_urlsafe(24)
        self.heap = heap
        self.pagecache = pagecache
        self.startup_timeout = startup_timeout
        self.extra_config: dict[str, str] = dict(extra_config or {})
        self.jvm_options: list[str] = list(jvm_options)
        self._owns_home = home is None and not os.environ.get("CMDB_NEO4J_KEEP_HOME")
        self.home = Path(home) if home is not None else Path(tempfile.mkdtemp(prefix="cmdb-neo4j-"))
        self.home.mkdir(parents=True, exist_ok=True)
        # Delete an owned home if this object is dropped without close() (close() and exit do it too).
        self._remove_home = weakref.finalize(self, shutil.rmtree, str(self.home), True)
        self._remove_home.atexit = False
        if not self._owns_home:
            self._remove_home.detach()
        _INSTANCES.add(self)
        self.port: int | None = None
        self.install: Neo4jInstall | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._closed = False
        self._started_ok = False
        self._cds_dump: tuple[Path, Path] | None = None  # (temporary dump, final archive)
        self.start_seconds: float | None = None

    def __repr__(self) -> str:  # never shows the password
        return f"Neo4jServer(uri={self.uri!r}, home={str(self.home)!r}, pid={self.pid})"

    # -- addresses ----------------------------------------------------------------------------------------

    @property
    def uri(self) -> str:
        """``neo4j://127.0.0.1:PORT`` (routing scheme; a single server routes to itself)."""
        return f"neo4j://127.0.0.1:{self.port}" if self.port is not None else ""

    @property
    def bolt_uri(self) -> str:
        """``bolt://127.0.0.1:PORT`` (direct connection)."""
        return f"bolt://127.0.0.1:{self.port}" if self.port is not None else ""

    @property
    def auth(self) -> tuple[str, str]:
        return (self.user, self.password)

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def conf_dir(self) -> Path:
        return self.home / "conf"

    @property
    def data_dir(self) -> Path:
        return self.home / "data"

    @property
    def logs_dir(self) -> Path:
        return self.home / "logs"

    @property
    def log_path(self) -> Path:
        """Neo4j's user log (``neo4j.log``); the JVM's stdout/stderr go to ``console.log`` beside it."""
        return self.logs_dir / "neo4j.log"

    @property
    def console_log_path(self) -> Path:
        return self.logs_dir / "console.log"

    def is_running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def rss_bytes(self) -> int:
        """Resident memory of the server process (0 when not running)."""
        return _rss_bytes(self._proc.pid) if self.is_running() and self._proc is not None else 0

    # -- life cycle ---------------------------------------------------------------------------------------

    def start(self, port: int | None = None) -> None:
        """Start on 127.0.0.1:``port`` (a free port if None; the previous one after a stop/kill).

        Returns once Bolt accepts connections and a query succeeds; raises ``Neo4jServerError`` with the
        tail of the server log otherwise (within ``startup_timeout`` seconds).
        """
        if self._closed:
            raise Neo4jServerError("this Neo4jServer was closed")
        if self.is_running():
            raise Neo4jServerError(f"already running: {self!r}")
        if self.install is None:
            install = load_install(ensure_neo4j(self.cache_dir))
            if install is None:
                raise Neo4jServerError("Neo4j install vanished from the cache")
            self.install = install
        chosen = port if port is not None else self.port
        attempts = 1 if chosen is not None else 3
        for attempt in range(attempts):
            self.port = chosen if chosen is not None else _free_loopback_port()
            try:
                self._start_once()
                return
            except Neo4jServerError as exc:
                # A port picked by us may have been taken between probing and binding: try another one.
                if attempt + 1 < attempts and "Address already in use" in str(exc):
                    continue
                raise

    def _start_once(self) -> None:
        assert self.install is not None and self.port is not None
        self._started_ok = False
        for sub in ("conf", "data", "logs", "run", "import", "plugins"):
            (self.home / sub).mkdir(parents=True, exist_ok=True)
        self._write_config()
        self._write_initial_password()
        log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        java = _find_tool("java")
        cmd = [java, f"-Xms{self.heap}", f"-Xmx{self.heap}", *JVM_OPTIONS, *self._cds_options(java)]
        cmd += [*self.jvm_options, "-cp", self.install.classpath, self.install.main_class]
        if self.install.approach == "embedded":
            cmd += [str(self.home), str(self.conf_dir / "neo4j.conf")]
        else:
            cmd += [f"--home-dir={self.home}", f"--config-dir={self.conf_dir}"]
        env = {k: v for k, v in os.environ.items() if not k.startswith("NEO4J_")}
        env["NEO4J_HOME"] = str(self.home)
        env["NEO4J_CONF"] = str(self.conf_dir)
        started = time.monotonic()
        with self.console_log_path.open("ab") as console:
            console.write(f"--- starting {self.install.main_class} on port {self.port}\n".encode())
            console.flush()
            self._proc = subprocess.Popen(
                cmd,
                cwd=self.home,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=console,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        _LIVE.add(self)
        try:
            self._wait_ready(started, log_offset)
        except BaseException:
            self._terminate(signal.SIGKILL, timeout=30.0)
            raise
        self.start_seconds = time.monotonic() - started
        self._started_ok = True

    def _cds_options(self, java: str) -> list[str]:
        """Application class-data sharing: roughly halves JVM start-up once an archive exists.

        The first server (per JDK and jar set) dumps the loaded classes when it is stopped cleanly; later
        ones map that archive. ``CMDB_NEO4J_CDS=0`` turns this off.
        """
        self._cds_dump = None
        if self.install is None or os.environ.get("CMDB_NEO4J_CDS", "1") in ("0", "false", "no"):
            return []
        java_bin = Path(java).resolve()
        st = java_bin.stat()
        jars = sorted(p.name for p in self.install.lib_dir.glob("*.jar"))
        key = json.dumps(
            [str(java_bin), st.st_size, st.st_mtime_ns, self.install.classpath, self.install.main_class, jars]
        )
        cds_dir = self.install.cache_dir / "cds"
        archive = cds_dir / f"neo4j-{hashlib.sha256(key.encode()).hexdigest()[:16]}.jsa"
        if archive.is_file():
            return [f"-XX:SharedArchiveFile={archive}", "-Xlog:cds=off", "-Xlog:cds+dynamic=off"]
        cds_dir.mkdir(parents=True, exist_ok=True)
        dump = cds_dir / f"{archive.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
        self._cds_dump = (dump, archive)
        return [f"-XX:ArchiveClassesAtExit={dump}", "-Xlog:cds=off", "-Xlog:cds+dynamic=off"]

    def _finish_cds_dump(self, clean_exit: bool) -> None:
        if self._cds_dump is None:
            return
        dump, archive = self._cds_dump
        self._cds_dump = None
        try:
            if clean_exit and self._started_ok and dump.is_file() and dump.stat().st_size > 0:
                os.replace(dump, archive)
        finally:
            dump.unlink(missing_ok=True)

    def _write_config(self) -> None:
        assert self.port is not None
        h = self.home
        settings: dict[str, str] = {
            "server.directories.data": str(h / "data"),
            "server.directories.logs": str(h / "logs"),
            "server.directories.run": str(h / "run"),
            "server.directories.import": str(h / "import"),
            "server.directories.plugins": str(h / "plugins"),
            "server.default_listen_address": "127.0.0.1",
            "server.default_advertised_address": "127.0.0.1",
            "server.bolt.enabled": "true",
            "server.bolt.listen_address": f"127.0.0.1:{self.port}",
            "server.bolt.advertised_address": f"127.0.0.1:{self.port}",
            "server.http.enabled": "false",
            "server.https.enabled": "false",
            "dbms.security.auth_enabled": "true",
            "dbms.usage_report.enabled": "false",
            "server.memory.pagecache.size": self.pagecache,
            "db.tx_log.preallocate": "false",
            "db.logs.query.enabled": "OFF",
            # Bolt otherwise waits 2 x 5 s on shutdown, after the databases are already checkpointed.
            "internal.server.bolt.thread_pool_shutdown_wait_time": "1s",
            "internal.server.bolt.connection_shutdown_wait_time": "1s",
        }
        settings.update(self.extra_config)
        text = "# generated by scripts/neo4j_server.py\n" + "".join(f"{k}={v}\n" for k, v in settings.items())
        (self.conf_dir / "neo4j.conf").write_text(text, encoding="utf-8")

    def _write_initial_password(self) -> None:
        """Equivalent of ``neo4j-admin dbms set-initial-password``, only before the first start."""
        if (self.data_dir / "databases" / "system").exists():
            return
        dbms = self.data_dir / "dbms"
        dbms.mkdir(parents=True, exist_ok=True)
        path = dbms / "auth.ini"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(_auth_ini_line(self.user, self.password))

    def _failure(self, reason: str) -> Neo4jServerError:
        parts = [f"Neo4j on 127.0.0.1:{self.port} {reason} (home {self.home})"]
        for path in (self.log_path, self.console_log_path):
            tail = _tail(path, 40)
            if tail:
                parts.append(f"--- tail of {path}:\n{tail}")
        message = "\n".join(parts)
        return Neo4jServerError(message.replace(self.password, "********"))

    def _log_says_started(self, offset: int) -> bool:
        try:
            with self.log_path.open("rb") as f:
                f.seek(offset)
                text = f.read().decode("utf-8", errors="replace")
        except OSError:
            text = ""
        if self.install is not None and self.install.approach == "embedded":
            text += _tail(self.console_log_path, 5)
        return STARTED_LINE.search(text) is not None

    def _bolt_handshake(self) -> bool:
        """Bolt's opening exchange: magic preamble, four versions offered, one chosen."""
        assert self.port is not None
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=2.0) as s:
                s.sendall(BOLT_HANDSHAKE)
                reply = b""
                while len(reply) < 4:
                    chunk = s.recv(4 - len(reply))
                    if not chunk:
                        return False
                    reply += chunk
                return reply != b"\x00\x00\x00\x00"
        except OSError:
            return False

    def _query_ok(self) -> bool | None:
        """True if ``RETURN 1`` ran through the neo4j driver, False if not yet, None without the driver."""
        try:
            import neo4j
            from neo4j import exceptions as neo4j_exceptions
        except ImportError:
            return None
        try:
            with neo4j.GraphDatabase.driver(
                self.bolt_uri, auth=self.auth, connection_timeout=3.0, max_connection_lifetime=30
            ) as driver:
                records: Any = driver.execute_query("RETURN 1 AS ok").records
                return bool(records and records[0]["ok"] == 1)
        except neo4j_exceptions.AuthError as exc:
            raise self._failure(f"rejected the generated credentials: {exc}") from None
        except Exception:
            return False

    def _wait_ready(self, started: float, log_offset: int) -> None:
        deadline = started + self.startup_timeout
        proc = self._proc
        assert proc is not None
        while True:
            code = proc.poll()
            if code is not None:
                raise self._failure(f"exited with code {code} while starting")
            if self._bolt_handshake():
                ok = self._query_ok()
                if ok or (ok is None and self._log_says_started(log_offset)):
                    return
            if time.monotonic() > deadline:
                raise self._failure(f"was not ready within {self.startup_timeout:.0f}s")
            time.sleep(0.25)

    def _terminate(self, sig: signal.Signals, timeout: float) -> None:
        proc = self._proc
        if proc is None:
            return
        clean_exit = False
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, sig)
            try:
                proc.wait(timeout=timeout)
                clean_exit = sig == signal.SIGTERM
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=30.0)
        # The JVM leads its own session; make sure nothing else of the group lingers.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        _LIVE.discard(self)
        self._finish_cds_dump(clean_exit)

    def stop(self, timeout: float = 60.0) -> None:
        """Clean shutdown (SIGTERM to the process group, SIGKILL after ``timeout`` s); keeps the data."""
        self._terminate(signal.SIGTERM, timeout)

    def kill(self) -> None:
        """SIGKILL the process group at once (crash simulation); keeps the data for ``restart()``."""
        self._terminate(signal.SIGKILL, timeout=30.0)

    def restart(self) -> None:
        """Start again on the same port with the same data (stops it first if it still runs)."""
        if self.port is None:
            raise Neo4jServerError("restart() before start()")
        if self.is_running():
            self.stop()
        self.start(self.port)

    def close(self) -> None:
        """Stop, and delete the home directory if this object created it."""
        self.stop()
        self._closed = True
        self._remove_home()
        _INSTANCES.discard(self)

    def __enter__(self) -> Neo4jServer:
        if not self.is_running():
            self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: types.TracebackType | None,
    ) -> None:
        self.close()


# --------------------------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------------------------


@contextlib.contextmanager
def _signals_set(event: threading.Event) -> Iterator[None]:
    def handler(signum: int, frame: types.FrameType | None) -> None:
        event.set()

    previous = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def _cmd_fetch(args: argparse.Namespace) -> int:
    started = time.monotonic()
    cache = ensure_neo4j(args.cache_dir)
    install = load_install(cache)
    assert install is not None
    print(f"NEO4J_CACHE={cache}")
    print(f"NEO4J_VERSION={install.version}")
    print(f"NEO4J_APPROACH={install.approach}")
    print(f"NEO4J_COORDINATES={install.coordinates}")
    print(f"seconds={time.monotonic() - started:.2f}", file=sys.stderr)
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    stop_requested = threading.Event()
    with _signals_set(stop_requested):
        server = Neo4jServer(cache_dir=args.cache_dir, heap=args.heap, pagecache=args.pagecache)
        try:
            server.start(args.port)
            pw_file = server.home / "password"
            if args.password_file:
                pw_file = Path(args.password_file).expanduser().resolve()
            pw_file.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(pw_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(server.password)
            env_line = f"NEO4J_URI={server.uri} NEO4J_USER={server.user} NEO4J_PASSWORD_FILE={pw_file}"
            print(env_line, flush=True)
            print(
                f"[neo4j_server] ready in {server.start_seconds or 0:.1f}s, pid {server.pid}, "
                f"rss {server.rss_bytes() / 2**20:.0f} MiB, logs {server.logs_dir}",
                file=sys.stderr,
                flush=True,
            )
            while not stop_requested.wait(1.0):
                if not server.is_running():
                    print("[neo4j_server] server exited unexpectedly", file=sys.stderr, flush=True)
                    return 1
            return 0
        finally:
            server.close()
            if args.password_file:
                with contextlib.suppress(OSError):
                    Path(args.password_file).expanduser().unlink()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Neo4j Community 5.26 on loopback for tests and benchmarks")
    parser.add_argument("--cache-dir", type=Path, default=None, help="default: $CMDB_NEO4J_CACHE or ~/.cache")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("fetch", help="obtain Neo4j into the cache (idempotent)")
    run = sub.add_parser("run", help="start a server and stay in the foreground until SIGTERM/SIGINT")
    run.add_argument("--port", type=int, default=None, help="Bolt port on 127.0.0.1 (default: a free one)")
    run.add_argument("--heap", default="512m")
    run.add_argument("--pagecache", default="128m")
    run.add_argument("--password-file", default=None, help="written 0600 (default: in the server's home)")
    args = parser.parse_args(argv)
    try:
        if args.command == "fetch":
            return _cmd_fetch(args)
        return _cmd_run(args)
    except Neo4jServerError as exc:
        print(f"[neo4j_server] error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
