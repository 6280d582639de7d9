"""The shipped nginx configuration (deploy/nginx/seq-playground.conf) in front of two real Streamlit
servers: sticky sessions, websockets, uploads, and a replica going down.

compose.yaml runs the same file in the nginx image; here it is rendered by deploy/render_nginx.py
(only the `listen` address and the replica list change) and run by Debian's nginx as a foreground
child process with its prefix, temp dirs, logs and pid under tmp_path. The replicas are two
`streamlit run` processes on free loopback ports (cwd = the repository, so .streamlit/config.toml
applies), serving a two-line app that prints which replica ran it: every claim about "which replica"
is checked both by nginx's X-Upstream header and by the replica's own output over the websocket.
Skipped, with the reason, where nginx is not installed (apt-get install -y nginx).
"""
from __future__ import annotations

import http.cookies
import importlib.util
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NGINX = shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if os.path.exists(p)), None)
TEMPLATE = ROOT / "deploy" / "nginx" / "seq-playground.conf"
AFFINITY = "seqpg_replica"
# The name students type into the browser. Not a loopback name on purpose: Streamlit lets loopback
# origins through its Origin check even when Host is wrong, a real host name only when Origin
# equals Host - which needs nginx to pass Host with its port.
PUBLIC_HOST = "playground.test"
XSRF = "_streamlit_xsrf"

pytestmark = pytest.mark.timeout(120)
needs_nginx = pytest.mark.skipif(NGINX is None, reason="nginx not found: install Debian's nginx "
                                                       "(apt-get install -y nginx) to test the proxy configuration")

TINY_APP = textwrap.dedent("""\
    import os
    import streamlit as st
    st.write("replica:" + os.environ["SEQPG_REPLICA"])
""")


def _render_module():
    spec = importlib.util.spec_from_file_location("render_nginx", ROOT / "deploy" / "render_nginx.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


render_nginx = _render_module()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _upload_limit_mb() -> int:
    text = (ROOT / ".streamlit" / "config.toml").read_text()
    try:
        import tomllib
        return int(tomllib.loads(text)["server"]["maxUploadSize"])
    except ImportError:  # Python 3.10
        return int(re.search(r"^\s*maxUploadSize\s*=\s*(\d+)", text, re.MULTILINE).group(1))


# ------------------------------------------------------------------------------------------------
# Processes
# ------------------------------------------------------------------------------------------------
def _stop(proc: subprocess.Popen, sig=signal.SIGTERM, wait: float = 10) -> None:
    """Stop a process this test started (its own process group), SIGKILL if it lingers."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            pass
        try:
            proc.wait(wait)
        except subprocess.TimeoutExpired:
            pass
    try:  # nginx workers, if the master went first
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait(5)


def _wait_healthy(url: str, proc: subprocess.Popen, log: Path, what: str, timeout: float = 60) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited ({proc.returncode}):\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{what} not healthy within {timeout:.0f} s:\n{log.read_text()[-3000:]}")


class Replica:
    def __init__(self, name: str, app: Path, logs: Path):
        self.name, self.app, self.logs = name, app, logs
        self.port = _free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.log = self.logs / f"{self.name}.log"
        env = {**os.environ, "SEQPG_REPLICA": self.name, "PLAYGROUND_NUM_THREADS": "1"}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", str(self.app), "--server.headless", "true",
             "--server.port", str(self.port), "--server.address", "127.0.0.1",
             "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"],
            cwd=ROOT, env=env, stdout=self.log.open("ab"), stderr=subprocess.STDOUT, start_new_session=True)

    def wait(self) -> None:
        _wait_healthy(f"http://{self.address}/_stcore/health", self.proc, self.log, f"replica {self.name}")

    def stop(self) -> None:
        if self.proc is not None:
            _stop(self.proc)


def _nginx_main_conf(tmp: Path, site: Path) -> str:
    """A minimal main nginx.conf (what the nginx image provides) that includes the rendered site file."""
    temp = {k: tmp / "temp" / k for k in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")}
    for d in temp.values():
        d.mkdir(parents=True, exist_ok=True)
    user = ""
    if os.geteuid() == 0:  # workers would otherwise run as nobody and could not reach tmp_path
        import grp
        import pwd
        user = f"user {pwd.getpwuid(os.geteuid()).pw_name} {grp.getgrgid(os.getegid()).gr_name};"
    return textwrap.dedent(f"""\
        {user}
        daemon off;
        master_process on;
        worker_processes 1;
        pid {tmp}/nginx.pid;
        error_log {tmp}/error.log warn;
        events {{ worker_connections 512; }}
        http {{
            access_log {tmp}/access.log;
            client_body_temp_path {temp['client_body']};
            proxy_temp_path {temp['proxy']};
            fastcgi_temp_path {temp['fastcgi']};
            uwsgi_temp_path {temp['uwsgi']};
            scgi_temp_path {temp['scgi']};
            include {site};
        }}
    """)


class Stack:
    """Two replicas (a, b) behind nginx, all on loopback."""

    def __init__(self, tmp: Path):
        self.tmp = tmp
        app = tmp / "replica_app.py"
        app.write_text(TINY_APP)
        self.replicas = {n: Replica(n, app, tmp) for n in ("a", "b")}
        self.by_address = {r.address: r for r in self.replicas.values()}
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.public = f"{PUBLIC_HOST}:{self.port}"  # Host and Origin as a browser sends them
        self.site = tmp / "seq-playground.conf"
        self.site.write_text(render_nginx.render(f"127.0.0.1:{self.port}",
                                                 [r.address for r in self.replicas.values()]))
        self.conf = tmp / "nginx.conf"
        self.conf.write_text(_nginx_main_conf(tmp, self.site))
        self.nginx: subprocess.Popen | None = None

    def nginx_cmd(self, *extra: str) -> list[str]:
        return [NGINX, "-p", str(self.tmp), "-c", str(self.conf), "-e", str(self.tmp / "error.log"), *extra]

    def start(self) -> None:
        for r in self.replicas.values():
            r.start()
        log = self.tmp / "nginx.out"
        self.nginx = subprocess.Popen(self.nginx_cmd(), stdout=log.open("ab"), stderr=subprocess.STDOUT,
                                      start_new_session=True)
        for r in self.replicas.values():
            r.wait()
        _wait_healthy(self.url + "/_stcore/health", self.nginx, log, "nginx")

    def stop(self) -> None:
        try:
            if self.nginx is not None:
                _stop(self.nginx)
        finally:
            for r in self.replicas.values():
                r.stop()

    def replica_of(self, upstream: str | None) -> str:
        """The replica that answered: the last address in X-Upstream (earlier ones were tried and failed)."""
        assert upstream, "no X-Upstream header: the response did not come from a replica"
        return self.by_address[upstream.split(",")[-1].strip()].name


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    s = Stack(tmp_path_factory.mktemp("proxy"))
    try:
        s.start()
        yield s
    finally:
        s.stop()


# ------------------------------------------------------------------------------------------------
# A client: what a browser tab does (HTTP with cookies, the websocket, uploads)
# ------------------------------------------------------------------------------------------------
class Tab:
    """One browser tab: keeps the cookies nginx and Streamlit set, like a browser does."""

    def __init__(self, stack: Stack, cookies: dict[str, str] | None = None):
        self.stack = stack
        self.cookies = dict(cookies or {})

    def cookie_header(self) -> str:
        return "; ".join(f"{k}={v}" for k, v in self.cookies.items())

    def request(self, path: str, method: str = "GET", data: bytes | None = None,
                headers: dict | None = None) -> tuple[int, dict, bytes]:
        hdrs = {"Host": self.stack.public, **({"Cookie": self.cookie_header()} if self.cookies else {}),
                **(headers or {})}
        req = urllib.request.Request(self.stack.url + path, data=data, method=method, headers=hdrs)
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                status, msg, body = r.status, r.headers, r.read()
        except urllib.error.HTTPError as e:
            status, msg, body = e.code, e.headers, e.read()
        for raw in msg.get_all("Set-Cookie") or []:
            c = http.cookies.SimpleCookie()
            c.load(raw)
            self.cookies.update({k: m.value for k, m in c.items()})
        return status, {"x-upstream": msg.get("X-Upstream"), "set-cookie": msg.get_all("Set-Cookie") or []}, body

    def get(self, path: str = "/_stcore/health") -> tuple[int, str]:
        status, headers, _ = self.request(path)
        return status, self.stack.replica_of(headers["x-upstream"])

    def connect(self, session_id: str | None = None):
        """The websocket as Streamlit's frontend opens it: subprotocols [streamlit, xsrf token, last session]."""
        from websockets.sync.client import connect

        if XSRF not in self.cookies:
            self.get()
        protocols = ["streamlit", self.cookies[XSRF]] + ([session_id] if session_id else [])
        sock = socket.create_connection(("127.0.0.1", self.stack.port), timeout=15)
        return connect(f"ws://{self.stack.public}/_stcore/stream", sock=sock, subprotocols=protocols,
                       origin=f"http://{self.stack.public}", additional_headers={"Cookie": self.cookie_header()},
                       open_timeout=15, close_timeout=2)

    @staticmethod
    def rerun(ws) -> dict:
        """Send a rerun_script BackMsg; collect ForwardMsgs until the script finishes."""
        from streamlit.proto.BackMsg_pb2 import BackMsg
        from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

        msg = BackMsg()
        msg.rerun_script.query_string = ""
        msg.rerun_script.page_script_hash = ""
        ws.send(msg.SerializeToString())
        got = {"types": [], "session_id": None, "texts": []}
        deadline = time.time() + 30
        while time.time() < deadline:
            fm = ForwardMsg()
            fm.ParseFromString(ws.recv(timeout=max(0.1, deadline - time.time())))
            kind = fm.WhichOneof("type")
            got["types"].append(kind)
            if kind == "new_session":
                got["session_id"] = fm.new_session.initialize.session_id
            elif kind == "delta" and fm.delta.new_element.WhichOneof("type") == "markdown":
                got["texts"].append(fm.delta.new_element.markdown.body)
            elif kind == "script_finished":
                return got
        raise AssertionError(f"no script_finished within 30 s; got {got['types']}")

    def upload(self, session_id: str, body_bytes: int) -> tuple[int, str | None, bytes]:
        """PUT a file the way st.file_uploader does; the whole request body is exactly body_bytes."""
        boundary = "----seqpg" + uuid.uuid4().hex
        head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"seqs.fasta\"\r\n"
                f"Content-Type: text/plain\r\n\r\n").encode()
        tail = f"\r\n--{boundary}--\r\n".encode()
        body = head + b"A" * (body_bytes - len(head) - len(tail)) + tail
        status, headers, text = self.request(
            f"/_stcore/upload_file/{session_id}/{uuid.uuid4().hex}", method="PUT", data=body,
            headers={"X-Xsrftoken": self.cookies[XSRF], "Content-Type": f"multipart/form-data; boundary={boundary}"})
        return status, headers["x-upstream"], text


def _replica_text(got: dict) -> str:
    texts = [t for t in got["texts"] if t.startswith("replica:")]
    assert texts, f"the app's output did not arrive over the websocket: {got['types']}"
    return texts[-1].split(":", 1)[1]


def _tab_on(stack: Stack, name: str, tries: int = 64) -> Tab:
    """A new tab whose affinity cookie lands on replica `name`."""
    for _ in range(tries):
        tab = Tab(stack)
        if tab.get()[1] == name:
            return tab
    raise AssertionError(f"{tries} new sessions never reached replica {name}")


# ------------------------------------------------------------------------------------------------
# Tests
# ------------------------------------------------------------------------------------------------
def test_compose_runs_this_config_in_front_of_the_dockerfile_replicas():
    """compose.yaml, the Dockerfile and the nginx file agree on paths and ports (no Docker needed)."""
    yaml = pytest.importorskip("yaml")
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    app, proxy = compose["services"]["app"], compose["services"]["proxy"]
    conf = TEMPLATE.read_text()
    dockerfile = (ROOT / "Dockerfile").read_text()

    assert "./deploy/nginx/seq-playground.conf:/etc/nginx/conf.d/default.conf:ro" in proxy["volumes"]
    assert any(p.endswith(":80") for p in proxy["ports"]) and re.search(r"^\s*listen 80;$", conf, re.M)
    # the replicas: service `app` on 8501, as the upstream line and the Dockerfile's CMD say
    assert "server app:8501 " in conf and "8501" in app["expose"]
    assert '"--server.port", "8501"' in dockerfile and '"--server.address", "0.0.0.0"' in dockerfile
    # health: Docker checks /_stcore/health on every replica; nginx waits for them
    for text in (" ".join(app["healthcheck"]["test"]), dockerfile):
        assert "http://127.0.0.1:8501/_stcore/health" in text
    assert proxy["depends_on"]["app"]["condition"] == "service_healthy"
    assert "/_stcore/health" in " ".join(proxy["healthcheck"]["test"])
    assert str(app["deploy"]["replicas"]).startswith("${REPLICAS")
    # the image: CPU torch first, non-root, one torch thread
    # (the same torch version as requirements.txt, or its `pip install -r` would swap in the CUDA wheel)
    torch_pin = re.search(r"^torch==(\S+)", (ROOT / "requirements.txt").read_text(), re.M).group(1)
    assert f"--index-url https://download.pytorch.org/whl/cpu torch=={torch_pin}" in dockerfile
    assert re.search(r"^USER (?!root)\w+", dockerfile, re.M) and "PLAYGROUND_NUM_THREADS=1" in dockerfile
    assert "HEALTHCHECK" in dockerfile


@needs_nginx
def test_rendered_config_is_the_shipped_one_and_nginx_accepts_it(stack):
    shipped = TEMPLATE.read_text().splitlines()
    rendered = stack.site.read_text().splitlines()
    changed = sorted(set(rendered) - set(shipped))
    assert changed == sorted([f"    listen 127.0.0.1:{stack.port};"]
                             + [f"    server {r.address} {render_nginx.SERVER_OPTIONS};" for r in stack.replicas.values()])
    removed = sorted(line.strip().split(" (")[0] for line in set(shipped) - set(rendered))
    assert removed == sorted(["listen 80;", "# REPLICAS BEGIN", "# REPLICAS END",
                              f"server app:8501 {render_nginx.SERVER_OPTIONS} resolve;"]), \
        "compose's replica line must use the same health-check options the test runs with"
    out = subprocess.run(stack.nginx_cmd("-t"), capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    # nginx must refuse an oversized upload before Streamlit does (see the test below)
    assert f"client_max_body_size {_upload_limit_mb()}m;" in TEMPLATE.read_text(), \
        "client_max_body_size must equal server.maxUploadSize in .streamlit/config.toml"
    with pytest.raises(ValueError, match="host:port"):
        render_nginx.render("8080", ["app"])


def _nginx_version() -> tuple[int, ...]:
    out = subprocess.run([NGINX, "-v"], capture_output=True, text=True, timeout=30).stderr
    return tuple(int(x) for x in re.search(r"nginx/(\d+)\.(\d+)\.(\d+)", out).groups())


@needs_nginx
def test_compose_config_parses_unchanged_on_the_compose_nginx(tmp_path):
    """compose runs the file as it is, with `server app:8501 ... resolve` (nginx >= 1.27.3)."""
    if _nginx_version() < (1, 27, 3):
        pytest.skip(f"nginx {'.'.join(map(str, _nginx_version()))} has no `resolve` for upstream servers "
                    "(1.27.3+, as in compose's nginx:1.28 image); the rendered file is tested instead")
    (tmp_path / "nginx.conf").write_text(_nginx_main_conf(tmp_path, TEMPLATE))
    out = subprocess.run([NGINX, "-t", "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf"),
                          "-e", str(tmp_path / "error.log")], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr


@needs_nginx
def test_one_session_stays_on_one_replica_and_new_sessions_spread(stack):
    tab = Tab(stack)
    status, headers, _ = tab.request("/")
    assert status == 200
    assert any(h.startswith(f"{AFFINITY}=") for h in headers["set-cookie"]), headers["set-cookie"]
    home = stack.replica_of(headers["x-upstream"])
    affinity = tab.cookies[AFFINITY]

    for path in ["/_stcore/health", "/", "/_stcore/host-config", "/_stcore/health"] * 3:
        status, headers, _ = tab.request(path)
        assert status == 200, path
        assert stack.replica_of(headers["x-upstream"]) == home, f"{path} left the session's replica"
        assert not any(h.startswith(f"{AFFINITY}=") for h in headers["set-cookie"]), "the cookie was set again"
    assert tab.cookies[AFFINITY] == affinity

    with tab.connect() as ws:
        assert stack.replica_of(ws.response.headers.get("X-Upstream")) == home
        got = Tab.rerun(ws)
        assert _replica_text(got) == home, "the websocket's script ran on another replica than the page"
        session_id = got["session_id"]
    # A reconnecting tab (network blip, laptop lid) finds its session again: same replica, same id.
    with tab.connect(session_id) as ws:
        got = Tab.rerun(ws)
        assert _replica_text(got) == home
        assert got["session_id"] == session_id

    seen = {Tab(stack).get()[1] for _ in range(24)}
    assert seen == set(stack.replicas), f"24 new sessions all went to {seen}"


@needs_nginx
def test_websocket_through_the_proxy_runs_the_script(stack):
    tab = Tab(stack)
    with tab.connect() as ws:
        # Streamlit accepted the upgrade: nginx passed Upgrade/Connection, and a Host whose port
        # matches the Origin of a page served from a real (non-loopback) host name
        assert ws.subprotocol == "streamlit"
        got = Tab.rerun(ws)
        assert got["types"][0] == "new_session" and got["session_id"]
        assert "delta" in got["types"] and got["types"][-1] == "script_finished"
        first = _replica_text(got)
        again = Tab.rerun(ws)  # the same connection keeps working (a widget change, a Play tick)
        assert _replica_text(again) == first


@needs_nginx
def test_uploads_reach_the_session_replica_up_to_the_streamlit_limit(stack):
    limit = _upload_limit_mb() * 1024 * 1024
    tab = Tab(stack)
    home = tab.get()[1]
    with tab.connect() as ws:
        got = Tab.rerun(ws)
        session_id = got["session_id"]
        # a file just under the limit passes nginx and Streamlit, on the session's replica
        status, upstream, text = tab.upload(session_id, limit)
        assert status == 204, text[:300]
        assert stack.replica_of(upstream) == home
        # one byte more: nginx refuses it itself (413), before any replica sees it
        status, upstream, _ = tab.upload(session_id, limit + 1)
        assert status == 413 and upstream is None
        assert tab.get()[1] == home, "an oversized upload must not move the session"
        # the same upload from a tab whose cookie points at the other replica fails: that replica
        # has never heard of this session. This is what the affinity cookie prevents.
        other = next(n for n in stack.replicas if n != home)
        stranger = _tab_on(stack, other)
        stranger.cookies[XSRF] = tab.cookies[XSRF]
        status, upstream, text = stranger.upload(session_id, 1000)
        assert status == 400 and stack.replica_of(upstream) == other
        assert b"sticky sessions" in text


@needs_nginx
def test_a_replica_going_down_moves_new_sessions_and_health_stays_ok(stack):
    """Last in the module on purpose: replica b stays down (nginx would skip a restarted one for
    fail_timeout anyway), and the fixture's teardown stops what is left."""
    victim_tab = _tab_on(stack, "b")
    with victim_tab.connect() as ws:
        old_session = Tab.rerun(ws)["session_id"]
    survivor, victim = stack.replicas["a"], stack.replicas["b"]
    victim.stop()
    assert victim.proc.poll() is not None, "replica b did not stop"
    # health through the proxy: 200 every time, from the survivor (the first requests try b,
    # fail to connect, and are retried on a: X-Upstream then lists both)
    for _ in range(10):
        status, replica = victim_tab.get("/_stcore/health")
        assert (status, replica) == (200, "a")
    assert {Tab(stack).get()[1] for _ in range(10)} == {"a"}, "new sessions must avoid the dead replica"
    # the tab whose replica died reconnects and gets a working (new) session on the survivor;
    # its old session's state is gone - that is what a replica going down costs
    with victim_tab.connect(old_session) as ws:
        assert stack.replica_of(ws.response.headers.get("X-Upstream")) == "a"
        got = Tab.rerun(ws)
        assert _replica_text(got) == "a"
        assert got["session_id"] != old_session
    assert survivor.proc.poll() is None
