"""Chat UI for affectllm: a thin gradio layer over ``affectllm.inference.Explainer``.

    python app.py                                   # http://127.0.0.1:7860, default model
    python app.py --model runs/sft/final --port 8000 --auth alice:secret
    python app.py --host 0.0.0.0 --auth alice:secret  # reachable from the network: --auth is required

Upload or record a photo (webcam), a speech clip (microphone) or a video, or type words; each
answer streams the rationale, then shows the emotion probabilities, the AU intensities, the face
with its landmarks, the voice's prosody and transcript, and which channel carried the decision
(``affectllm.ui.attribution``: label probability with each channel dropped); a video (or a webcam
moment) also gets its AU and expression timeline, whose onset/apex times the rationale cites.
Live webcam: AU and expression bars follow the face while the camera streams (``affectllm.ui.live``,
one tracker per browser session, frames that arrive while one is analysed are dropped so the
bars never lag), and "Explain this moment" explains the last few seconds in the chat. Follow-up questions
reuse the same evidence (kept in ``gr.State``; no re-upload). The named API endpoint
``/explain`` takes (file, text, question) and returns the same JSON row as ``affectllm batch``;
requests waiting in the queue are explained together in one batched LLM pass (``--api-batch``).

Safety: binds 127.0.0.1 unless told otherwise, and refuses any other --host without --auth (exit 2)
unless --insecure-no-auth says to serve it open (with a loud warning); no share links, no analytics, no monitoring page;
uploads are capped (``--max-file-size``), clips and videos too (``--max-seconds``); the only
local files served are the example files; one explanation runs at a time (a queue holds the rest).

Deliberately not here: anything but layout and wiring (``affectllm.ui`` holds the logic).
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # must precede the gradio import
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import gradio as gr  # noqa: E402

from affectllm.errors import InputError  # noqa: E402
from affectllm.ui.live import LiveSessions, bars_html  # noqa: E402
from affectllm.ui.session import (MAX_MEDIA_SECONDS, Conversation, ModelPool, item_from_files,  # noqa: E402
                                  model_choices, notes, pretty, scrub, voice_markdown)

EXAMPLE_FILES = ("faces_demo/happy-baby.jpeg", "faces_demo/angry.jpg", "faces_demo/surprised.jpeg",
                 "emodb/wav/03a01Wa.wav", "emodb/wav/03a01Fa.wav")
MOMENT_S = 5.0  # "explain this moment": the last seconds of the live stream
LIVE_EVERY_S = 0.05  # the browser sends a webcam frame this often (the server answers as fast as it can)
N_PANELS = 7  # label, AU chart, overlay, timeline, voice, decision, JSON (outputs after chat, conv, box, webcam)
PLACEHOLDER = ("Attach a photo, clip or video (or record with the mic) and ask a question, or type words "
               "to analyse. Follow-up questions reuse the same evidence.")


def example_files() -> list[str]:
    """Example inputs from the shared data folder, when it is present."""
    from affectllm.paths import data_root

    root = data_root()
    return [str(root / f) for f in EXAMPLE_FILES if root is not None and (root / f).is_file()]


class UI:
    """The handlers; ``pool`` holds the models, ``attribution`` adds the channel comparison pass."""

    def __init__(self, pool: ModelPool, max_seconds: float = MAX_MEDIA_SECONDS, attribution: bool = True):
        self.pool, self.max_seconds, self.attribution = pool, max_seconds, attribution
        self.live = LiveSessions(face=lambda: pool.perception.face)
        self._moment = threading.Event()  # set while "Explain this moment" runs

    # -- the named API: (file, text, question) -> the batch job's JSON row -----------------------
    def api_explain(self, files: list, texts: list, questions: list) -> list[list[dict]]:
        """Gradio batch function: requests waiting in the queue arrive together (up to
        ``api_batch``) and requests asking the same question share one batched LLM pass."""
        from affectllm.batch.job import error_row, result_row

        rows: list[dict | None] = [None] * len(files)
        groups: dict[str | None, list[tuple[int, object]]] = {}
        for i, (file, text, question) in enumerate(zip(files, texts, questions)):
            name = Path(file).name if file else "typed words"
            try:
                item = item_from_files([file] if file else [], text or None, self.max_seconds)
                groups.setdefault(question or None, []).append((i, item))
            except InputError as e:
                rows[i] = error_row(name, str(e))
        for question, members in groups.items():
            try:
                explainer = self.pool.get()
                with self.pool.run_lock:
                    results = explainer.explain([it for _, it in members], question=question)
                for (i, _), res in zip(members, results):
                    rows[i] = result_row(res)
            except Exception as e:  # noqa: BLE001 - one bad request must not stop the server
                for i, it in members:
                    rows[i] = error_row(it.id, f"{it.id}: could not be explained: {type(e).__name__}: {e}")
        return [[scrub(r, [f] if f else []) for r, f in zip(rows, files)]]

    # -- the chat ------------------------------------------------------------------------------
    def respond(self, message, webcam, words, model_name, chat, conv):
        """Generator: streams the answer into the chat, then fills the evidence panels."""
        message = message or {}
        text = (message.get("text") or "").strip()
        files = [f for f in (message.get("files") or []) if f] + ([webcam] if webcam else [])
        chat = list(chat or [])
        chat += [{"role": "user", "content": {"path": f}} for f in files]
        if text:
            chat.append({"role": "user", "content": text})
        conv = conv if isinstance(conv, Conversation) else Conversation()
        panels = _unchanged_panels()
        cleared = (gr.MultimodalTextbox(value=None), None)
        if not files and not text:
            yield chat, conv, *cleared, *panels
            return
        try:
            explainer = self.pool.get(model_name)
            item = None
            if files or conv.obs is None:  # new evidence: a new conversation about it
                item = item_from_files(files, (text if not files else words) or None, self.max_seconds)
                question, history = (text or None) if files else None, None
                chat.append({"role": "assistant", "content": "_Perceiving..._"})
                yield chat, conv, *cleared, *panels
                with self.pool.run_lock:
                    obs, _ = explainer.perceive(item)
                conv = Conversation(obs=obs, source=item.id, image=item.image, paths=files)
                chat[-1] = {"role": "assistant", "content": ""}
            else:
                question, history = text, conv.history()
                chat.append({"role": "assistant", "content": ""})
        except Exception as e:  # noqa: BLE001 - bad input (InputError) or a model that cannot load
            yield self._cannot(e, files, chat, conv, cleared)
            return
        yield from self._answer(explainer, conv, question, history, chat, cleared, item)

    # -- live webcam ---------------------------------------------------------------------------
    def live_frame(self, frame, request: gr.Request):
        """One streamed webcam frame -> the AU bars panel (``affectllm.ui.live``); unchanged when dropped.
        While an explanation runs the frames are dropped: on 2 cores the stream would take the CPU the
        LLM needs (measured: "Explain this moment" 47 s with the bars moving at 20 updates/s)."""
        if self.pool.run_lock.locked() or self._moment.is_set():
            return gr.skip()
        html = self.live.frame(frame, _session(request))
        return gr.skip() if html is None else html

    def explain_moment(self, model_name, chat, conv, request: gr.Request):
        """Generator: the last ``MOMENT_S`` seconds of this session's webcam stream, explained in the chat."""
        chat = list(chat or []) + [{"role": "user", "content": f"Explain this moment (webcam, last {MOMENT_S:g} s)"}]
        cleared = (gr.skip(), gr.skip())
        try:
            obs = self.live.moment(_session(request), MOMENT_S)
        except Exception as e:  # noqa: BLE001 - no stream yet, or no face in it
            yield self._cannot(e, [], chat, conv, cleared)
            return
        self._moment.set()  # the bars pause (frames dropped) until the answer is written
        try:
            chat.append({"role": "assistant", "content": "_Explaining the last seconds..._"})
            yield (chat, conv, *cleared, *_unchanged_panels())
            try:
                explainer = self.pool.get(model_name)
            except Exception as e:  # noqa: BLE001 - a model that cannot load
                yield self._cannot(e, [], chat, conv, cleared)
                return
            conv = Conversation(obs=obs, source=obs.file)
            chat[-1] = {"role": "assistant", "content": ""}
            yield from self._answer(explainer, conv, None, None, chat, cleared)
        finally:
            self._moment.clear()

    def live_closed(self, request: gr.Request):
        self.live.close(_session(request))

    # -- shared by the chat and the live moment ------------------------------------------------
    def _cannot(self, e, files, chat, conv, cleared):
        """The outputs for input that cannot be used: a warning and a chat message naming the reason."""
        msg = scrub(str(e) if isinstance(e, InputError) else f"{type(e).__name__}: {e}", files)
        gr.Warning(msg)
        if chat and chat[-1].get("role") == "assistant":
            chat.pop()  # the "Perceiving..." placeholder
        chat.append({"role": "assistant", "content": f"\u26a0\ufe0f Cannot use this input: {msg}"})
        return (chat, conv, *cleared, *_unchanged_panels())

    def _answer(self, explainer, conv, question, history, chat, cleared, item=None):
        """Generator: streams the explanation of ``conv.obs`` into ``chat``, then fills the panels."""
        from affectllm.batch.job import result_row
        from affectllm.ui.attribution import attribute, channels, describe
        from affectllm.ui.decision_panel import decision_markdown

        panels = _unchanged_panels()
        result, written, att, failure = None, "", None, None
        with self.pool.run_lock:
            try:
                for piece in explainer.explain(conv.obs, question=question, history=history, stream=True):
                    if isinstance(piece, str):
                        written += piece
                        chat[-1] = {"role": "assistant", "content": pretty(written)}
                        yield chat, conv, *cleared, *panels
                    else:
                        result = piece
            except Exception as e:  # noqa: BLE001 - say what failed; the server goes on
                failure = f"{type(e).__name__}: {e}"
            if self.attribution and result is not None and result.emotion and not failure:
                try:
                    att = attribute(explainer, conv.obs, result.emotion, question, history)
                except Exception as e:  # noqa: BLE001 - the answer stands without the comparison
                    att = {"present": channels(conv.obs), "p_all": None, "p_without": {}, "flips": [],
                           "decided_by": None, "method": f"failed: {type(e).__name__}: {e}"}
        if failure or result is None or result.error or result.explanation is None:
            why = failure or (result.error if result is not None else "no answer")
            chat[-1] = {"role": "assistant", "content": f"\u26a0\ufe0f Could not explain: {scrub(why, conv.paths)}"}
            yield chat, conv, *cleared, *self._panels(conv, result, None, item)
            return
        conv.add(question, result.explanation.text)
        p = result.explanation.probabilities.get(result.emotion, 0.0)
        chat[-1] = {"role": "assistant",
                    "content": pretty(result.explanation.text) + f"\n\n**Emotion: {result.emotion}** ({p:.0%})"}
        row = result_row(result)
        if att is not None:
            row["attribution"] = att
        # The decision layer says which channel decided; the LLM-only comparison (attribution) follows.
        said = "\n\n".join(x for x in (decision_markdown(result), describe(att, result.emotion) if att else None) if x)
        yield chat, conv, *cleared, *self._panels(conv, result, said or None, item, row)

    def _panels(self, conv, result, decision, item=None, row=None):
        from affectllm.ui.figures import au_chart

        obs = conv.obs
        probs = result.explanation.probabilities if result is not None and result.explanation else None
        face = obs.main_face if obs is not None else None
        lines = [decision] if decision else []
        lines += [f"- {n}" for n in notes(obs, result, item)]
        timeline, when = self._timeline(obs)
        if when:
            lines.append("\n**Timeline** (seconds from the start):\n" + "\n".join(f"- {t}" for t in when.splitlines()))
        return (probs, au_chart(face), self._overlay(conv), timeline, voice_markdown(obs),
                scrub("\n".join(lines) or "_Nothing to add._", conv.paths),
                scrub(row or result_row_safe(result), conv.paths))

    @staticmethod
    def _timeline(obs):
        """(PIL image, onset/apex text) of a video or a webcam moment (``affectllm.ui.timeline``), or (None, None)."""
        import io

        from PIL import Image

        from affectllm.ui.timeline import obs_timeline

        try:
            tl = obs_timeline(obs) if obs is not None and obs.video is not None else None
            return (Image.open(io.BytesIO(tl.png)), tl.text) if tl is not None else (None, None)
        except Exception:  # noqa: BLE001 - a drawing problem must not hide the answer
            return None, None

    def _overlay(self, conv):
        """The photo with the face drawn (landmarks recomputed when the observation came from cache)."""
        from affectllm.io import load_image
        from affectllm.ui.figures import face_overlay

        face = conv.obs.main_face if conv.obs is not None else None
        if not conv.image or face is None:
            return None
        try:
            rgb = load_image(conv.image)
            if face.landmarks is None:
                with self.pool.run_lock:
                    fresh = self.pool.perception.face.perceive(rgb, item=conv.image)
                if fresh:
                    face = fresh[0]
            return face_overlay(rgb, face)
        except Exception:  # noqa: BLE001 - a drawing problem must not hide the answer
            return None


def _unchanged_panels() -> list:
    """Fresh "leave as is" updates for the evidence panels (gradio may edit an update dict in place)."""
    return [gr.skip() for _ in range(N_PANELS)]


def _session(request) -> str:
    """The browser session a live-stream event belongs to ("local" when called without gradio)."""
    return request.session_hash if request else "local"


def result_row_safe(result):
    from affectllm.batch.job import result_row

    return result_row(result) if result is not None else None


def build_app(pool: ModelPool, examples: list[str] | None = None, max_seconds: float = MAX_MEDIA_SECONDS,
              concurrency: int = 1, attribution: bool = True, api_batch: int = 8) -> gr.Blocks:
    ui = UI(pool, max_seconds, attribution)
    limit = dict(concurrency_limit=concurrency, concurrency_id="explain")  # chat and API share one queue
    with gr.Blocks(title="affectllm", delete_cache=(3600, 3600)) as demo:  # uploads kept at most ~2 h
        gr.Markdown("## affectllm \u2014 explainable emotion reasoning (face action units, voice, words)")
        conv = gr.State(Conversation())
        with gr.Tab("Chat"):
            with gr.Row():
                with gr.Column(scale=3):
                    chat = gr.Chatbot(label="Conversation", height=460, elem_id="chat")
                    box = gr.MultimodalTextbox(placeholder=PLACEHOLDER, sources=["upload", "microphone"],
                                               file_types=["image", "audio", "video", ".txt"],
                                               file_count="multiple", show_label=False, elem_id="box")
                    with gr.Row():
                        model = gr.Dropdown(pool.names, value=pool.default, label="Model", scale=2)
                        clear = gr.Button("New conversation", scale=1)
                    with gr.Accordion("Camera and words", open=False):
                        webcam = gr.Image(sources=["webcam"], type="filepath", label="Capture a photo")
                        words = gr.Textbox(label="Words said or written (evidence, optional)", lines=2)
                    with gr.Accordion("Live webcam: AU bars follow the face", open=False, elem_id="live"):
                        cam = gr.Image(sources=["webcam"], streaming=True, type="numpy", label="Live webcam",
                                       elem_id="live_cam", height=240)
                        bars = gr.HTML(bars_html({}, 0, 0.0), elem_id="live_bars")
                        moment = gr.Button(f"Explain this moment (last {MOMENT_S:g} s)", elem_id="moment")
                    if examples:
                        gr.Examples([{"text": "", "files": [f]} for f in examples], inputs=[box],
                                    label="Examples (shared data)")
                with gr.Column(scale=2):
                    label = gr.Label(label="Emotion probabilities", num_top_classes=7)
                    decision = gr.Markdown(elem_id="decision")
                    overlay = gr.Image(label="Face, landmarks and present AUs", interactive=False, height=260)
                    au_plot = gr.Plot(label="AU intensities")
                    timeline = gr.Image(label="AU and expression over time", interactive=False, elem_id="timeline")
                    voice = gr.Markdown()
                    with gr.Accordion("JSON", open=False):
                        js = gr.JSON()
        with gr.Tab("API"):
            gr.Markdown("One input to the JSON row of `affectllm batch` (also `/explain` for gradio_client).")
            f_in = gr.File(label="File", type="filepath")
            t_in = gr.Textbox(label="Text (words to analyse)")
            q_in = gr.Textbox(label="Question (optional)")
            go = gr.Button("Explain")
            out = gr.JSON(label="Result")
            go.click(ui.api_explain, [f_in, t_in, q_in], out, api_name="explain", batch=True,
                     max_batch_size=api_batch, **limit)
        outputs = [chat, conv, box, webcam, label, au_plot, overlay, timeline, voice, decision, js]
        box.submit(ui.respond, [box, webcam, words, model, chat, conv], outputs, api_visibility="private", **limit)
        moment.click(ui.explain_moment, [model, chat, conv], outputs, api_visibility="private", **limit)
        # The stream has its own queue (one frame at a time); live_frame drops frames while an explanation runs.
        cam.stream(ui.live_frame, [cam], [bars], stream_every=LIVE_EVERY_S, concurrency_limit=1,
                   concurrency_id="live", show_progress="hidden", api_visibility="private")
        demo.unload(ui.live_closed)
        clear.click(lambda: ([], Conversation(), None, None, None, None, None, "", "", None), None,
                    [chat, conv, label, au_plot, overlay, timeline, voice, decision, js, webcam],
                    api_visibility="private")
    return demo


def launch(demo: gr.Blocks, host: str = "127.0.0.1", port: int | None = None, auth=None,
           max_file_size: str = "50mb", examples: list[str] | None = None, block: bool = True, queue_size: int = 64):
    """Start the server; returns (app, local_url) when ``block`` is False."""
    demo.queue(max_size=queue_size)
    app, local_url, _ = demo.launch(
        server_name=host, server_port=port, auth=auth, share=False, max_file_size=max_file_size,
        allowed_paths=[str(Path(f).resolve()) for f in examples or []],  # the example files, nothing else
        enable_monitoring=False, show_error=True, prevent_thread_lock=not block, quiet=not block,
        mcp_server=False, pwa=False, footer_links=[])
    return app, local_url


def is_loopback(host: str) -> bool:
    """True for addresses only this machine can reach (127.0.0.0/8, ::1, localhost)."""
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def exposure_check(host: str, has_auth: bool, insecure_no_auth: bool = False) -> str | None:
    """Why the server must not start (a non-loopback host with no login and no explicit
    ``--insecure-no-auth``), or None."""
    if is_loopback(host) or has_auth or insecure_no_auth:
        return None
    return (f"app.py: refusing to serve on {host} without a login: anyone who can reach it could use it. "
            "Pass --auth user:pass, or --insecure-no-auth to serve it open on purpose "
            "(or leave --host out to serve this machine only).")


def _warm(pool: ModelPool) -> None:
    try:
        pool.get()
    except Exception as e:  # noqa: BLE001 - the first request will say why the model cannot load
        print(f"warning: default model not preloaded: {type(e).__name__}: {e}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=7860)
    p.add_argument("--auth", default=None, metavar="USER:PASS", help="require this login")
    p.add_argument("--insecure-no-auth", action="store_true",
                   help="serve a non-loopback --host with no login: anyone who can reach it can use it")
    p.add_argument("--share", choices=["never"], default="never", help="public share links are never made")
    p.add_argument("--model", action="append", default=[], metavar="NAME_OR_DIR",
                   help="extra model choice (a saved AffectLLM folder); repeatable; the first is the default")
    p.add_argument("--max-file-size", default="50mb", help="upload limit (default 50mb)")
    p.add_argument("--max-seconds", type=float, default=MAX_MEDIA_SECONDS, help="longest clip or video accepted")
    p.add_argument("--max-new-tokens", type=int, default=None, help="default: the model's own budget")
    p.add_argument("--concurrency", type=int, default=1, help="explanations run at once (default 1)")
    p.add_argument("--no-attribution", action="store_true", help="skip the which-channel-decided pass")
    p.add_argument("--lazy", action="store_true", help="load the default model on the first request, not at start")
    p.add_argument("--api-batch", type=int, default=8, help="queued /explain requests explained together (default 8)")
    args = p.parse_args(argv)
    auth = None
    if args.auth:
        user, sep, pw = args.auth.partition(":")
        if not (user and sep and pw):
            p.error("--auth takes USER:PASS")
        auth = (user, pw)
    refusal = exposure_check(args.host, auth is not None, args.insecure_no_auth)
    if refusal:
        print(refusal, file=sys.stderr)
        return 2
    if args.insecure_no_auth and not is_loopback(args.host):
        print(f"WARNING: --insecure-no-auth: serving on {args.host} with NO login; anyone who can reach "
              "this address can upload files and run the model", file=sys.stderr)
    names = list(dict.fromkeys(args.model + model_choices())) if args.model else model_choices()
    examples = example_files()
    pool = ModelPool(names, max_new_tokens=args.max_new_tokens)
    demo = build_app(pool, examples, args.max_seconds, args.concurrency, not args.no_attribution, args.api_batch)
    if not args.lazy:  # load the default model while the page opens: the first answer then skips ~10 s
        threading.Thread(target=_warm, args=(pool,), daemon=True).start()
    launch(demo, args.host, args.port, auth, args.max_file_size, examples)
    return 0


if __name__ == "__main__":
    sys.exit(main())
