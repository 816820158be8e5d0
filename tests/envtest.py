"""A throwaway Kubernetes control plane (etcd + kube-apiserver) for operator tests.

Python's answer to controller-runtime's ``envtest``: a real ``kube-apiserver``
backed by a real ``etcd``, both on loopback ports, with no kubelet, scheduler or
controller-manager.  The API behaves exactly like a cluster's (validation,
admission, RBAC, resourceVersion conflicts, CRDs, watches), but nothing runs
pods, garbage-collects or finalizes namespaces.

The binaries come from ``hack/testbin.sh``, which caches them in
``$JOBQUEUE_TESTBIN`` (default ``~/.cache/jobqueue/testbin``).

Usage::

    with ControlPlane() as cp:
        cp.apply_crds(["crds/"])
        subprocess.run(["kopf", "run", ...], env={**os.environ, **cp.env()})

Only the standard library is used here (plus the ``openssl`` CLI for
certificates), so importing this module costs nothing.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO

__all__ = [
    "DEFAULT_TESTBIN",
    "ControlPlane",
    "ControlPlaneError",
    "MissingTestbinError",
    "find_testbin",
    "testbin_dir",
]

DEFAULT_TESTBIN = Path.home() / ".cache" / "jobqueue" / "testbin"
# The CN of the client certificate the apiserver's aggregator presents.
FRONT_PROXY_CLIENT = "front-proxy-client"
"""Where ``hack/testbin.sh`` puts the binaries unless ``JOBQUEUE_TESTBIN`` is set."""

REQUIRED_BINARIES: tuple[str, ...] = ("etcd", "kube-apiserver", "kubectl")

ADMIN_USER = "envtest-admin"
ADMIN_GROUP = "system:masters"
SERVICE_CLUSTER_IP_RANGE = "10.0.0.0/24"

_LOG_TAIL_BYTES = 4000


class ControlPlaneError(RuntimeError):
    """The control plane could not be started or a command against it failed."""


class MissingTestbinError(ControlPlaneError):
    """The etcd / kube-apiserver / kubectl binaries are not installed."""


def testbin_dir() -> Path:
    """The directory holding the binaries: ``$JOBQUEUE_TESTBIN`` or the default cache dir."""
    env = os.environ.get("JOBQUEUE_TESTBIN")
    return Path(env).expanduser() if env else DEFAULT_TESTBIN


def find_testbin(
    directory: str | os.PathLike[str] | None = None,
    required: Sequence[str] = REQUIRED_BINARIES,
) -> Path:
    """Return the testbin directory, or raise :class:`MissingTestbinError` saying what to run."""
    bin_dir = Path(directory).expanduser() if directory is not None else testbin_dir()
    missing = [name for name in required if not os.access(bin_dir / name, os.X_OK)]
    if missing:
        raise MissingTestbinError(
            f"envtest binaries missing from {bin_dir}: {', '.join(missing)}. "
            "Run `hack/testbin.sh` from the repository root to build/fetch them "
            "(a cold build takes ~15-25 min on 2 cores; later runs are instant), "
            "or point JOBQUEUE_TESTBIN at a directory that has them."
        )
    return bin_dir


def _free_ports(count: int) -> list[int]:
    """``count`` distinct free loopback ports (all held open while choosing)."""
    socks: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            socks.append(sock)
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in socks]
    finally:
        for sock in socks:
            sock.close()


def _die_with_parent_prefix() -> list[str]:
    """argv prefix asking the kernel to SIGKILL the child when its parent dies.

    Uses util-linux ``setpriv --pdeathsig`` (no ``preexec_fn``, which is unsafe with
    threads).  Caveat of PR_SET_PDEATHSIG: "parent" is the *thread* that spawned the
    child, so start the control plane from a long-lived thread (the main one).
    """
    if sys.platform != "linux":
        return []
    setpriv = shutil.which("setpriv")
    return [setpriv, "--pdeathsig", "KILL", "--"] if setpriv else []


def _tail(path: Path, size: int = _LOG_TAIL_BYTES) -> str:
    try:
        data = path.read_bytes()
    except OSError:
        return "<no log>"
    return data[-size:].decode("utf-8", "replace")


class _Process:
    """A child process whose stdout/stderr go to a log file."""

    def __init__(
        self, name: str, argv: Sequence[str], log_path: Path, *, die_with_parent: bool
    ) -> None:
        self.name = name
        self.log_path = log_path
        self._log: IO[bytes] = log_path.open("wb")
        try:
            prefix = _die_with_parent_prefix() if die_with_parent else []
            self.popen = subprocess.Popen(
                [*prefix, *argv],
                stdin=subprocess.DEVNULL,
                stdout=self._log,
                stderr=subprocess.STDOUT,
            )
        except BaseException:
            self._log.close()
            raise

    def check_alive(self) -> None:
        code = self.popen.poll()
        if code is not None:
            raise ControlPlaneError(
                f"{self.name} exited with code {code}; last log lines "
                f"({self.log_path}):\n{_tail(self.log_path)}"
            )

    def stop(self, timeout: float = 10.0) -> None:
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout)
        self._log.close()


class ControlPlane:
    """etcd + kube-apiserver on 127.0.0.1, for as long as the context manager is open.

    Attributes once started:

    * ``server_url`` -- ``https://127.0.0.1:<port>``
    * ``token`` -- bearer token of ``envtest-admin`` (group ``system:masters``)
    * ``kubeconfig_path`` -- a kubeconfig using that token and the test CA
    * ``ca_path`` -- PEM of the CA that signed the serving certificate
    * ``etcd_url`` -- ``http://127.0.0.1:<port>`` of the backing etcd
    * ``bin_dir`` -- the testbin directory (``kubectl``, ``helm``, ...)
    * ``startup_seconds`` -- how long :meth:`start` took

    Arguments: ``testbin`` (binary dir; default ``$JOBQUEUE_TESTBIN`` or
    ``~/.cache/jobqueue/testbin``), ``start_timeout`` (seconds until ``/readyz``),
    ``extra_apiserver_args`` (appended to kube-apiserver's flags, e.g.
    ``["--feature-gates=..."]``), ``keep_tmpdir`` (keep certs, logs and etcd data
    after stop, for debugging), ``die_with_parent`` (have the kernel kill both
    processes if the Python process dies without running ``stop``).

    Not running: kube-controller-manager, scheduler, kubelet.  So no pods run,
    Jobs/Deployments create nothing, garbage collection and namespace deletion
    never complete (a deleted namespace stays ``Terminating``), and no
    ``default`` ServiceAccount appears (the ServiceAccount admission plugin is
    therefore disabled, so pods can still be created).
    """

    def __init__(
        self,
        testbin: str | os.PathLike[str] | None = None,
        *,
        start_timeout: float = 60.0,
        extra_apiserver_args: Sequence[str] = (),
        keep_tmpdir: bool = False,
        die_with_parent: bool = True,
    ) -> None:
        self._testbin = testbin
        self.start_timeout = start_timeout
        self.extra_apiserver_args = tuple(extra_apiserver_args)
        self.keep_tmpdir = keep_tmpdir
        self.die_with_parent = die_with_parent
        self.token = secrets.token_hex(32)
        self.startup_seconds = 0.0
        self._tmpdir: Path | None = None
        self._etcd: _Process | None = None
        self._apiserver: _Process | None = None
        self._bin_dir: Path | None = None
        self._server_url: str | None = None
        self._etcd_url: str | None = None

    # ---- read-only state ----------------------------------------------------------------

    @property
    def started(self) -> bool:
        return self._apiserver is not None

    def _require_started(self) -> Path:
        if self._tmpdir is None or self._server_url is None:
            raise ControlPlaneError("control plane is not started")
        return self._tmpdir

    @property
    def tmpdir(self) -> Path:
        return self._require_started()

    @property
    def bin_dir(self) -> Path:
        if self._bin_dir is None:
            self._bin_dir = find_testbin(self._testbin)
        return self._bin_dir

    @property
    def server_url(self) -> str:
        self._require_started()
        assert self._server_url is not None
        return self._server_url

    @property
    def etcd_url(self) -> str:
        self._require_started()
        assert self._etcd_url is not None
        return self._etcd_url

    @property
    def kubeconfig_path(self) -> Path:
        return self._require_started() / "kubeconfig"

    @property
    def ca_path(self) -> Path:
        return self._require_started() / "pki" / "ca.crt"

    def env(self) -> dict[str, str]:
        """Environment variables for a child process (e.g. ``kopf run``) to use this cluster."""
        return {"KUBECONFIG": str(self.kubeconfig_path)}

    # ---- lifecycle ----------------------------------------------------------------------

    def __enter__(self) -> ControlPlane:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> ControlPlane:
        """Start etcd and kube-apiserver and wait until ``/readyz`` answers ok.

        Free ports are picked just before the processes bind them; if another
        process grabs one in between, start-up is retried (up to 3 attempts).
        """
        if self.started:
            return self
        began = time.monotonic()
        bin_dir = self.bin_dir  # raises MissingTestbinError first, before any side effect
        attempts = 3
        for attempt in range(1, attempts + 1):
            try:
                self._start_once(bin_dir, began + self.start_timeout)
                break
            except ControlPlaneError as exc:
                if attempt == attempts or "address already in use" not in str(exc):
                    raise
        self.startup_seconds = time.monotonic() - began
        return self

    def _start_once(self, bin_dir: Path, deadline: float) -> None:
        self._tmpdir = Path(tempfile.mkdtemp(prefix="jobqueue-envtest-"))
        try:
            pki = self._tmpdir / "pki"
            pki.mkdir()
            self._make_pki(pki)
            self._start_etcd(bin_dir)
            # Starting kube-apiserver before etcd listens costs gRPC reconnect back-off.
            self._wait_etcd(deadline)
            self._start_apiserver(bin_dir, pki)
            self._write_kubeconfig()
            self._wait_ready(deadline)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Terminate kube-apiserver, then etcd, and remove the temp dir.  Idempotent."""
        errors: list[BaseException] = []
        for proc in (self._apiserver, self._etcd):
            if proc is not None:
                try:
                    proc.stop()
                except BaseException as exc:  # keep stopping the others
                    errors.append(exc)
        self._apiserver = None
        self._etcd = None
        if self._tmpdir is not None and not self.keep_tmpdir:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
        self._tmpdir = None
        self._server_url = None
        self._etcd_url = None
        if errors:
            raise errors[0]

    # ---- helpers for tests --------------------------------------------------------------

    def kubectl(
        self, *args: str, check: bool = True, timeout: float = 60.0, input: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run the testbin's ``kubectl --kubeconfig <ours> ARGS``; raise on failure if ``check``."""
        argv = [str(self.bin_dir / "kubectl"), "--kubeconfig", str(self.kubeconfig_path), *args]
        result = subprocess.run(
            argv,
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            env=self._child_env(),
        )
        if check and result.returncode != 0:
            raise ControlPlaneError(
                f"kubectl {' '.join(args)} failed ({result.returncode}):\n"
                f"{result.stderr.strip() or result.stdout.strip()}"
            )
        return result

    def apply_crds(
        self,
        paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
        timeout: float = 60.0,
    ) -> list[str]:
        """Apply CRD manifests (files or directories) and wait until they are Established.

        Returns the applied object names (``customresourcedefinition.apiextensions.k8s.io/x``).
        """
        if isinstance(paths, str | os.PathLike):
            paths = [paths]
        args: list[str] = []
        for path in paths:
            args += ["-f", os.fspath(path)]
        if not args:
            return []
        applied = self.kubectl("apply", "--server-side", "-o", "name", *args, timeout=timeout)
        names = [line.strip() for line in applied.stdout.splitlines() if line.strip()]
        crds = [n for n in names if n.startswith("customresourcedefinition")]
        if crds:
            self.kubectl(
                "wait",
                "--for=condition=Established",
                f"--timeout={max(1, int(timeout))}s",
                *crds,
                timeout=timeout + 10,
            )
        return names

    # ---- internals ----------------------------------------------------------------------

    def _child_env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.pop("KUBECONFIG", None)
        env["HOME"] = str(self._require_started())  # keep kubectl's cache out of ~/.kube
        return env

    def _openssl(self, *args: str, cwd: Path) -> None:
        result = subprocess.run(
            ["openssl", *args], cwd=cwd, capture_output=True, text=True, check=False
        )
        if result.returncode != 0:
            raise ControlPlaneError(f"openssl {' '.join(args)} failed:\n{result.stderr}")

    def _make_pki(self, pki: Path) -> None:
        """CA, serving cert for 127.0.0.1/localhost, service-account key pair (all EC P-256)."""
        if shutil.which("openssl") is None:
            raise ControlPlaneError("the `openssl` CLI is required to make the test certificates")
        ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
        self._openssl(
            "req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.crt", "-days", "2",
            "-subj", "/CN=jobqueue-envtest-ca",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign,digitalSignature",
            cwd=pki,
        )  # fmt: skip
        (pki / "serving.ext").write_text(
            "basicConstraints=critical,CA:FALSE\n"
            "keyUsage=critical,digitalSignature,keyEncipherment\n"
            "extendedKeyUsage=serverAuth\n"
            "subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes,"
            "DNS:kubernetes.default,DNS:kubernetes.default.svc,IP:10.0.0.1\n"
            "authorityKeyIdentifier=keyid,issuer\n"
            "subjectKeyIdentifier=hash\n"
        )
        self._openssl(
            "req", "-new", *ec, "-keyout", "serving.key", "-out", "serving.csr",
            "-subj", "/CN=kube-apiserver",
            cwd=pki,
        )  # fmt: skip
        self._openssl(
            "x509", "-req", "-in", "serving.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
            "-CAcreateserial", "-days", "2", "-extfile", "serving.ext", "-out", "serving.crt",
            cwd=pki,
        )  # fmt: skip
        self._openssl(
            "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-out", "sa.key",
            cwd=pki,
        )  # fmt: skip
        self._openssl("pkey", "-in", "sa.key", "-pubout", "-out", "sa.pub", cwd=pki)
        # The aggregator's identity towards extension servers (front proxy): a CA
        # of its own and the client certificate the apiserver proxies with.
        self._openssl(
            "req", "-x509", *ec, "-keyout", "front-proxy-ca.key", "-out", "front-proxy-ca.crt",
            "-days", "2", "-subj", "/CN=jobqueue-envtest-front-proxy-ca",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign,digitalSignature",
            cwd=pki,
        )  # fmt: skip
        self.sign_client_cert(pki / "front-proxy-client", FRONT_PROXY_CLIENT, ca="front-proxy-ca")
        # Static token file: token,user,uid,"group1,group2"
        (pki / "tokens.csv").write_text(f'{self.token},{ADMIN_USER},{ADMIN_USER},"{ADMIN_GROUP}"\n')

    def sign_client_cert(self, stem: Path, common_name: str, *, ca: str = "ca") -> None:
        """`<stem>.crt` and `<stem>.key`: a client certificate for CN `common_name`
        signed by the CA `pki/<ca>.crt` (``ca`` or ``front-proxy-ca``)."""
        pki = self._require_started_tmp() / "pki"
        ext = stem.with_suffix(".ext")
        ext.write_text(
            "basicConstraints=critical,CA:FALSE\n"
            "keyUsage=critical,digitalSignature,keyEncipherment\n"
            "extendedKeyUsage=clientAuth\n"
        )
        self._openssl(
            "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", f"{stem}.key", "-out", f"{stem}.csr", "-subj", f"/CN={common_name}",
            cwd=pki,
        )  # fmt: skip
        self._openssl(
            "x509", "-req", "-in", f"{stem}.csr", "-CA", f"{ca}.crt", "-CAkey", f"{ca}.key",
            "-CAcreateserial", "-days", "2", "-extfile", str(ext), "-out", f"{stem}.crt",
            cwd=pki,
        )  # fmt: skip

    @property
    def front_proxy_ca_path(self) -> Path:
        return self._require_started() / "pki" / "front-proxy-ca.crt"

    def _start_etcd(self, bin_dir: Path) -> None:
        tmp = self._require_started_tmp()
        client_port, peer_port = _free_ports(2)
        client_url = f"http://127.0.0.1:{client_port}"
        peer_url = f"http://127.0.0.1:{peer_port}"
        self._etcd_url = client_url
        self._etcd = _Process(
            "etcd",
            [
                str(bin_dir / "etcd"),
                "--name=envtest",
                f"--data-dir={tmp / 'etcd'}",
                f"--listen-client-urls={client_url}",
                f"--advertise-client-urls={client_url}",
                f"--listen-peer-urls={peer_url}",
                f"--initial-advertise-peer-urls={peer_url}",
                f"--initial-cluster=envtest={peer_url}",
                "--initial-cluster-state=new",
                "--unsafe-no-fsync=true",  # a test cluster: speed over durability
                "--log-level=warn",
            ],
            tmp / "etcd.log",
            die_with_parent=self.die_with_parent,
        )

    def _start_apiserver(self, bin_dir: Path, pki: Path) -> None:
        tmp = self._require_started_tmp()
        assert self._etcd_url is not None
        (port,) = _free_ports(1)
        self._server_url = f"https://127.0.0.1:{port}"
        args = [
            str(bin_dir / "kube-apiserver"),
            f"--etcd-servers={self._etcd_url}",
            "--etcd-prefix=/registry",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            f"--secure-port={port}",
            f"--cert-dir={tmp / 'apiserver-certs'}",
            f"--tls-cert-file={pki / 'serving.crt'}",
            f"--tls-private-key-file={pki / 'serving.key'}",
            f"--client-ca-file={pki / 'ca.crt'}",
            f"--token-auth-file={pki / 'tokens.csv'}",
            "--authorization-mode=RBAC",
            # Front-proxy settings, published in kube-system/extension-apiserver-
            # authentication for aggregated API servers (the external-metrics server).
            f"--requestheader-client-ca-file={pki / 'front-proxy-ca.crt'}",
            f"--requestheader-allowed-names={FRONT_PROXY_CLIENT}",
            "--requestheader-username-headers=X-Remote-User",
            "--requestheader-group-headers=X-Remote-Group",
            "--requestheader-extra-headers-prefix=X-Remote-Extra-",
            f"--proxy-client-cert-file={pki / 'front-proxy-client.crt'}",
            f"--proxy-client-key-file={pki / 'front-proxy-client.key'}",
            f"--service-cluster-ip-range={SERVICE_CLUSTER_IP_RANGE}",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-account-key-file={pki / 'sa.pub'}",
            f"--service-account-signing-key-file={pki / 'sa.key'}",
            "--allow-privileged=true",
            # No controller-manager creates the `default` ServiceAccount, so this
            # admission plugin would reject every pod.
            "--disable-admission-plugins=ServiceAccount",
            "--v=1",
            *self.extra_apiserver_args,
        ]
        self._apiserver = _Process(
            "kube-apiserver", args, tmp / "kube-apiserver.log", die_with_parent=self.die_with_parent
        )

    def _require_started_tmp(self) -> Path:
        if self._tmpdir is None:
            raise ControlPlaneError("no temp dir")
        return self._tmpdir

    def _write_kubeconfig(self) -> None:
        tmp = self._require_started_tmp()
        assert self._server_url is not None
        config: Mapping[str, object] = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "envtest",
                    "cluster": {
                        "server": self._server_url,
                        "certificate-authority": str(tmp / "pki" / "ca.crt"),
                    },
                }
            ],
            "users": [{"name": ADMIN_USER, "user": {"token": self.token}}],
            "contexts": [
                {
                    "name": "envtest",
                    "context": {
                        "cluster": "envtest",
                        "user": ADMIN_USER,
                        "namespace": "default",
                    },
                }
            ],
            "current-context": "envtest",
            "preferences": {},
        }
        path = tmp / "kubeconfig"
        # JSON is YAML: every kubeconfig loader reads it.
        path.write_text(json.dumps(config, indent=2) + "\n")
        path.chmod(0o600)

    def _wait_etcd(self, deadline: float) -> None:
        assert self._etcd is not None and self._etcd_url is not None
        last = "no answer yet"
        while True:
            self._etcd.check_alive()
            try:
                with urllib.request.urlopen(f"{self._etcd_url}/health", timeout=2) as resp:
                    body = resp.read().decode("utf-8", "replace")
                    if resp.status == 200 and '"health":"true"' in body.replace(" ", ""):
                        return
                    last = f"HTTP {resp.status}: {body[:500]}"
            except urllib.error.HTTPError as exc:
                last = f"HTTP {exc.code}: {exc.read().decode('utf-8', 'replace')[:500]}"
            except OSError as exc:
                last = repr(exc)
            if time.monotonic() > deadline:
                raise ControlPlaneError(
                    f"etcd at {self._etcd_url} not healthy after {self.start_timeout:.0f}s; "
                    f"last /health: {last}\n--- etcd log ---\n{_tail(self._etcd.log_path)}"
                )
            time.sleep(0.05)

    def _wait_ready(self, deadline: float) -> None:
        tmp = self._require_started_tmp()
        assert self._server_url is not None
        ctx = ssl.create_default_context(cafile=str(tmp / "pki" / "ca.crt"))
        request = urllib.request.Request(
            f"{self._server_url}/readyz",
            headers={"Authorization": f"Bearer {self.token}"},
        )
        last = "no answer yet"
        while True:
            for proc in (self._etcd, self._apiserver):
                if proc is not None:
                    proc.check_alive()
            try:
                with urllib.request.urlopen(request, context=ctx, timeout=2) as resp:
                    body = resp.read().decode("utf-8", "replace")
                    if resp.status == 200 and body.strip() == "ok":
                        return
                    last = f"HTTP {resp.status}: {body[:500]}"
            except urllib.error.HTTPError as exc:
                last = f"HTTP {exc.code}: {exc.read().decode('utf-8', 'replace')[:500]}"
            except (OSError, ssl.SSLError) as exc:
                last = repr(exc)
            if time.monotonic() > deadline:
                logs = ""
                for proc in (self._etcd, self._apiserver):
                    if proc is not None:
                        logs += f"\n--- {proc.name} ({proc.log_path}) ---\n{_tail(proc.log_path)}"
                raise ControlPlaneError(
                    f"kube-apiserver at {self._server_url} not ready after "
                    f"{self.start_timeout:.0f}s; last /readyz: {last}{logs}"
                )
            time.sleep(0.1)
