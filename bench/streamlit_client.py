"""A headless Streamlit 1.67 client that speaks the browser's websocket protocol.

One :class:`BrowserSession` is one browser tab. It does what the 1.67 frontend does
(read from the frontend bundle shipped in the installed package,
``streamlit/static/static/js/index.*.js``, and from the frontend source,
``frontend/app/src/App.tsx``, ``connection/WebsocketConnection.tsx``,
``connection/ForwardMessageCache.ts``, ``lib/.../WidgetStateManager.ts``,
``lib/.../AppRoot.ts``) but draws nothing:

* **Handshake** (``WebsocketConnection``): GET ``/_stcore/health`` and ``/_stcore/host-config``
  (the health answer sets the ``_streamlit_xsrf`` cookie), then open ``ws://host/_stcore/stream``
  with the subprotocols ``["streamlit", <xsrf cookie or "PLACEHOLDER_AUTH_TOKEN">]``, the cookie and
  a same-origin ``Origin`` header. Binary frames only; every frame is one ``ForwardMsg``.
* **First run**: on connect the app sends ``rerun_script`` with empty widget states, the page name
  taken from the URL path and ``page_script_hash=""``; after the first ``new_session`` it sends that
  page's ``page_script_hash`` instead (``App.sendRerunBackMsg``).
* **Every rerun** carries a ``ClientState``: ``query_string`` (the address bar's, updated by
  ``page_info_changed``), all widget states, ``page_script_hash`` / ``page_name``, ``fragment_id``
  (fragment reruns), ``is_auto_rerun`` (timer ticks), ``cached_message_hashes`` (the message
  cache's keys at send time) and ``context_info`` (timezone, locale, url, colour scheme).
* **Widget states** (``WidgetStateManager``): a widget element that mounts commits its value from
  the proto without a rerun (``setValue`` → current value, else its default); values stay until
  the widget disappears from the page (``removeInactive`` after a successful run). A button click
  sets ``trigger_value`` true, sends all states at once (``scheduleFlush`` → ``setTimeout 0``) with
  the button's ``fragment_id`` (none for buttons outside a fragment: a full rerun) and deletes the
  trigger right after sending.
* **Fragment timers** (``App.handleAutoRerun``): an ``auto_rerun`` message starts
  ``setInterval(() => sendUpdateWidgetsMessage(fragmentId, true), interval)``; the same interval
  for the same fragment is not restarted; a full run's ``new_session`` clears every timer
  (``cleanupAutoReruns``). **The tick does not look at whether a run is in flight**: it sends a
  ``rerun_script`` every interval regardless. Ticks are delayed only while the main thread is busy
  (rendering), and missed ticks do not pile up (one late tick, then the schedule continues), as
  in browsers.
* **Element tree** (``AppRoot``): deltas are applied at their ``delta_path``; an element whose
  ``hash`` equals the one already shown is kept (no re-render); on ``script_finished``
  (successful full or fragment run) stale nodes are removed exactly as ``ClearStaleNodeVisitor``
  does, then inactive widget states are dropped.
* **Message cache** (``ForwardMessageCache``): messages with ``metadata.cacheable`` are stored by
  hash; a ``ref_hash`` message is replaced by the stored one (a miss is the frontend's fatal
  "Cached ForwardMsg MISS" error); after a run that finished (not ``FINISHED_EARLY_FOR_RERUN``) and
  whose ``new_session`` came after the last rerun request, the run count goes up and entries older
  than ``maxCachedMessageAge`` runs are dropped (only the running fragments' entries after a
  fragment run).
* **Rendering** is modelled as busy time on the tab's single main thread: ``render_ms`` per
  delta that changes what is shown plus ``run_render_ms`` per finished run that changed anything.
  Timer ticks and later messages wait while it is busy, as in a browser. Nothing is computed:
  the cost is ``asyncio.sleep``, so many tabs in one process cost almost no CPU.

What the server (installed streamlit 1.67) does with these requests, which is what a load test
has to exercise:

* ``AppSession.request_rerun`` (runtime/app_session.py): a rerun *without* a fragment id (a
  button outside the fragment: Play, Pause) stops the running ScriptRunner and starts a new one
  (``runner.fastReruns``); a fragment rerun is handed to the running ScriptRunner.
* ``ScriptRequests._request_rerun_locked`` (runtime/scriptrunner_utils/script_requests.py):
  timer ticks that arrive while a run is in flight are folded into *one* pending rerun (fragment
  ids deduplicated, widget states coalesced); ``_fragment_run_should_not_preempt_script`` means it
  does not interrupt the current run, and ``ScriptRunner._run_script_thread``
  (runtime/scriptrunner/script_runner.py) starts it as soon as the current run ends. With a timer
  shorter than a run, fragment runs therefore go back to back.
* ``AppSession._handle_scriptrunner_event_on_event_loop``, ``SCRIPT_STARTED`` branch, calls
  ``_clear_queue(fragment_ids_this_run)``, that is ``ForwardMsgQueue.clear(retain_lifecycle_msgs=True,
  fragment_ids_this_run=...)`` (runtime/forward_msg_queue.py): every delta of the fragments about
  to run that is still in the session's queue (not yet flushed by the Runtime loop,
  ``Runtime._loop_coroutine`` in runtime/runtime.py) is **dropped**. Lifecycle messages and the
  deltas of other fragments or of the main script are kept. ``_update_script_finished_message``
  rewrites the kept ``script_finished`` of the dropped run to ``FINISHED_EARLY_FOR_RERUN``, which is
  how this client sees that a run's tail (or all of it) never arrived.

Everything is bounded in time and only loopback servers are accepted.
"""
from __future__ import annotations

import asyncio
import collections
import http.cookiejar
import ipaddress
import os
import re
import socket
import time
import urllib.parse
import urllib.request
from collections import deque
from dataclasses import dataclass, field

from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from streamlit.proto.WidgetStates_pb2 import WidgetState, WidgetStates

NO_RUN = "NO_SCRIPT_RUN_ID"
FINISHED_OK = ForwardMsg.ScriptFinishedStatus.FINISHED_SUCCESSFULLY
FINISHED_FRAGMENT_OK = ForwardMsg.ScriptFinishedStatus.FINISHED_FRAGMENT_RUN_SUCCESSFULLY
FINISHED_EARLY = ForwardMsg.ScriptFinishedStatus.FINISHED_EARLY_FOR_RERUN
FINISHED_COMPILE_ERROR = ForwardMsg.ScriptFinishedStatus.FINISHED_WITH_COMPILE_ERROR


class ProtocolError(RuntimeError):
    """Something the real frontend treats as fatal (it would show an error and disconnect)."""


def check_loopback(url: str) -> tuple[str, int]:
    """``http://host:port`` -> (host, port); refuses anything that is not a loopback address."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "http" or not parts.hostname or not parts.port:
        raise ValueError(f"expected http://host:port, got {url!r}")
    host = parts.hostname
    try:
        addrs = {info[4][0] for info in socket.getaddrinfo(host, parts.port, proto=socket.IPPROTO_TCP)}
    except OSError as e:
        raise ValueError(f"cannot resolve {host!r}: {e}") from None
    if not addrs or not all(ipaddress.ip_address(a.split("%")[0]).is_loopback for a in addrs):
        raise ValueError(f"{url} is not a loopback address (only 127.0.0.1 / ::1 / localhost are allowed)")
    return host, parts.port


# ---------------------------------------------------------------------------------------------
# Element tree (AppRoot, simplified: no transient nodes, no retained-node bookkeeping)
# ---------------------------------------------------------------------------------------------
@dataclass
class ElementNode:
    element: object          # streamlit.proto.Element
    run_id: str
    fragment_id: str | None
    hash: str
    script_hash: str = ""    # metadata.active_script_hash (the page that drew it)


@dataclass
class BlockNode:
    block: object | None     # streamlit.proto.Block (None for the four roots)
    children: list = field(default_factory=list)
    run_id: str = NO_RUN
    fragment_id: str | None = None
    script_hash: str = ""

    @property
    def type(self) -> str | None:
        return self.block.WhichOneof("type") if self.block is not None else None


def widget_id(element) -> str | None:
    """The widget id of an element (``getElementId``), None for non-widgets."""
    kind = element.WhichOneof("type")
    if kind is None:
        return None
    sub = getattr(element, kind)
    try:
        wid = sub.id
    except AttributeError:
        return None
    return wid or None


class AppTree:
    """main, sidebar, event, bottom, each a block of nodes addressed by ``delta_path``."""

    def __init__(self, main_script_hash: str = ""):
        self.main_script_hash = main_script_hash
        self.roots = [BlockNode(None, script_hash=main_script_hash) for _ in range(4)]

    def filter_main_script_elements(self, main_script_hash: str) -> None:
        """``AppRoot.filterMainScriptElements``: keep what the main script drew (a page change or
        ``clearAppState`` drops the page's own elements until the run draws them again)."""
        self.main_script_hash = main_script_hash

        def visit(node):
            if isinstance(node, ElementNode):
                return node if node.script_hash == main_script_hash else None
            if node.script_hash != main_script_hash:
                return None
            kept = [c2 for c in node.children if (c2 := visit(c)) is not None]
            return BlockNode(node.block, kept, node.run_id, node.fragment_id, node.script_hash)

        self.roots = [visit(r) or BlockNode(None, script_hash=main_script_hash) for r in self.roots]

    def _get(self, path):
        if not path or path[0] >= len(self.roots):
            return None
        node = self.roots[path[0]]
        for i in path[1:]:
            if not isinstance(node, BlockNode) or i >= len(node.children):
                return None
            node = node.children[i]
        return node

    def _set(self, path, new_node, run_id: str) -> None:
        if not path or path[0] >= len(self.roots):
            raise ProtocolError(f"bad delta path {list(path)}")
        parent = self.roots[path[0]]
        parent.run_id = run_id
        for depth, i in enumerate(path[1:], start=1):
            last = depth == len(path) - 1
            if i > len(parent.children):
                raise ProtocolError(f"Bad delta path index {i} (should be between [0, {len(parent.children)}]) "
                                    f"at depth {depth} of {list(path)}")
            if last:
                if i == len(parent.children):
                    parent.children.append(new_node)
                else:
                    parent.children[i] = new_node
                return
            if i == len(parent.children) or not isinstance(parent.children[i], BlockNode):
                what = ("nothing" if i == len(parent.children)
                        else f"an element ({parent.children[i].element.WhichOneof('type')})")
                raise ProtocolError(f"Cannot set a node at a delta path: {list(path)}, at depth {depth} "
                                    f"there is {what} ({len(parent.children)} children)")
            parent = parent.children[i]
            parent.run_id = run_id
        # len(path) == 1 would replace a root: the frontend never gets such a delta
        raise ProtocolError(f"bad delta path {list(path)}")

    def apply_delta(self, delta, path, msg_hash: str, run_id: str,
                    script_hash: str = "") -> tuple[bool, ElementNode | None]:
        """Apply one delta. Returns (changed, element node or None). ``changed`` is False when an
        element with the same hash was already shown (the frontend keeps the old one)."""
        fragment_id = delta.fragment_id or None
        kind = delta.WhichOneof("type")
        try:
            return self._apply(delta, kind, path, msg_hash, run_id, script_hash, fragment_id)
        except ProtocolError as e:
            raise ProtocolError(f"{e} [{kind} {delta.new_element.WhichOneof('type') if kind == 'new_element' else ''}"
                                f" fragment={fragment_id}]") from None

    def _apply(self, delta, kind, path, msg_hash, run_id, script_hash, fragment_id):
        if kind == "new_element":
            old = self._get(path)
            el = delta.new_element
            same = (isinstance(old, ElementNode) and msg_hash and old.hash == msg_hash
                    and old.element.WhichOneof("type") == el.WhichOneof("type"))
            node = ElementNode(old.element if same else el, run_id, fragment_id, msg_hash, script_hash)
            self._set(path, node, run_id)
            return (not same), node
        if kind == "add_block":
            old = self._get(path)
            blk = delta.add_block
            children = []
            if isinstance(old, BlockNode) and old.type == blk.WhichOneof("type"):
                if not (blk.HasField("dialog") and old.block is not None and old.block.HasField("dialog")
                        and blk.id != old.block.id):
                    children = old.children
            self._set(path, BlockNode(blk, children, run_id, fragment_id, script_hash), run_id)
            return True, None
        if kind == "new_transient":
            return False, None      # spinners / toasts in transient slots: not modelled
        raise ProtocolError(f"Unrecognized deltaType: {kind!r}")

    def clear_stale(self, run_id: str, fragment_ids: list[str]) -> None:
        """``AppRoot.clearStaleNodes`` (ClearStaleNodeVisitor)."""
        frag_run = bool(fragment_ids)

        def visit(node, frag_of_block):
            if isinstance(node, ElementNode):
                if node.element.WhichOneof("type") == "toast":
                    return node
                if frag_run and (not node.fragment_id or not frag_of_block or node.run_id == run_id):
                    return node
                return node if node.run_id == run_id else None
            inner = frag_of_block
            if frag_run:
                if frag_of_block and node.run_id != run_id:
                    return None
                if node.fragment_id and node.fragment_id in fragment_ids and node.run_id == run_id:
                    inner = node.fragment_id
            elif node.run_id != run_id:
                return None
            kept = [c2 for c in node.children if (c2 := visit(c, inner)) is not None]
            if len(kept) != len(node.children) or any(a is not b for a, b in zip(kept, node.children)):
                return BlockNode(node.block, kept, run_id, node.fragment_id, node.script_hash)
            return node

        self.roots = [visit(r, None) or BlockNode(None, script_hash=self.main_script_hash) for r in self.roots]

    def elements(self):
        stack = list(reversed(self.roots))
        while stack:
            n = stack.pop()
            if isinstance(n, ElementNode):
                yield n
            else:
                stack.extend(reversed(n.children))

    def blocks(self):
        stack = list(self.roots)
        while stack:
            n = stack.pop()
            if isinstance(n, BlockNode):
                yield n
                stack.extend(n.children)

    def active_ids(self) -> set[str]:
        ids = {wid for n in self.elements() if (wid := widget_id(n.element))}
        ids |= {b.block.id for b in self.blocks() if b.block is not None and b.block.id}
        return ids

    # -- page reading helpers ------------------------------------------------------------------
    def metric(self, label: str) -> str | None:
        for n in self.elements():
            if n.element.WhichOneof("type") == "metric" and n.element.metric.label == label:
                return n.element.metric.body
        return None

    def button(self, label: str) -> ElementNode | None:
        for n in self.elements():
            if n.element.WhichOneof("type") == "button" and n.element.button.label == label:
                return n
        return None


def metric_int(body: str | None) -> int | None:
    """'1,234' -> 1234; None when absent or without digits."""
    if body is None:
        return None
    digits = re.sub(r"\D", "", body)
    return int(digits) if digits else None


# ---------------------------------------------------------------------------------------------
# Widget values as the frontend widgets commit them on mount (getDefaultStateFromProto /
# getCurrStateFromProto + updateWidgetMgrState of each widget component)
# ---------------------------------------------------------------------------------------------
def _widget_state_from_element(element, current: bool) -> WidgetState | None:
    """The WidgetState a freshly mounted widget commits (``current``: the proto's setValue path).
    None for elements that hold no state until the user acts (buttons) or are not modelled."""
    kind = element.WhichOneof("type")
    sub = getattr(element, kind)
    ws = WidgetState(id=sub.id)
    if kind == "checkbox":
        ws.bool_value = sub.value if current else sub.default
    elif kind == "number_input":
        v = (sub.value if sub.HasField("value") else (sub.default if sub.HasField("default") else None)) \
            if current else (sub.default if sub.HasField("default") else None)
        if v is not None:
            if sub.data_type == type(sub).DataType.INT:
                ws.int_value = int(v)
            else:
                ws.double_value = float(v)
    elif kind in ("selectbox", "radio"):
        if current:
            if sub.HasField("raw_value"):
                ws.string_value = sub.raw_value
        elif sub.HasField("default") and len(sub.options) > 0:
            ws.string_value = sub.options[sub.default]
    elif kind == "multiselect":
        vals = list(sub.raw_values) if current else [sub.options[i] for i in sub.default]
        ws.string_array_value.data.extend(vals)
    elif kind == "slider":
        if sub.type == type(sub).Type.SELECT_SLIDER:
            opts = list(sub.options)
            if current and len(sub.raw_value) > 0:
                idx = [opts.index(v) if v in opts else (sub.default[r] if r < len(sub.default) else 0)
                       for r, v in enumerate(sub.raw_value)]
            else:
                idx = list(sub.default)
            ws.string_array_value.data.extend(opts[i] if 0 <= i < len(opts) else "" for i in idx)
        else:
            ws.double_array_value.data.extend(sub.value if current else sub.default)
    elif kind in ("text_input", "text_area"):
        if current:
            if sub.HasField("value"):
                ws.string_value = sub.value
        elif sub.HasField("default"):
            ws.string_value = sub.default
    else:
        return None
    return ws


class WidgetStateManager:
    def __init__(self):
        self.states: dict[str, WidgetState] = {}
        self.unmodelled: set[str] = set()

    def on_element(self, element) -> None:
        """A widget element was rendered (mounted, or updated with set_value)."""
        wid = widget_id(element)
        kind = element.WhichOneof("type")
        if not wid or kind in ("button", "download_button", "plotly_chart", "vega_lite_chart",
                               "deck_gl_json_chart", "dataframe", "arrow_data_frame", "echarts_chart",
                               "chat_input", "file_uploader", "camera_input", "audio_input",
                               "page_link", "link_button", "menu_button", "bidi_component",
                               "component_instance"):
            return
        sub = getattr(element, kind)
        set_value = bool(getattr(sub, "set_value", False))
        if not set_value and wid in self.states:
            return
        ws = _widget_state_from_element(element, current=set_value)
        if ws is None:
            self.unmodelled.add(kind)
            return
        self.states[wid] = ws

    def message(self) -> WidgetStates:
        out = WidgetStates()
        out.widgets.extend(self.states.values())
        return out

    def remove_inactive(self, active: set[str]) -> None:
        for k in [k for k in self.states if k not in active]:
            del self.states[k]


# ---------------------------------------------------------------------------------------------
# ForwardMessageCache
# ---------------------------------------------------------------------------------------------
class ForwardMessageCache:
    def __init__(self):
        self.messages: dict[str, list] = {}     # hash -> [encoded bytes, run count, fragment id]
        self.run_count = 0
        self.hits = 0                           # ref_hash messages resolved from the cache

    def increment_run_count(self, max_age: int, fragment_ids: list[str]) -> None:
        self.run_count += 1
        for h, (_, count, frag) in list(self.messages.items()):
            if fragment_ids and (not frag or frag not in fragment_ids):
                continue
            if self.run_count - count > max_age:
                del self.messages[h]

    def hashes(self) -> list[str]:
        return list(self.messages)

    def _get(self, h: str, refresh: bool):
        entry = self.messages.get(h)
        if entry is None:
            return None
        if refresh:
            entry[1] = self.run_count
        return ForwardMsg.FromString(entry[0])

    def process(self, msg: ForwardMsg, raw: bytes) -> ForwardMsg:
        kind = msg.WhichOneof("type")
        if kind != "ref_hash" and msg.metadata.cacheable:
            if msg.hash and self._get(msg.hash, True) is None:
                self.messages[msg.hash] = [raw, self.run_count, msg.delta.fragment_id or None]
        if kind != "ref_hash":
            return msg
        cached = self._get(msg.ref_hash, True)
        if cached is None:
            raise ProtocolError(f"Cached ForwardMsg MISS [hash={msg.ref_hash}]")
        cached.metadata.CopyFrom(msg.metadata)
        self.hits += 1
        return cached


# ---------------------------------------------------------------------------------------------
# One browser tab
# ---------------------------------------------------------------------------------------------
@dataclass
class Event:
    t: float
    kind: str
    detail: object = None


class BrowserSession:
    """One simulated browser tab on ``base_url/page?query``.

    Drive it with :meth:`start`, then :meth:`wait_for`, :meth:`click`, and read ``tree``,
    ``events`` and the counters. :meth:`close` always; every wait has a timeout."""

    def __init__(self, base_url: str, page: str = "", query: str = "", *, render_ms: float = 2.0,
                 run_render_ms: float = 20.0, name: str = "s0", open_timeout: float = 30.0,
                 watch_metrics: tuple[str, ...] = ()):
        check_loopback(base_url)
        self.base_url = base_url.rstrip("/")
        self.page = page.strip("/")
        self.query = query.lstrip("?")
        self.render_s = render_ms / 1000.0
        self.run_render_s = run_render_ms / 1000.0
        self.name = name
        self.open_timeout = open_timeout
        self.tree = AppTree()
        self.widgets = WidgetStateManager()
        self.cache = ForwardMessageCache()
        # App state mirrored from App.tsx
        self.query_params = ""                 # state.queryParams (set by page_info_changed)
        self.page_script_hash = ""             # state.currentPageScriptHash
        self.main_script_hash = ""
        self.script_run_id = NO_RUN
        self.fragment_ids_this_run: list[str] = []
        self.has_received_new_session = False
        self.max_cached_message_age = 2
        self.script_is_running = False
        self._app_hash_set = False
        self.app_state_clears = 0
        self.timers: dict[str, list] = {}      # fragment id -> [interval s, next due (monotonic)]
        # BENCH_TRACE=file: on a protocol error, append the tab's last 300 messages there (debugging)
        self._trace_path = os.environ.get("BENCH_TRACE") or None
        self._trace = collections.deque(maxlen=300) if self._trace_path else None
        # bookkeeping
        self.events: list[Event] = []
        self.errors: list[str] = []
        self.exceptions: list[str] = []
        self.sent_reruns = 0
        self.ticks_sent = 0
        self.bytes_in = 0
        self.msgs_in = 0
        # one entry per finished run: (time, status, fragment ids, changed deltas, all deltas)
        self.finished: deque = deque(maxlen=10000)
        self.pending_requests: deque = deque()        # send times of rerun requests not yet answered
        self.rtts: list[float] = []
        self.on_finished = None                       # callback(session, status, fragment_ids)
        # label -> [(time shown, value)], one entry per change of a watched st.metric
        self.metric_changes: dict[str, list] = {label: [] for label in watch_metrics}
        self._ws = None
        self._inbox: deque = deque()                  # (arrival time, frame)
        self._actions: deque = deque()                # (callable, future): user input
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task] = []
        self._closed = asyncio.Event()
        self._changed = asyncio.Event()
        self._run_changed = 0
        self._run_deltas = 0
        self._new_session_t = 0.0

    # -- connection --------------------------------------------------------------------------
    def _http_get_all(self) -> tuple[str | None, str, str]:
        jar = http.cookiejar.CookieJar()
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar),
                                             urllib.request.ProxyHandler({}))
        page_url = f"{self.base_url}/{self.page}" + (f"?{self.query}" if self.query else "")
        for path in (f"/{self.page}" + (f"?{self.query}" if self.query else ""), "/_stcore/health",
                     "/_stcore/host-config"):
            with opener.open(self.base_url + path, timeout=self.open_timeout) as r:
                r.read()
        xsrf = next((c.value for c in jar if c.name == "_streamlit_xsrf"), None)
        cookie = "; ".join(f"{c.name}={c.value}" for c in jar)
        return xsrf, cookie, page_url

    async def start(self) -> None:
        from websockets.asyncio.client import connect

        xsrf, cookie, self.page_url = await asyncio.to_thread(self._http_get_all)
        host = urllib.parse.urlsplit(self.base_url).netloc
        ws_url = f"ws://{host}/_stcore/stream"
        headers = {"Cookie": cookie} if cookie else {}
        self._ws = await asyncio.wait_for(connect(
            ws_url, subprotocols=["streamlit", xsrf or "PLACEHOLDER_AUTH_TOKEN"], origin=self.base_url,
            additional_headers=headers, proxy=None, ping_interval=None, max_size=256 * 2**20,
            max_queue=None, open_timeout=self.open_timeout,
            user_agent_header="streamlit-load-bench (headless browser model)"), self.open_timeout)
        self._log("connected")
        self._tasks = [asyncio.create_task(self._receiver(), name=f"{self.name}-recv"),
                       asyncio.create_task(self._main_thread(), name=f"{self.name}-main")]
        # handleConnectionStateChanged(CONNECTED), first connection: request a script run
        self._send_rerun(fragment_id=None, is_auto=False)

    async def close(self) -> None:
        self._closed.set()
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            try:
                await t
            except (asyncio.CancelledError, Exception):  # noqa: BLE001 - closing anyway
                pass
        if self._ws is not None:
            try:
                await asyncio.wait_for(self._ws.close(), 5)
            except Exception:  # noqa: BLE001
                pass

    def _log(self, kind: str, detail=None) -> None:
        self.events.append(Event(time.monotonic(), kind, detail))

    def error(self, text: str) -> None:
        self.errors.append(text)
        self._log("error", text)

    async def _receiver(self) -> None:
        from websockets.exceptions import ConnectionClosed

        try:
            async for frame in self._ws:
                if not isinstance(frame, bytes):
                    self.error("websocket: unexpected text frame")
                    break
                self.bytes_in += len(frame)
                self._inbox.append((time.monotonic(), frame))
                self._wake.set()
        except ConnectionClosed as e:
            if not self._closed.is_set():
                self.error(f"websocket closed: {e}")
        except Exception as e:  # noqa: BLE001 - reported as a session error
            if not self._closed.is_set():
                self.error(f"websocket error: {type(e).__name__}: {e}")
        finally:
            self._shut()

    def _shut(self) -> None:
        self._closed.set()
        self._changed.set()
        self._wake.set()
        while self._actions:
            _, fut = self._actions.popleft()
            if not fut.done():
                fut.set_result(False)

    # -- the main thread: input, messages, timers, render time ---------------------------------
    async def _main_thread(self) -> None:
        """One task per tab, like the browser's main thread: handles one thing at a time
        (a user action, a websocket message or a due timer, oldest first) and stays busy for
        the modelled render time after messages that change the page."""
        try:
            while not self._closed.is_set():
                if self._actions:                           # user input first
                    action, fut = self._actions.popleft()
                    if not fut.done():
                        fut.set_result(action())
                    continue
                now = time.monotonic()
                due = min((t[1] for t in self.timers.values()), default=None)
                head_t = self._inbox[0][0] if self._inbox else None
                if due is not None and due <= now and (head_t is None or due <= head_t):
                    self._fire_due_timers(now)
                    continue
                if head_t is not None:
                    _, frame = self._inbox.popleft()
                    busy = self._handle_frame(frame)
                    if busy > 0:
                        await asyncio.sleep(busy)
                    continue
                self._wake.clear()
                timeout = 0.5 if due is None else max(0.0, due - now)
                try:
                    await asyncio.wait_for(self._wake.wait(), timeout=timeout)
                except asyncio.TimeoutError:
                    pass
        except asyncio.CancelledError:
            raise
        except ProtocolError as e:
            run = "fragment" if self.fragment_ids_this_run else "full"
            self.error(f"{e} (during a {run} run)")
            if self._trace_path:        # the last messages before the error, for debugging the protocol
                with open(self._trace_path, "a") as fh:
                    fh.write(f"=== {self.name}: {e}\n" + "\n".join(self._trace) + "\n")
        except Exception as e:  # noqa: BLE001 - a bug in this client must not hang the bench
            self.error(f"client error: {type(e).__name__}: {e}")
        finally:
            self._shut()

    def _fire_due_timers(self, now: float) -> None:
        for fid, t in list(self.timers.items()):
            interval, due = t
            if due <= now:
                # a late interval fires once; the schedule continues (missed ticks are dropped)
                k = int((now - due) / interval) + 1
                t[1] = due + k * interval
                self.ticks_sent += 1
                self._send_rerun(fragment_id=fid, is_auto=True)

    def _handle_frame(self, frame: bytes) -> float:
        """WebsocketConnection.handleMessage + App.handleMessage. Returns busy (render) seconds."""
        msg = ForwardMsg.FromString(frame)
        msg = self.cache.process(msg, frame)
        self.msgs_in += 1
        kind = msg.WhichOneof("type")
        if self._trace is not None:
            what = kind
            if kind == "delta":
                d = msg.delta
                what += f" {d.WhichOneof('type')}"
                if d.WhichOneof("type") == "new_element":
                    what += f"/{d.new_element.WhichOneof('type')}"
                what += f" {list(msg.metadata.delta_path)} frag={d.fragment_id[:6]}"
            elif kind == "new_session":
                what += f" run={msg.metadata.run.script_run_id[:6]} frags={[f[:6] for f in msg.metadata.run.fragment_ids]}"
            elif kind == "script_finished":
                what += f" {msg.script_finished}"
            elif kind == "auto_rerun":
                what += f" {msg.auto_rerun.interval}"
            self._trace.append(f"{time.monotonic():.3f} {what}")
        busy = 0.0
        if kind == "new_session":
            self._on_new_session(msg)
        elif kind == "delta":
            self._run_deltas += 1
            changed, node = self.tree.apply_delta(msg.delta, list(msg.metadata.delta_path), msg.hash,
                                                  self.script_run_id, msg.metadata.active_script_hash)
            if node is not None:
                el = node.element
                if changed:
                    self.widgets.on_element(el)
                    if el.WhichOneof("type") == "exception":
                        text = f"{el.exception.type}: {el.exception.message}"
                        self.exceptions.append(text)
                        self.error(f"exception on page: {text}")
            if changed:
                self._run_changed += 1
                busy += self.render_s
                self._changed.set()
                if node is not None and node.element.WhichOneof("type") == "metric":
                    m = node.element.metric
                    hist = self.metric_changes.get(m.label)
                    if hist is not None and (not hist or hist[-1][1] != m.body):
                        hist.append((time.monotonic(), m.body))
        elif kind == "script_finished":
            busy += self._on_script_finished(msg)
        elif kind == "session_status_changed":
            self.script_is_running = msg.session_status_changed.script_is_running
        elif kind == "navigation":
            self.page_script_hash = msg.navigation.page_script_hash     # AppNavigation.handleNavigation
        elif kind == "page_info_changed":
            self.query_params = msg.page_info_changed.query_string
        elif kind == "auto_rerun":
            fid, interval = msg.auto_rerun.fragment_id, msg.auto_rerun.interval
            if not fid:
                pass  # the 1.67 frontend ignores auto-rerun messages without a fragment id
            elif self.timers.get(fid, [None])[0] != interval:
                if interval > 0:
                    self.timers[fid] = [interval, time.monotonic() + interval]
                else:
                    self.timers.pop(fid, None)
        elif kind == "stop_auto_rerun":
            for fid in msg.stop_auto_rerun.fragment_ids:
                self.timers.pop(fid, None)
        elif kind == "page_not_found":
            self.error(f"page not found: {msg.page_not_found.page_name!r}")
        elif kind == "session_event":
            ev = msg.session_event
            if ev.WhichOneof("type") == "script_compilation_exception":
                self.error(f"script compilation error: {ev.script_compilation_exception.message}")
        return busy

    def _on_new_session(self, msg: ForwardMsg) -> None:
        """App.handleNewSession."""
        ns = msg.new_session
        self.has_received_new_session = True
        run = msg.metadata.run
        run_id = run.script_run_id or NO_RUN
        frags = list(run.fragment_ids)
        if ns.HasField("config") and ns.config.max_cached_message_age:
            self.max_cached_message_age = ns.config.max_cached_message_age
        prev_page_hash = self.page_script_hash            # this.state.currentPageScriptHash
        first = not self._app_hash_set
        if frags:
            self.fragment_ids_this_run = frags
        else:
            self.timers.clear()                           # cleanupAutoReruns
            self.fragment_ids_this_run = []
            self.main_script_hash = ns.main_script_hash
            self.page_script_hash = ns.page_script_hash   # AppNavigation.handleNewSession
        self._app_hash_set = True
        self.script_run_id = run_id
        if first or prev_page_hash != ns.page_script_hash:
            # clearAppState: keep only the main script's elements, then drop inactive widgets
            self.tree.filter_main_script_elements(ns.main_script_hash or self.main_script_hash)
            self.widgets.remove_inactive(self.tree.active_ids())
            self.app_state_clears += 1
        self._run_changed = self._run_deltas = 0
        self._new_session_t = time.monotonic()
        self._log("new_session", frags)

    def _on_script_finished(self, msg: ForwardMsg) -> float:
        status = msg.script_finished
        now = time.monotonic()
        run = msg.metadata.run if msg.metadata.HasField("run") and msg.metadata.run.script_run_id else None
        frags = list(run.fragment_ids) if run is not None else []
        if status == FINISHED_COMPILE_ERROR:
            self.error("script finished with a compile error")
        if run is not None and status in (FINISHED_OK, FINISHED_FRAGMENT_OK):
            if not (not frags and self.script_run_id != run.script_run_id):
                self.tree.clear_stale(run.script_run_id, frags)
            self.widgets.remove_inactive(self.tree.active_ids())
        if (run is not None and status != FINISHED_EARLY and self.has_received_new_session):
            self.cache.increment_run_count(self.max_cached_message_age, frags)
        # round trip: requests sent before this run's new_session were served by it
        served = 0
        while self.pending_requests and self.pending_requests[0] <= self._new_session_t:
            t0 = self.pending_requests.popleft()
            if served == 0:
                self.rtts.append(now - t0)
            served += 1
        changed, deltas = self._run_changed, self._run_deltas
        self._run_changed = self._run_deltas = 0
        self.finished.append((now, status, frags, changed, deltas))
        self._log("script_finished", (status, frags, changed))
        if self.on_finished is not None:
            self.on_finished(self, status, frags)
        self._changed.set()
        return self.run_render_s if changed else 0.0

    # -- sending -----------------------------------------------------------------------------
    def _query_string(self) -> str:
        q = self.query_params if self.query_params else self.query
        return q.lstrip("?")

    def _send_rerun(self, fragment_id: str | None, is_auto: bool) -> None:
        """App.sendRerunBackMsg(widgetStates, fragmentId, undefined, isAutoRerun)."""
        if self._closed.is_set() or self._ws is None:
            return
        if self._trace is not None:
            self._trace.append(f"{time.monotonic():.3f} >>> rerun frag={(fragment_id or '')[:6]} auto={is_auto}")
        back = BackMsg()
        cs = back.rerun_script
        cs.query_string = self._query_string()
        cs.widget_states.CopyFrom(self.widgets.message())
        if self.page_script_hash:
            cs.page_script_hash = self.page_script_hash
        else:
            cs.page_script_hash = ""
            cs.page_name = self.page
        if fragment_id:
            cs.fragment_id = fragment_id
        if is_auto:
            cs.is_auto_rerun = True
        cs.cached_message_hashes.extend(self.cache.hashes())
        ci = cs.context_info
        ci.timezone = time.tzname[0] if time.tzname and time.tzname[0] else "UTC"
        ci.timezone_offset = int(time.timezone // 60) if not time.daylight else int(time.altzone // 60)
        ci.locale = "en-US"
        ci.url = self.page_url.split("?", 1)[0]       # origin + path, as the frontend sends it
        ci.is_embedded = False
        ci.color_scheme = "light"
        self.has_received_new_session = False
        self.sent_reruns += 1
        self.pending_requests.append(time.monotonic())
        self._log("rerun_sent", (fragment_id, is_auto))
        asyncio.get_running_loop().create_task(self._send_bytes(back.SerializeToString()))

    async def _send_bytes(self, data: bytes) -> None:
        from websockets.exceptions import ConnectionClosed

        try:
            await self._ws.send(data)
        except ConnectionClosed as e:
            if not self._closed.is_set():
                self.error(f"websocket closed while sending: {e}")
        except Exception as e:  # noqa: BLE001
            if not self._closed.is_set():
                self.error(f"websocket send error: {type(e).__name__}: {e}")

    def _click_now(self, label: str) -> bool:
        node = self.tree.button(label)
        if node is None or node.element.button.disabled:
            return False
        wid = node.element.button.id
        self.widgets.states[wid] = WidgetState(id=wid, trigger_value=True)
        self._log("click", label)
        self._send_rerun(fragment_id=node.fragment_id, is_auto=False)
        self.widgets.states.pop(wid, None)            # pending trigger ids are deleted after sending
        return True

    async def click(self, label: str) -> bool:
        """Press the button with this label (WidgetStateManager.setTriggerValue, then the flush
        sends every widget state with trigger_value true for this button, with the button's
        fragment id). Runs on the tab's main thread. False when no such enabled button is shown."""
        if self._closed.is_set():
            return False
        fut = asyncio.get_running_loop().create_future()
        self._actions.append((lambda: self._click_now(label), fut))
        self._wake.set()
        try:
            return await asyncio.wait_for(fut, timeout=10)
        except asyncio.TimeoutError:
            return False

    # -- waiting -----------------------------------------------------------------------------
    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    async def wait_for(self, predicate, timeout: float) -> bool:
        """Wait until ``predicate(self)`` is true (checked after every change); False on timeout
        or when the connection is gone."""
        deadline = time.monotonic() + timeout
        while True:
            if predicate(self):
                return True
            if self._closed.is_set():
                return False
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), timeout=min(left, 0.25))
            except asyncio.TimeoutError:
                pass
