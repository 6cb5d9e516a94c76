"""The Gradio Blocks app: chat with its plan table, storyboard editor, gallery, model and settings.

Every handler goes through :class:`webui.backend.UiBackend`; a :class:`ReelgraphError` becomes
the status line (what, why, fix), never a traceback in the page. Generating events share one
queue slot (``concurrency_id="generation"``, limit 1), so a second tab waits its turn.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gradio as gr

from agent.state import SceneRequest
from reelgraph.errors import ReelgraphError
from webui.backend import UiBackend
from webui.safety import check_image_upload
from webui.views import (
    PANEL_SETTINGS,
    PLAN_COLUMNS,
    SETTINGS_COLUMNS,
    plan_rows,
    plan_summary,
    read_manifest,
    settings_rows,
)

STORY_COLUMNS = ["prompt", "seconds", "image"]
PLAN_WIDTHS = ["5%", "9%", "7%", "31%", "20%", "28%"]
GENERATION = {"concurrency_id": "generation", "concurrency_limit": 1}


def _status(text: str, kind: str = "info") -> str:
    marks = {"info": "", "error": "**error:** ", "done": "**done:** "}
    return marks[kind] + text.replace("\n", "  \n")


def _chat_messages(state) -> list[dict[str, str]]:
    """The session's turns as chat bubbles (what was said, what became of it)."""
    messages = []
    for turn in state.turns if state else []:
        messages.append({"role": "user", "content": turn.message})
        said = "; ".join(turn.notes) or ", ".join(turn.kinds)
        if turn.generated:
            said += f" (generated, seed {turn.seed}: {Path(turn.run_dir or '').name})"
        messages.append({"role": "assistant", "content": said})
    return messages


def _result(outputs: dict[str, Any] | None) -> tuple[Any, Any, Any, Any]:
    """The video, contact sheet, manifest (as JSON) and downloads of a finished run."""
    if not outputs:
        return None, None, None, None
    manifest_path = Path(outputs["manifest"])
    files = [str(outputs[name]) for name in ("video", "gif", "sheet", "manifest") if outputs.get(name)]
    return str(outputs["video"]), str(outputs["sheet"]), read_manifest(manifest_path.parent), files


def _state_outputs(state) -> dict[str, Any]:
    return {
        "video": state.outputs.video,
        "gif": state.outputs.gif,
        "sheet": state.outputs.sheet,
        "manifest": state.manifest_path,
    }


def _relay(progress: gr.Progress) -> Callable[[str, int, int], None]:
    """Our sampler's ``progress(label, done, total)`` as Gradio's progress bar."""
    return lambda label, done, total: progress((done, total), desc=label, unit="steps")


def build_app(backend: UiBackend) -> gr.Blocks:
    settings = backend.settings
    defaults = {name: field.default for name, field in type(settings).model_fields.items()}

    with gr.Blocks(title="reelgraph", analytics_enabled=False) as app:
        gr.Markdown(
            "# reelgraph\nDescribe a video; read its plan; press Generate. Nothing runs on the GPU before."
        )
        status = gr.Markdown(elem_id="status")

        # -- chat -------------------------------------------------------------------------------
        with gr.Tab("Chat", id="chat"):
            with gr.Row():
                session = gr.Textbox(
                    "default",
                    label="session (the same store as `reelgraph chat`)",
                    scale=1,
                    elem_id="session",
                )
            chatbot = gr.Chatbot(label="conversation", height=260, elem_id="chatbot")
            with gr.Row():
                message = gr.Textbox(
                    placeholder="a red ball rolls to the right", label="message", scale=4, elem_id="message"
                )
                send = gr.Button("Send", variant="secondary", scale=1, elem_id="send")
            plan_table = gr.Dataframe(
                headers=PLAN_COLUMNS,
                column_widths=PLAN_WIDTHS,
                max_height=2000,  # every tool visible without scrolling inside the table
                interactive=False,
                label="plan",
                wrap=True,
                elem_id="plan-table",
            )
            plan_notes = gr.Markdown(elem_id="plan-notes")
            with gr.Row():
                generate = gr.Button("Generate", variant="primary", elem_id="generate")
                cancel = gr.Button("Cancel", variant="stop", elem_id="cancel")
            # Its own line: the cancelled run's answer goes to the status line, and may come first.
            cancel_note = gr.Markdown(elem_id="cancel-note")
            with gr.Row():
                video = gr.Video(label="video", elem_id="video", autoplay=True, loop=True)
                sheet = gr.Image(label="contact sheet", elem_id="sheet", type="filepath")
            manifest = gr.JSON(label="manifest", elem_id="manifest")
            downloads = gr.File(label="downloads", file_count="multiple", elem_id="downloads")

        def on_send(data):
            name, text = data[session], data[message]
            try:
                reply = backend.send(name, text, overrides(data))
            except ReelgraphError as error:
                return gr.update(), gr.update(), gr.update(), gr.update(), _status(error.message, "error")
            state = reply.state
            note = "Press Generate to make it." if reply.asked else ""
            notes = "; ".join(state.turn.notes)
            return (
                _chat_messages(state),
                "",
                plan_rows(state.plan),
                f"{notes}\n\n{plan_summary(state.plan)}",
                _status(f"Planned (turn {state.turn.number}). {note}"),
            )

        def on_generate(data, progress=gr.Progress()):
            try:
                reply = backend.generate_chat(data[session], overrides(data), _relay(progress))
            except ReelgraphError as error:
                return (gr.update(),) * 6 + (_status(error.message, "error"),)
            state = reply.state
            if not state.outputs:
                return (gr.update(),) * 6 + (_status("Not generated."),)
            return (
                *_result(state.outputs),
                plan_rows(state.plan),
                _chat_messages(state),
                _status(f"Generated turn {state.turn.number} (seed {state.turn.seed}).", "done"),
            )

        def on_cancel():
            stopping = backend.cancel()
            return _status("Cancelling at the next step." if stopping else "Nothing is running.")

        cancel.click(on_cancel, None, cancel_note, queue=False)

        # -- storyboard -------------------------------------------------------------------------
        with gr.Tab("Storyboard", id="storyboard"):
            story_text = gr.Textbox(
                lines=3,
                label="story (free text: sentences, lines and 'then' make scenes)",
                elem_id="story-text",
            )
            split = gr.Button("Split into scenes", elem_id="split")
            scenes_table = gr.Dataframe(
                [["", None, ""]],
                headers=STORY_COLUMNS,
                datatype=["str", "number", "str"],
                type="array",
                interactive=True,
                label="scenes (image: the name of an uploaded image)",
                elem_id="scenes",
            )
            uploads = gr.File(
                label="images for scenes (PNG/JPEG, checked like --image)",
                file_count="multiple",
                file_types=["image"],
                elem_id="uploads",
            )
            uploaded = gr.Markdown()
            with gr.Row():
                story_plan = gr.Button("Plan storyboard", elem_id="story-plan")
                story_generate = gr.Button("Generate storyboard", variant="primary", elem_id="story-generate")
            story_table = gr.Dataframe(
                headers=PLAN_COLUMNS,
                column_widths=PLAN_WIDTHS,
                max_height=2000,  # every tool visible without scrolling inside the table
                interactive=False,
                label="storyboard plan",
                wrap=True,
                elem_id="story-plan-table",
            )
            story_notes = gr.Markdown()
            with gr.Row():
                story_video = gr.Video(label="video", elem_id="story-video", autoplay=True, loop=True)
                story_sheet = gr.Image(label="contact sheet", type="filepath")
            story_manifest = gr.JSON(label="manifest")

        def on_split(text):
            try:
                scenes = backend.split_story(text)
            except ReelgraphError as error:
                return gr.update(), _status(error.message, "error")
            fps = backend.services(backend.settings).generator.model_info.fps
            rows = [[s.prompt, round(s.num_frames / fps, 2) if s.num_frames else None, ""] for s in scenes]
            return rows, _status(f"{len(rows)} scene(s). Edit them, then plan.")

        split.click(on_split, story_text, [scenes_table, status])

        def on_upload(files):
            kept = []
            try:
                for file in files or []:
                    kept.append(check_image_upload(file, backend.uploads_dir).name)
            except ReelgraphError as error:
                return _status(error.message, "error"), _status(error.message, "error")
            text = "Uploaded: " + ", ".join(f"`{name}`" for name in kept) if kept else ""
            return text, _status(text)

        uploads.upload(on_upload, uploads, [uploaded, status])

        def scenes_of(rows) -> list[SceneRequest]:
            fps = backend.services(backend.settings).generator.model_info.fps
            scenes = []
            for row in rows or []:
                prompt, seconds, image = [*list(row), None, None, None][:3]
                if not str(prompt or "").strip():
                    continue
                frames = None
                if seconds not in (None, "") and not (isinstance(seconds, float) and math.isnan(seconds)):
                    try:
                        frames = max(2, math.ceil(float(seconds) * fps))
                    except ValueError:
                        raise ReelgraphError(
                            f"Scene {prompt!r}: {seconds!r} is not a number of seconds."
                        ) from None
                scenes.append(
                    SceneRequest(prompt=str(prompt).strip(), num_frames=frames, image=backend.upload(image))
                )
            if not scenes:
                raise ReelgraphError("The storyboard has no scenes.", fix="write a prompt in the first row.")
            return scenes

        def on_story_plan(data):
            try:
                planned = backend.plan_scenes(scenes_of(data[scenes_table]), overrides(data))
            except ReelgraphError as error:
                return gr.update(), gr.update(), _status(error.message, "error")
            view = planned.plan_view()
            return plan_rows(view), plan_summary(view), _status(f"Planned {len(view['scenes'])} scene(s).")

        def on_story_generate(data, progress=gr.Progress()):
            try:
                state = backend.generate_scenes(
                    scenes_of(data[scenes_table]), overrides(data), _relay(progress)
                )
            except ReelgraphError as error:
                return (gr.update(),) * 4 + (_status(error.message, "error"),)
            video_path, sheet_path, data, _ = _result(_state_outputs(state))
            done = _status(f"Generated {len(state.scenes)} scene(s) into {Path(state.run_dir).name}.", "done")
            return video_path, sheet_path, data, plan_rows(state.plan_view()), done

        # -- gallery ----------------------------------------------------------------------------
        with gr.Tab("Gallery", id="gallery"):
            refresh = gr.Button("Refresh", elem_id="refresh")
            gallery = gr.Gallery(
                label="earlier runs (contact sheets; pick one to open it)",
                columns=2,
                object_fit="contain",
                height="auto",
                elem_id="gallery",
            )
            run_name = gr.Dropdown([], label="open a run", elem_id="run-name")
            resume = gr.Button("Resume this run", elem_id="resume")
            with gr.Row():
                run_video = gr.Video(label="video", elem_id="run-video")
                run_sheet = gr.Image(label="contact sheet", type="filepath")
            run_plan = gr.Dataframe(
                headers=PLAN_COLUMNS,
                column_widths=PLAN_WIDTHS,
                max_height=2000,
                interactive=False,
                label="plan",
                wrap=True,
            )
            run_manifest = gr.JSON(label="manifest")

        def on_refresh(selected: str | None = None):
            runs = backend.runs()
            pictures = [(str(run.sheet), run.label) for run in runs if run.sheet]
            return pictures, gr.update(choices=[(run.label, run.name) for run in runs], value=selected)

        refresh.click(lambda: on_refresh(), None, [gallery, run_name])
        app.load(lambda: on_refresh(), None, [gallery, run_name])

        def on_pick(evt: gr.SelectData):
            finished = [run for run in backend.runs() if run.sheet]
            return finished[evt.index].name if evt.index < len(finished) else gr.update()

        gallery.select(on_pick, None, run_name)

        def on_open(name):
            if not name:
                return (None,) * 4 + ("",)
            try:
                folder = backend.run_folder(name)
                data = backend.open_run(name)
            except ReelgraphError as error:
                return (gr.update(),) * 4 + (_status(error.message, "error"),)
            if not data:
                return None, None, [], None, _status(f"{name} was interrupted: press Resume to finish it.")
            return (
                str(folder / "video.mp4"),
                str(folder / "sheet.png"),
                plan_rows(data.get("plan")),
                data,
                _status(f"Opened {name}."),
            )

        run_name.change(on_open, run_name, [run_video, run_sheet, run_plan, run_manifest, status])

        def on_resume(name, progress=gr.Progress()):
            try:
                backend.resume(name, _relay(progress))
            except ReelgraphError as error:
                return (gr.update(),) * 6 + (_status(error.message, "error"),)
            return (*on_refresh(name), *on_open(name)[:4], _status(f"Resumed and finished {name}.", "done"))

        resume.click(
            on_resume,
            run_name,
            [gallery, run_name, run_video, run_sheet, run_plan, run_manifest, status],
            **GENERATION,
        )

        # -- model and settings (read by every event below) -----------------------------------------------
        with gr.Tab("Model and settings", id="settings"):
            with gr.Row():
                model = gr.Dropdown(
                    _model_choices(backend), value=settings.model, label="model", allow_custom_value=True
                )
                device = gr.Dropdown(
                    ["auto", "cpu", "cuda", "mps"],
                    value=settings.device,
                    label="device",
                    allow_custom_value=True,
                )
                seed = _optional(settings.seed, "seed (blank: drawn, recorded)", "seed")
            with gr.Row():
                steps = gr.Number(
                    settings.num_inference_steps, label="num_inference_steps", precision=0, elem_id="steps"
                )
                guidance = _optional(
                    settings.guidance_scale, "guidance_scale (blank: the model's)", "guidance"
                )
                frames = _optional(settings.num_frames, "num_frames (blank: one clip)", "frames")
            with gr.Row():
                rewrite = gr.Checkbox(settings.rewrite, label="rewrite (POS)")
                noise = gr.Dropdown(
                    ["auto", "ona", "npnet", "random"], value=settings.noise_source, label="noise_source"
                )
                tuning = gr.Dropdown(
                    ["auto", "always", "never"], value=settings.motion_tuning, label="motion_tuning"
                )
                extension = gr.Dropdown(
                    ["vidrd", "independent"], value=settings.extension_mode, label="extension_mode"
                )
                budget = _optional(settings.budget_seconds, "budget_seconds (blank: none)", "budget")
            settings_table = gr.Dataframe(
                settings_rows(settings.model_dump(), defaults, backend.loaded.sources),
                headers=SETTINGS_COLUMNS,
                interactive=False,
                label="effective settings",
                elem_id="settings-table",
            )
            from generation.families import support_table

            gr.Markdown("### Model families the backend knows\n" + support_table())

        panel = [model, device, seed, steps, guidance, frames, rewrite, noise, tuning, extension, budget]
        names = list(PANEL_SETTINGS[: len(panel)])  # the panel's inputs, in PANEL_SETTINGS order

        def overrides(data) -> dict[str, Any]:
            """The panel's values by setting name (``data``: Gradio's component -> value of a set input)."""
            given = {name: data[widget] for name, widget in zip(names, panel, strict=True)}
            if given["num_inference_steps"] is not None:
                given["num_inference_steps"] = int(given["num_inference_steps"])
            # Blank optional fields keep the process's value; text is validated by the settings model.
            return {name: value.strip() if isinstance(value, str) else value for name, value in given.items()}

        def refresh_settings(data):
            given = overrides(data)
            try:
                effective = backend.settings_with(given)
            except ReelgraphError as error:
                return gr.update(), _status(error.message, "error")
            return settings_rows(effective.model_dump(), defaults, backend.sources(given)), ""

        for widget in panel:
            widget.change(refresh_settings, set(panel), [settings_table, status], queue=False)

        # The events that read the panel, wired now that it exists.
        chat_outputs = [chatbot, message, plan_table, plan_notes, status]
        send.click(on_send, {session, message, *panel}, chat_outputs)
        message.submit(on_send, {session, message, *panel}, chat_outputs)
        generate.click(
            on_generate,
            {session, *panel},
            [video, sheet, manifest, downloads, plan_table, chatbot, status],
            **GENERATION,
        )
        story_plan.click(on_story_plan, {scenes_table, *panel}, [story_table, story_notes, status])
        story_generate.click(
            on_story_generate,
            {scenes_table, *panel},
            [story_video, story_sheet, story_manifest, story_table, status],
            **GENERATION,
        )

        def on_load(name):
            try:
                state = backend.chat_state(name)
            except ReelgraphError as error:
                return gr.update(), gr.update(), _status(error.message, "error")
            return _chat_messages(state), plan_rows(state.plan if state else None), ""

        app.load(on_load, session, [chatbot, plan_table, status])
        session.submit(on_load, session, [chatbot, plan_table, status])
    return app


def _optional(value: Any, label: str, elem_id: str) -> gr.Textbox:
    """A field for an optional number: a Textbox, because Gradio's Number turns blank into 0."""
    return gr.Textbox("" if value is None else str(value), label=label, elem_id=elem_id)


def _model_choices(backend: UiBackend) -> list[str]:
    """The embedded models, the configured model, and the model folders in ``<home>/models``."""
    choices = ["toy", "toy-unet", backend.settings.model]
    models = Path(backend.settings.home) / "models"
    if models.is_dir():
        choices += sorted(str(path) for path in models.iterdir() if path.is_dir())
    return list(dict.fromkeys(choices))
