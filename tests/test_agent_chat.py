"""The chat graph: routing with fake services, persistence across sessions, and the CLI end to end."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

import cli
from agent.chat import ChatServices, open_session
from agent.graph import build_graph
from agent.state import RunRequest, RunState
from agent.understanding.understander import RequestUnderstander
from tests.agent_fakes import fake_services


class FakeChat:
    """Plans with the real request graph over fake services; generating records the call."""

    def __init__(self, tmp_path: Path):
        self.tmp_path, self.planned, self.generated, self.seeds = tmp_path, [], [], iter(range(100, 200))

    def services(self) -> ChatServices:
        return ChatServices(
            understander=RequestUnderstander(None),
            plan=self.plan,
            generate=self.generate,
            run_dir=lambda turn, prompt: self.tmp_path / f"turn-{turn}",
            new_seed=lambda: next(self.seeds),
            fps=8,
            default_frames=4,
            default_seconds=0.5,
        )

    def _run(self, mode, scenes, seed, negative, origin, run_dir=None):
        request = RunRequest(
            scenes=scenes, seed=seed, num_inference_steps=2, guidance_scale=7.0, negative_prompt=negative
        )
        state = RunState(mode=mode, request=request, origin=origin, run_dir=str(run_dir) if run_dir else None)
        return RunState.model_validate(build_graph(fake_services()).invoke(state))

    def plan(self, scenes, seed, negative, origin):
        self.planned.append(([s.prompt for s in scenes], [s.num_frames for s in scenes], seed))
        return self._run("plan", scenes, seed, negative, origin)

    def generate(self, scenes, seed, negative, run_dir, origin):
        self.generated.append(([s.prompt for s in scenes], [s.num_frames for s in scenes], seed, origin))
        run_dir.mkdir(parents=True)
        return self._run("generate", scenes, seed, negative, origin, run_dir)


def test_chat_routes_plans_confirms_and_persists(tmp_path):
    fake = FakeChat(tmp_path)
    with open_session(tmp_path / "home", "s1", fake.services()) as chat:
        first = chat.send("a red ball rolls to the right", ask=lambda state: False)
        assert first.asked and first.state.outputs is None and fake.generated == []
        assert fake.planned == [(["a red ball rolls to the right"], [4], 100)]
        assert first.state.plan["understanding"]["engine"] == "parser"

        blue = chat.send("now the ball is blue", ask=lambda state: True)
        assert blue.asked and blue.state.turn.notes == ["the ball is now blue (was red)"]
        assert fake.generated[-1][:3] == (["a blue ball rolls to the right"], [4], 100)  # edits keep the seed
        assert blue.state.outputs["manifest"].endswith("turn-2/manifest.json")

        shown = chat.send("show me the plan again", ask=lambda state: True)
        assert not shown.asked and len(fake.planned) == 2 and len(fake.generated) == 1
        assert shown.state.plan["scenes"][0]["prompt"] == "a blue ball rolls to the right"

    with open_session(tmp_path / "home", "s1", fake.services()) as chat:  # a new process, the same session
        assert [t.message for t in chat.state().turns][-1] == "show me the plan again"
        longer = chat.send("make it longer, new seed", ask=lambda state: True, auto_yes=True)
        assert not longer.asked
        prompts, frames, seed, origin = fake.generated[-1]
        assert (prompts, frames, seed) == (["a blue ball rolls to the right"], [8], 101)
        assert origin["chat"]["edits"] == ["every scene is twice as long", "a new seed"]
        assert origin["chat"]["earlier_messages"][:2] == [
            "a red ball rolls to the right",
            "now the ball is blue",
        ]

        added = chat.send("add a second scene where it bounces", ask=lambda state: True, auto_yes=True)
        assert fake.generated[-1][0] == ["a blue ball rolls to the right", "the blue ball bounces"]
        assert added.state.turn.number == 5

    with open_session(tmp_path / "home", "other", fake.services()) as chat:
        assert chat.state() is None  # sessions are separate threads


def test_chat_cli_three_turns_make_three_videos_whose_manifests_show_the_edits(tmp_path, tiny_model_dir):
    home, out = tmp_path / "home", tmp_path / "runs"
    args = ["--home", str(home), "chat", "--model", str(tiny_model_dir), "--steps", "2", "--frames", "4"]
    args += ["--seed", "5", "--out", str(out), "--yes", "--session", "demo"]
    turns = ["a red ball rolls to the right", "now the ball is blue", "make it longer"]
    result = CliRunner().invoke(cli.app, [*args, *(x for t in turns for x in ("--message", t))])
    assert result.exit_code == 0, result.output
    assert result.stdout.count("Done (turn") == 3
    folders = sorted(out.iterdir())
    assert [f.name.split("-chat-")[1] for f in folders] == [
        "t1-a-red-ball-rolls-to-the-right",
        "t2-a-blue-ball-rolls-to-the-right",
        "t3-a-blue-ball-rolls-to-the-right",
    ]
    manifests = [json.loads((f / "manifest.json").read_text()) for f in folders]
    assert [m["prompt"] for m in manifests] == [
        "a red ball rolls to the right",
        "a blue ball rolls to the right",
        "a blue ball rolls to the right",
    ]
    assert [m["sampling"]["num_frames"] for m in manifests] == [4, 4, 8]
    assert [m["seeds"]["base"] for m in manifests] == [5, 5, 5]
    assert [m["origin"]["chat"]["edits"] for m in manifests][1:] == [
        ["the ball is now blue (was red)"],
        ["every scene is twice as long"],
    ]
    assert manifests[2]["origin"]["chat"]["earlier_messages"] == turns[:2]

    again = CliRunner().invoke(
        cli.app, [*args[:5], "--session", "demo", "--message", "show me the plan again"]
    )
    assert again.exit_code == 0, again.output
    assert "3 earlier turn(s)" in again.stdout and "Scene 1: a blue ball rolls to the right" in again.stdout
    assert len(list(out.iterdir())) == 3


def test_chat_without_yes_asks_and_an_unknown_subject_is_an_error(tmp_path, tiny_model_dir):
    args = ["--home", str(tmp_path), "chat", "--model", str(tiny_model_dir), "--out", str(tmp_path / "runs")]
    asked = CliRunner().invoke(cli.app, [*args, "-m", "a red ball rolls"], input="n\n")
    assert asked.exit_code == 0, asked.output
    assert "Generate this video?" in asked.stderr and "Not generated" in asked.stdout
    assert not (tmp_path / "runs").exists()
    wrong = CliRunner().invoke(cli.app, [*args, "-m", "now the square is green"])
    assert wrong.exit_code == 1 and "The video has no square" in wrong.stderr


def test_interactive_chat_reads_turns_until_exit(tmp_path, tiny_model_dir):
    args = ["--home", str(tmp_path), "chat", "--model", str(tiny_model_dir), "--out", str(tmp_path / "runs")]
    typed = "a red ball rolls\nn\nshow me the plan again\nexit\nnever read\n"
    result = CliRunner().invoke(cli.app, args, input=typed)
    assert result.exit_code == 0, result.output
    assert result.stdout.count("you> ") >= 2 and "Scene 1: a red ball rolls" in result.stdout
    assert "never read" not in result.stdout and not (tmp_path / "runs").exists()
