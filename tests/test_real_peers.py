"""Against real peers started here on 127.0.0.1 (tests/real_peers.py): ``transformers serve`` with a
tiny random Llama that rambles and ignores ``response_format``, and ``chroma run``.

They show the deadline, ``max_tokens`` and the validation fallback on a real server (the rewrite, the
request understanding, the chat and ``plan``), and the store killed mid-ingest and restarted.
"""

from __future__ import annotations

import json
import time

import httpx
import pytest
from typer.testing import CliRunner

import cli
from agent.llm.llm_client import LLMClient, LLMUnavailable
from agent.policies.tool_policy import ToolProposals
from agent.understanding.understander import RequestUnderstander
from tests.real_peers import chroma_server, real_llm  # noqa: F401 - fixtures

pytestmark = pytest.mark.slow
PROMPT = "a red ball rolls to the right"


def _llm_env(monkeypatch, real_llm, **more: str) -> None:  # noqa: F811
    monkeypatch.setenv("REELGRAPH_LLM_MODEL", real_llm.model)
    monkeypatch.setenv("REELGRAPH_LLM_BASE_URL", real_llm.url)
    for name, value in more.items():
        monkeypatch.setenv(f"REELGRAPH_{name.upper()}", value)


def test_real_server_ignores_response_format_and_honours_max_tokens(real_llm):  # noqa: F811
    body = {
        "model": real_llm.model,
        "messages": [{"role": "user", "content": "answer in JSON"}],
        "max_tokens": 12,
        "response_format": {"type": "json_object"},
    }
    answer = httpx.post(f"{real_llm.url}/chat/completions", json=body, timeout=30).json()
    assert answer["usage"]["completion_tokens"] == 12 and answer["choices"][0]["finish_reason"] == "length"
    with pytest.raises(json.JSONDecodeError):  # response_format was not enforced
        json.loads(answer["choices"][0]["message"]["content"])


def test_structured_answer_from_the_real_server_is_validated_and_refused_fast(real_llm):  # noqa: F811
    client = LLMClient(real_llm.model, base_url=real_llm.url, deadline=20.0)
    start = time.monotonic()
    raw, parsed, error, cached = client.structured([("user", PROMPT)], ToolProposals, kind="tools")
    took = time.monotonic() - start
    assert parsed is None and raw and error and not cached
    print(f"structured answer cut by max_tokens in {took:.1f} s")


def test_request_understanding_falls_back_to_the_parser_against_the_real_server(real_llm):  # noqa: F811
    client = LLMClient(real_llm.model, base_url=real_llm.url, deadline=20.0)
    understood = RequestUnderstander(client).understand(f"{PROMPT}, then a blue cube jumps")
    assert understood.engine == "parser" and "unusable" in (understood.fallback or "")
    assert [s.prompt for s in understood.request.scenes] == [PROMPT, "a blue cube jumps"]


def test_plan_against_the_real_rambling_server_finishes_within_the_deadline(
    real_llm,  # noqa: F811
    monkeypatch,
    tmp_path,
    tiny_model_dir,
):
    home = tmp_path / "home"
    indexed = CliRunner().invoke(cli.app, ["--home", str(home), "index", "toy", "--n", "12", "--seed", "2"])
    assert indexed.exit_code == 0, indexed.output
    _llm_env(monkeypatch, real_llm)
    start = time.monotonic()
    result = CliRunner().invoke(
        cli.app,
        ["--home", str(home), "plan", PROMPT, "--model", str(tiny_model_dir), "--seed", "0", "--json"],
    )
    took = time.monotonic() - start
    assert result.exit_code == 0, result.output
    plan = json.loads(result.stdout)
    print(f"plan against the real rambling server: {took:.1f} s")
    text = json.dumps(plan)
    assert "unusable" in text  # the LLM's answers were refused and the fallbacks said so
    (scene,) = plan["scenes"]
    # the LLM's rewrites (cut at max_tokens) were refused by the parser / guard: the original is kept
    assert "the original prompt is used" in scene["rewrite"]["reason"], scene["rewrite"]
    assert "LLM llm:" in plan["policy"]["available"]


def test_chat_turn_against_the_real_server_plans_with_the_fallbacks(
    real_llm,  # noqa: F811
    monkeypatch,
    tmp_path,
    tiny_model_dir,
):
    _llm_env(monkeypatch, real_llm)
    args = ["--home", str(tmp_path / "home"), "chat", "--model", str(tiny_model_dir)]
    asked = CliRunner().invoke(cli.app, [*args, "--out", str(tmp_path / "runs"), "-m", PROMPT], input="n\n")
    assert asked.exit_code == 0, asked.output
    assert "Scene 1: a red ball rolls to the right" in asked.stdout and "Not generated" in asked.stdout


def test_deadline_cuts_a_real_rambling_answer(real_llm):  # noqa: F811
    """Last: the abandoned generation keeps the server busy for a few seconds after the client left."""
    client = LLMClient(real_llm.model, base_url=real_llm.url, deadline=1.5, max_tokens={"rewrite": 4000})
    with pytest.raises(LLMUnavailable, match=r"1\.5 s deadline"):  # our deadline cut it, not the server
        client.complete([("user", PROMPT)])


# -- a real Chroma server --------------------------------------------------------------------------------


def test_global_chroma_url_reaches_index_search_plan_and_doctor(chroma_server, tmp_path, tiny_model_dir):  # noqa: F811
    home = str(tmp_path / "home")
    url = ["--home", home, "--chroma-url", chroma_server.url]
    indexed = CliRunner().invoke(cli.app, [*url, "index", "toy", "--n", "12", "--seed", "2", "--json"])
    assert indexed.exit_code == 0, indexed.output
    assert not (tmp_path / "home" / "chroma").exists()  # nothing went to the embedded store
    found = CliRunner().invoke(cli.app, [*url, "search", PROMPT, "--k", "2", "--json"])
    assert found.exit_code == 0 and json.loads(found.stdout)
    plan = CliRunner().invoke(cli.app, [*url, "plan", PROMPT, "--model", str(tiny_model_dir), "--json"])
    assert plan.exit_code == 0, plan.output
    assert "from a pool of 12 videos" in plan.stdout
    doctor = CliRunner().invoke(cli.app, [*url, "doctor", "--json"])
    (chroma,) = [c for c in json.loads(doctor.stdout) if c["name"] == "chroma"]
    assert chroma["status"] == "ok" and chroma_server.url in chroma["detail"]

    chroma_server.kill()
    down = CliRunner().invoke(cli.app, [*url, "plan", PROMPT, "--model", str(tiny_model_dir), "--json"])
    assert down.exit_code == 0, down.output
    (scene,) = json.loads(down.stdout)["scenes"]
    assert scene["references"]["status"] == "skipped"
    assert (
        "unavailable" in scene["references"]["reason"] and chroma_server.url in scene["references"]["reason"]
    )
    doctor = CliRunner().invoke(cli.app, [*url, "doctor", "--json"])
    (chroma,) = [c for c in json.loads(doctor.stdout) if c["name"] == "chroma"]
    assert chroma["status"] == "fail" and chroma_server.url in chroma["detail"]


def test_chroma_server_killed_mid_ingest_then_restarted_the_ingest_resumes(chroma_server, tmp_path):  # noqa: F811
    from memory.ingest import ingest_csv
    from memory.store import MemoryStore, StoreUnreachable
    from reelgraph.text.embeddings import get_embedder
    from reelgraph.text.units import get_parser
    from tests.memory_helpers import CAPTIONS, write_csv

    rows = [
        {"videoid": f"v{i}", "duration": "PT00H00M03S", "page_dir": "000", "name": CAPTIONS[i % 12]}
        for i in range(24)
    ]
    csv = write_csv(tmp_path / "c.csv", rows)
    embedder, parser = get_embedder(), get_parser()

    class KillingEmbedder:  # takes the server down (SIGKILL) when the fourth batch is embedded
        calls = 0

        def embed(self, texts):
            KillingEmbedder.calls += 1
            if KillingEmbedder.calls == 4:
                chroma_server.kill()
            return embedder.embed(texts)

    store = MemoryStore(url=chroma_server.url)
    with pytest.raises(StoreUnreachable, match="unreachable") as info:
        ingest_csv(store, csv, pool="p", batch=4, embedder=KillingEmbedder(), parser=parser, progress=False)
    assert "rerunning an ingest continues" in info.value.fix
    chroma_server.start()  # the same folder and port
    again = MemoryStore(url=chroma_server.url)
    partial = again.count("p")
    assert partial == 12  # three whole batches, nothing of the fourth
    resumed = ingest_csv(again, csv, pool="p", batch=4, embedder=embedder, parser=parser, progress=False)
    assert (resumed.already_indexed, resumed.added) == (12, 12)
    ids = [r.id for records, _ in again.iter_all("p") for r in records]
    assert len(ids) == len(set(ids)) == 24 and again.ledger_entries()[0].complete


def test_doctor_pings_the_real_llm_endpoint(real_llm, monkeypatch, tmp_path):  # noqa: F811
    _llm_env(monkeypatch, real_llm)
    result = CliRunner().invoke(cli.app, ["--home", str(tmp_path), "doctor", "--json"])
    (llm,) = [c for c in json.loads(result.stdout) if c["name"] == "llm"]
    assert llm["status"] == "ok" and real_llm.url in llm["detail"] and "deadline 30 s" in llm["detail"]
