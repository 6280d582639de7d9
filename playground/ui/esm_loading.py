"""Loading ESM-2 on the Protein language model page: which weights, and what to say when there
are none. A small state machine over the page's private session slots:

    mode     'pretrained' (the default), 'untrained', 'file' or 'upload': what the student asked for
    key      the loaded model's key in ``playground.esm``'s registry (the model itself is shared)
    failed   ((mode, source), message, hint, offline?) of the last failure, so a broken source
             is not retried on every rerun and its message stays on screen
    path     the checkpoint path asked for; download: a download was asked for (once)

    loader = ModelLoader(state, seed, device)
    st.selectbox("Model", ..., key=state.key("model"), on_change=loader.choose("pretrained"))
    handle = loader.handle()          # None: nothing loaded (the page stops)
    loader.sources(handle)            # the download / untrained buttons, other sources, the status

Every failure is shown as a friendly message, never a traceback.
"""
from __future__ import annotations

import streamlit as st

from playground import esm
from playground.ui.layout import show_error
from playground.ui.state import PageState


def progress_bar(text: str):
    """(the bar, a ``progress(done, total, message)`` callback for the library)."""
    bar = st.progress(0.0, text=text)

    def cb(done, total, message):
        bar.progress(min(1.0, done / total) if total else 0.0, text=message)
    return bar, cb


def model_label(name: str) -> str:
    i = esm.CATALOGUE[name]
    cached = "✓ downloaded" if esm.is_cached(name) else f"{i.file_mb:,.0f} MB download"
    return f"{i.label} · {cached} · needs ~{i.load_mb():,.0f} MB memory · {i.note}"


class ModelLoader:
    def __init__(self, state: PageState, seed: int, device: str):
        self.state, self.seed, self.device = state, int(seed), device
        self.ss = st.session_state
        self.slot = state.slot

    # -- callbacks (run before the page body) ------------------------------------------------------
    def choose(self, mode: str, download: bool = False):
        """A widget callback: load from ``mode`` next (forgetting the current model and failure)."""
        def cb():
            self.ss[self.slot("mode")], self.ss[self.slot("key")], self.ss[self.slot("failed")] = mode, None, None
            if download:
                self.ss[self.slot("download")] = True
            if mode == "file":
                self.ss[self.slot("path")] = self.ss.get("esm.path", "")
        return cb

    @property
    def mode(self) -> str:
        return self.ss.get(self.slot("mode"), "pretrained")

    @property
    def failed(self):
        return self.ss.get(self.slot("failed"))

    @property
    def bf16(self) -> bool:
        return bool(self.state.get("bf16")) and self.device == "cuda"

    # -- loading ------------------------------------------------------------------------------------
    def _load(self, mode: str, source: str, **kw):
        """Load a model for this session; a failure is remembered (per source) and shown as a
        friendly message, never a traceback, and not retried on every rerun."""
        failed = self.failed
        if failed and failed[0] == (mode, source):
            return None
        name, device, bf16 = self.state.get("model"), self.device, self.bf16
        try:
            if mode == "pretrained":
                bar, cb = progress_bar(f"Loading {name} …")
                with st.spinner(f"Loading {name} ({esm.CATALOGUE[name].file_mb:.0f} MB) …"):
                    try:
                        h = esm.load_pretrained(name, device, bf16, allow_download=kw.get("download", False),
                                                progress=cb)
                    finally:
                        bar.empty()
            elif mode == "untrained":
                h = esm.random_model(name, self.seed, device, bf16)
            elif mode == "file":
                with st.spinner("Reading the checkpoint …"):
                    h = esm.load_checkpoint_file(kw["path"], device, bf16)
            else:
                with st.spinner("Checking and reading the uploaded checkpoint …"):
                    h = esm.load_checkpoint_bytes(kw["data"], kw["filename"], device, bf16, kw.get("regression"))
        except esm.ESMError as e:
            self.ss[self.slot("failed")] = ((mode, source), e.message, e.hint, isinstance(e, esm.WeightsUnavailable))
            return None
        self.ss[self.slot("key")], self.ss[self.slot("failed")] = h.key, None
        return h

    def handle(self):
        """The session's loaded model, loading it when the mode asks for one (a pretrained model
        loads by itself only when it is already downloaded, or a download was asked for)."""
        ss, name, device = self.ss, self.state.get("model"), self.device
        key = ss.get(self.slot("key"))
        h = esm.get_loaded(key) if key else None
        want_dtype = "bfloat16" if self.bf16 else "float32"
        if h is not None and (h.device != device or not h.key.endswith(want_dtype)):
            h = None                                            # device or precision changed: load again
        if h is not None:
            return h
        mode = self.mode
        if mode == "pretrained" and (esm.is_cached(name) or ss.pop(self.slot("download"), False)):
            return self._load("pretrained", f"{name}|{device}|{want_dtype}", download=not esm.is_cached(name))
        if mode == "untrained":
            return self._load("untrained", f"{name}|{self.seed}")
        if mode == "file":
            path = ss.get(self.slot("path"), "")
            return self._load("file", path, path=path)
        if mode == "upload":
            up, reg = ss.get("esm.ckpt_upload"), ss.get("esm.reg_upload")
            if up is not None:
                return self._load("upload", f"{up.file_id}|{reg.file_id if reg else ''}", data=up.getvalue(),
                                  filename=up.name, regression=reg.getvalue() if reg is not None else None)
        return None

    # -- what the page shows ------------------------------------------------------------------------
    def sources(self, handle) -> None:
        """The failure, the offline banner and the buttons to go on; the other sources (a file, an
        upload, untrained weights); then what is loaded."""
        name = self.state.get("model")
        info = esm.CATALOGUE[name]
        failed, mode = self.failed, self.mode
        if failed and not failed[3]:
            show_error(failed[1], failed[2])
        if handle is None:
            offline = (failed[1] if failed and failed[3] and failed[0][0] == "pretrained" else None) or \
                (None if esm.download_allowed() else f"The weights of {name} are not in the local cache "
                                                       f"(`{esm.hub_dir()}`) and downloads are switched off here.")
            if offline:
                st.warning(f"📴 **No pretrained ESM-2 weights available.** {offline}\n\n"
                           f"You can continue with a **randomly initialised model** of the same architecture "
                           f"({info.layers} layers × {info.dim}): every part of the page works, but the model has "
                           f"learned nothing, and every figure is labelled **untrained weights**.")
            elif mode == "pretrained":
                st.info(f"**{name}** is not downloaded yet. Downloading fetches **{info.file_mb:,.0f} MB** (plus the "
                        f"small contact-regression file) from `{esm.HUB_HOST}` into `{esm.hub_dir()}`, once; later "
                        f"runs load it from there without the network.")
            b1, b2 = st.columns(2)
            if not offline:
                b1.button(f"⬇️ Download and load {name} ({info.file_mb:,.0f} MB)", type="primary", key="esm.download",
                          on_click=self.choose("pretrained", download=True))
            b2.button("🎲 Continue with a randomly initialised model (untrained weights)", key="esm.untrained",
                      type="primary" if offline else "secondary", on_click=self.choose("untrained"))

        with st.expander("Other sources: a checkpoint file on this machine, an upload, or untrained weights",
                         expanded=handle is None and mode in ("file", "upload")):
            st.markdown("Uploaded files are **not trusted**: they are read with `torch.load(weights_only=True)` "
                        "(tensors and plain containers only, plus `argparse.Namespace`, which ESM-2 checkpoints use "
                        "for their configuration) and accepted only if they have the ESM-2 checkpoint layout "
                        "(`{'model': state_dict, 'cfg': {'model': …}}`).")
            s1, s2, s3 = st.columns(3)
            with s1:
                # a path on the server: this session's input, never part of a shared link
                st.text_input("Path of an ESM-2 .pt file", key="esm.path", placeholder="/data/esm2_t12_35M_UR50D.pt",
                              help="A path on the machine running the app. The '-contact-regression.pt' file next to "
                                   "it is used when present (for contact maps).")
                st.button("Load file", key="esm.load_path", on_click=self.choose("file"))
            with s2:
                st.file_uploader("Upload an ESM-2 checkpoint (.pt)", type=["pt"], key="esm.ckpt_upload",
                                 on_change=self.choose("upload"))
                st.file_uploader("optional: its contact-regression file", type=["pt"], key="esm.reg_upload",
                                 on_change=self.choose("upload"))
            with s3:
                st.caption(f"A random model with the architecture of {name}, initialised from the seed ({self.seed}).")
                st.button("Use untrained weights", key="esm.untrained2", on_click=self.choose("untrained"))

        if handle is None:
            st.info("Load a model above to use the rest of the page.")
        elif handle.untrained:
            st.warning(f"🎲 **Untrained weights** — {handle.describe()}. The model has learned nothing: compare what "
                       f"you see here with a pretrained model. Every figure is labelled *untrained weights*.")
        else:
            st.success(f"✅ {handle.describe()}")
            for note in handle.warnings:
                st.caption("ℹ️ " + note)


__all__ = ["ModelLoader", "progress_bar", "model_label"]
