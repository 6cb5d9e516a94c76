"""LLM robustness of request understanding, through real HTTP to the scripted OpenAI-compatible server.

Every failure ends in the deterministic parser's request, and the record says why.
"""

from __future__ import annotations

import json

import pytest

from agent.llm.llm_client import LLMClient
from agent.understanding.understander import RequestUnderstander
from tests.llm_server import Reply

REQUEST = "a red ball rolls to the right, then it bounces"
GOOD = {
    "scenes": [{"prompt": "a red ball rolls to the right"}, {"prompt": "the red ball bounces"}],
    "style": None,
    "seed": None,
    "constraints": [],
    "entities": {"ball": ["red"]},
}


def understander(server, tmp_path=None, timeout=5.0, retries=0):
    client = LLMClient(
        "test-model",
        base_url=server.url if server else "http://127.0.0.1:9/v1",
        timeout=timeout,
        max_retries=retries,
        cache_dir=tmp_path,
    )
    return RequestUnderstander(client)


def assert_parser_fallback(result, *words):
    assert result.engine == "parser"
    assert [s.prompt for s in result.request.scenes] == [
        "a red ball rolls to the right",
        "the red ball bounces",
    ]
    for word in words:
        assert word in result.fallback, result.fallback
    assert result.reason.startswith("deterministic parser: ")


def test_llm_answer_is_used_and_cached(llm_server, tmp_path):
    answer = dict(GOOD, scenes=[{"prompt": "a red ball rolls to the right", "seconds": 2}, GOOD["scenes"][1]])
    llm_server.script(json.dumps(answer))
    first = understander(llm_server, tmp_path).understand(REQUEST)
    assert first.engine == "llm:test-model" and first.fallback is None and not first.cached
    assert first.request.scenes[0].seconds == 2
    assert llm_server.requests[0]["response_format"]["type"] == "json_schema"
    again = understander(llm_server, tmp_path).understand(REQUEST)
    assert again.cached and again.request == first.request and len(llm_server.requests) == 1


def test_endpoint_down():
    assert_parser_fallback(understander(None).understand(REQUEST), "could not answer", "ConnectionError")


def test_timeout(llm_server):
    llm_server.script(Reply(json.dumps(GOOD), delay=1.5))
    assert_parser_fallback(understander(llm_server, timeout=0.3).understand(REQUEST), "TimeoutError")


@pytest.mark.parametrize("status, error", [(429, "429"), (503, "503")])
def test_429_and_5xx_are_retried_then_fall_back(llm_server, status, error):
    llm_server.default = Reply(status=status)
    result = understander(llm_server, retries=1).understand(REQUEST)
    assert_parser_fallback(result, error)
    assert len(llm_server.requests) == 2  # the first try and one retry


def test_429_then_5xx_then_an_answer_succeeds_on_retry(llm_server):
    llm_server.script(Reply(status=429), Reply(status=502), json.dumps(GOOD))
    result = understander(llm_server, retries=2).understand(REQUEST)
    assert result.engine == "llm:test-model" and result.fallback is None
    assert len(llm_server.requests) == 3


@pytest.mark.parametrize(
    "reply, why",
    [
        (Reply("{'scenes': [oops"), "unusable"),
        (Reply(""), "unusable"),
        (Reply(raw=b"{not json at all"), "JSONDecodeError"),
        (Reply(raw=b""), "JSONDecodeError"),
    ],
    ids=["malformed-json-content", "empty-content", "malformed-body", "empty-body"],
)
def test_malformed_or_empty_json(llm_server, reply, why):
    llm_server.script(reply)
    assert_parser_fallback(understander(llm_server).understand(REQUEST), why)


def test_schema_mismatch(llm_server):
    llm_server.script(json.dumps({"scenes": "a red ball", "mood": "happy"}))
    result = understander(llm_server).understand(REQUEST)
    assert_parser_fallback(result, "unusable")
    assert "scenes" in result.fallback


def test_answer_dropping_the_subject(llm_server):
    off = dict(GOOD, scenes=[{"prompt": "a blue square rolls to the right"}, {"prompt": "it bounces"}])
    llm_server.script(json.dumps(off))
    result = understander(llm_server).understand(REQUEST)
    assert_parser_fallback(result, "dropped the subject", "'red ball'")
    assert "blue square" in result.llm_answer


# -- the tool advisor: the same failures end in "the rules decided alone", recorded in the plan ----------
def advisor(server, timeout=5.0):
    from agent.llm.tool_advisor import LLMToolAdvisor

    return LLMToolAdvisor(LLMClient("test-model", base_url=server.url, timeout=timeout, max_retries=0))


SUMMARY = {"available": "no pool", "scenes": [{"scene": 1, "prompt": "a red ball rolls"}]}


@pytest.mark.parametrize(
    "reply, note",
    [
        (Reply(status=500), "could not answer"),
        (Reply(status=429), "could not answer"),
        (Reply("not json"), "unusable"),
        (Reply(json.dumps({"scenes": [{"scene": 0, "noise": "magic"}]})), "unusable"),
    ],
    ids=["5xx", "429", "malformed", "schema-mismatch"],
)
def test_tool_advisor_failures_leave_the_rules_alone(llm_server, reply, note):
    llm_server.script(reply)
    proposals, source = advisor(llm_server).propose(SUMMARY)
    assert proposals is None and note in source.note and source.note.endswith("the rules decided")


def test_tool_advisor_proposals_are_parsed(llm_server):
    llm_server.script(
        json.dumps({"scenes": [{"scene": 1, "noise": "random", "rewrite": None, "tuning": None, "why": "x"}]})
    )
    proposals, source = advisor(llm_server).propose(SUMMARY)
    assert proposals.scenes[0].noise == "random" and "1 proposal(s) from llm:test-model" in source.note


def test_plan_story_with_an_unreachable_llm_records_every_fallback(tmp_path, tiny_model_dir, monkeypatch):
    from typer.testing import CliRunner

    import cli

    monkeypatch.setenv("REELGRAPH_LLM_MODEL", "test-model")
    monkeypatch.setenv("REELGRAPH_LLM_BASE_URL", "http://127.0.0.1:9/v1")  # nothing listens there
    monkeypatch.setenv("REELGRAPH_LLM_MAX_RETRIES", "0")
    args = ["--home", str(tmp_path), "plan", "--story", REQUEST, "--model", str(tiny_model_dir), "--json"]
    result = CliRunner().invoke(cli.app, args)
    assert result.exit_code == 0, result.output
    plan = json.loads(result.stdout)
    assert plan["understanding"]["engine"] == "parser"
    assert plan["understanding"]["reason"].startswith("deterministic parser: the LLM could not answer")
    assert [s["prompt"] for s in plan["scenes"]] == ["a red ball rolls to the right", "the red ball bounces"]
    assert plan["policy"]["proposals"].startswith("none: the LLM could not answer")


FAILURES = {
    "endpoint-down": (None, "could not answer"),
    "timeout": (Reply(json.dumps(GOOD), delay=1.5), "TimeoutError"),
    "429": (Reply(status=429), "429"),
    "5xx": (Reply(status=502), "502"),
    "malformed-json": (Reply("{'scenes': [oops"), "unusable"),
    "empty-json": (Reply(raw=b""), "JSONDecodeError"),
    "schema-mismatch": (Reply(json.dumps({"scenes": "a red ball"})), "unusable"),
    "dropped-subject": (
        Reply(json.dumps(dict(GOOD, scenes=[{"prompt": "a cat sleeps"}]))),
        "dropped the subject",
    ),
}


@pytest.mark.parametrize("failure", list(FAILURES))
def test_every_llm_failure_is_recorded_in_the_chat_plan(llm_server, tmp_path, failure):
    from agent.chat import open_session
    from tests.test_agent_chat import FakeChat

    reply, why = FAILURES[failure]
    if reply is not None:
        llm_server.default = reply
    fake = FakeChat(tmp_path)
    services = fake.services()
    services.understander = understander(llm_server if reply is not None else None, timeout=0.3)
    with open_session(tmp_path / "home", "s", services) as chat:
        plan = chat.send(REQUEST, ask=lambda state: False).state.plan
    assert plan["understanding"]["engine"] == "parser"
    assert why in plan["understanding"]["fallback"] and plan["understanding"]["reason"].startswith(
        "deterministic"
    )
    assert [s["prompt"] for s in plan["scenes"]] == ["a red ball rolls to the right", "the red ball bounces"]
