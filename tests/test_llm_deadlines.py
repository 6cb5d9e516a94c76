"""LLM calls: a total deadline per request, max_tokens per call kind, and structured answers
parsed and validated from the text (servers that ignore ``response_format``), on the scripted server."""

from __future__ import annotations

import json
import time

import pytest

from agent.llm.llm_client import DEFAULT_MAX_TOKENS, LLMClient, LLMUnavailable, parse_structured
from agent.policies.tool_policy import ToolProposals
from reelgraph.settings import Settings
from tests.llm_server import Reply


def _sent_max_tokens(body: dict) -> int | None:
    return body.get("max_completion_tokens", body.get("max_tokens"))


def test_deadline_bounds_all_tries_together_not_each(llm_server):
    llm_server.script(*[Reply(content="late", delay=3.0) for _ in range(4)])
    client = LLMClient("m", base_url=llm_server.url, timeout=10.0, max_retries=3, deadline=1.0)
    start = time.monotonic()
    with pytest.raises(LLMUnavailable, match="1 s deadline"):
        client.complete([("user", "a red ball rolls")])
    assert time.monotonic() - start < 2.0  # per try it would be 4 x 10 s


def test_transient_faults_are_retried_inside_the_deadline(llm_server):
    llm_server.script(Reply(status=503), Reply(status=429), "a red ball rolls to the right")
    client = LLMClient("m", base_url=llm_server.url, max_retries=2, deadline=10.0)
    assert client.complete([("user", "x")]) == ("a red ball rolls to the right", False)
    assert len(llm_server.requests) == 3


def test_a_client_error_is_not_retried(llm_server):
    llm_server.script(Reply(status=400), "never asked")
    client = LLMClient("m", base_url=llm_server.url, max_retries=2, deadline=10.0)
    with pytest.raises(LLMUnavailable, match="400"):
        client.complete([("user", "x")])
    assert len(llm_server.requests) == 1


def test_each_call_kind_sends_its_max_tokens(llm_server):
    answer = json.dumps({"scenes": []})
    llm_server.script("a ball", answer, answer)
    client = LLMClient("m", base_url=llm_server.url, max_tokens={"rewrite": 40})
    client.complete([("user", "x")])
    client.structured([("user", "y")], ToolProposals, kind="tools")
    client.structured([("user", "z")], ToolProposals)
    sent = [_sent_max_tokens(body) for body in llm_server.requests]
    assert sent == [40, DEFAULT_MAX_TOKENS["tools"], DEFAULT_MAX_TOKENS["understanding"]]
    assert llm_server.requests[1]["response_format"]["type"] == "json_schema"


def test_settings_carry_deadline_and_max_tokens_to_the_client(tmp_path):
    from agent.llm.llm_client import client_from_settings

    settings = Settings(home=tmp_path, llm_model="m", llm_deadline=7.5, llm_max_tokens_understanding=99)
    client = client_from_settings(settings.llm)
    assert client.deadline == 7.5 and client.max_tokens["understanding"] == 99
    assert Settings(home=tmp_path).llm_deadline == 30.0


@pytest.mark.parametrize(
    ("raw", "ok"),
    [
        ('{"scenes": []}', True),
        ('Sure! Here it is:\n```json\n{"scenes": []}\n```\nAnything else?', True),
        ('The answer is {"scenes": []} as asked.', True),
        ("\u0018\ufffd|L b j ighd r scenes { scenes", False),  # a rambling model cut at max_tokens
        ('{"scenes": [', False),
        ('{"scenes": "none"}', False),
        ("", False),
    ],
)
def test_structured_answers_are_parsed_from_the_text_and_validated(raw, ok):
    parsed, error = parse_structured(raw, ToolProposals)
    assert (parsed is not None) is ok and (error is None) is ok


def test_a_server_ignoring_response_format_gets_a_fast_fallback(llm_server):
    llm_server.script("scenes scenes tuning true why why why")  # prose, no JSON
    client = LLMClient("m", base_url=llm_server.url)
    _raw, parsed, error, cached = client.structured([("user", "x")], ToolProposals)
    assert parsed is None and "not a JSON object" in error and not cached
