"""Render deploy/nginx/seq-playground.conf for replicas that are not the compose service `app`.

compose.yaml uses the file as it is. Elsewhere (several `streamlit run` processes on one machine,
tests/test_proxy.py) only two things change: the address nginx listens on, and the replica list
between the `# REPLICAS BEGIN` / `# REPLICAS END` markers. Everything else (stickiness, websocket
headers, timeouts, upload limit) stays byte for byte the shipped configuration.

    python deploy/render_nginx.py --listen 8080 --replica 127.0.0.1:8501 --replica 127.0.0.1:8502 \\
        > /etc/nginx/conf.d/seq-playground.conf
"""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

TEMPLATE = Path(__file__).resolve().parent / "nginx" / "seq-playground.conf"
SERVER_OPTIONS = "max_fails=3 fail_timeout=10s"

_LISTEN = re.compile(r"^(\s*)listen 80;$", re.MULTILINE)
_REPLICAS = re.compile(r"^(\s*)# REPLICAS BEGIN[^\n]*\n.*?^\s*# REPLICAS END[^\n]*$", re.MULTILINE | re.DOTALL)
_ADDRESS = re.compile(r"^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):\d{1,5}$")


def render(listen: str, replicas: list[str], template: str | None = None,
           server_options: str = SERVER_OPTIONS) -> str:
    """The shipped configuration with its `listen` address and replica list replaced.

    ``listen`` is what nginx's `listen` takes ("8080", "127.0.0.1:8080"); ``replicas`` are
    "host:port" strings. Raises ValueError when an address is malformed or the template no longer
    has exactly one `listen 80;` line and one REPLICAS block (so a changed template cannot be
    rendered into something half-replaced).
    """
    if not replicas:
        raise ValueError("at least one replica (host:port) is needed")
    for address in replicas:
        if not _ADDRESS.match(address):
            raise ValueError(f"replica {address!r} is not host:port (for example 127.0.0.1:8501)")
    if not re.fullmatch(r"(\d{1,5}|[0-9.]+:\d{1,5}|\[[0-9a-fA-F:]+\]:\d{1,5})", listen):
        raise ValueError(f"listen {listen!r} is not a port or address:port (for example 127.0.0.1:8080)")
    text = TEMPLATE.read_text() if template is None else template
    text, n_listen = _LISTEN.subn(lambda m: f"{m.group(1)}listen {listen};", text)
    if n_listen != 1:
        raise ValueError(f"{TEMPLATE.name}: expected one 'listen 80;' line, found {n_listen}")

    def servers(m: re.Match) -> str:
        indent = m.group(1)
        return "\n".join(f"{indent}server {a} {server_options};" for a in replicas)

    text, n_blocks = _REPLICAS.subn(servers, text)
    if n_blocks != 1:
        raise ValueError(f"{TEMPLATE.name}: expected one '# REPLICAS BEGIN ... # REPLICAS END' block, found {n_blocks}")
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listen", default="80", help="nginx listen address (default 80)")
    parser.add_argument("--replica", action="append", required=True, metavar="HOST:PORT",
                        help="a Streamlit replica; repeat once per replica")
    args = parser.parse_args(argv)
    try:
        sys.stdout.write(render(args.listen, args.replica))
    except ValueError as exc:
        parser.error(str(exc))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
