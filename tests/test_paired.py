"""The claims table's paired tests: exact binomial tails, McNemar on 0/1 pairs, the sign test."""

from __future__ import annotations

import pytest

from toyworld.paired import binomial_two_sided, paired_test


def test_binomial_tails_are_exact():
    assert binomial_two_sided(0, 0) == 1.0
    assert binomial_two_sided(5, 10) == 1.0  # the middle: no evidence either way
    assert binomial_two_sided(0, 5) == pytest.approx(2 / 32)
    assert binomial_two_sided(9, 10) == pytest.approx(2 * 11 / 1024)
    assert binomial_two_sided(1, 10) == binomial_two_sided(9, 10)  # symmetric


def test_mcnemar_counts_only_the_pairs_that_disagree():
    a = [1, 1, 0, 0, 1, 0, 0, 0, 1, 0]
    b = [1, 1, 1, 1, 1, 1, 1, 0, 1, 1]  # 5 pairs favour b, none favours a
    result = paired_test(a, b)
    assert (result.n, result.b_better, result.a_better) == (10, 5, 0)
    assert result.difference == pytest.approx(0.5)
    assert result.p_value == pytest.approx(2 / 32)
    assert paired_test(b, a).p_value == result.p_value and paired_test(b, a).difference < 0


def test_graded_outcomes_and_unmeasurable_pairs():
    a = [0.0, 1 / 3, None, 0.5, 1.0]
    b = [1.0, 1 / 3, 1.0, 1.0, None]
    result = paired_test(a, b)
    assert result.n == 3 and (result.b_better, result.a_better) == (2, 0)  # the tie counts for neither
    with pytest.raises(ValueError, match="same samples"):
        paired_test([1, 0], [1])
    with pytest.raises(ValueError, match="no pair"):
        paired_test([None], [1])


def test_the_claims_table_pairs_samples_by_prompt_and_seed(tmp_path):
    """bench/claims.py: a row from two arms' rows.jsonl (lower-is-better metrics flipped for the
    test, shown as measured), and "not measured yet" with its command where an arm is missing."""
    import json

    from bench.claims import CLAIMS, table

    def arm(name: str, values: list[float]) -> None:
        folder = tmp_path / "part_a" / name
        (folder / "samples" / "0000-0").mkdir(parents=True)
        rows = [{"index": i, "sample": 0, "boundary_smoothness": v} for i, v in enumerate(values)]
        (folder / "rows.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        manifest = {"model": {"weights_hash": "abc123"}}
        (folder / "samples" / "0000-0" / "manifest.json").write_text(json.dumps(manifest))

    arm("independent", [3.0] * 6)
    arm("VidRD keeping direction", [1.2, 1.1, 1.3, 1.0, 1.4, 3.5])
    text = table({"long": tmp_path, "pos": None})
    smooth = next(line for line in text.splitlines() if "smoother than independent" in line)
    assert "3.000 -> 1.583" in smooth and "| 5 / 1 |" in smooth and "`abc123`" in smooth
    assert "not shown" in smooth  # 5 of 6 pairs better: p = 0.22
    assert sum("not measured yet" in line for line in text.splitlines()) == len(CLAIMS) - 1 + 2  # 4 and 5


def test_the_retrieval_claim_pairs_the_two_rankings_prompt_by_prompt(tmp_path):
    import json

    from bench.claims import retrieval_row

    rows = [{"prompt": str(i), "motion_ok": True, "base_motion_ok": i < 2} for i in range(10)]
    path = tmp_path / "hits.json"
    path.write_text(json.dumps({"args": {}, "exhaustive": rows}))
    row = retrieval_row(path)
    assert "0.200 -> 1.000" in row and "| 8 / 0 |" in row and "reproduces" in row
    assert "not measured yet" in retrieval_row(tmp_path / "missing.json")


def test_the_motion_prior_claim_pairs_conditions_by_prompt_and_sample(tmp_path):
    import json

    from bench.claims import motion_rows

    def sample(ok: bool) -> dict:
        return {"motion_ok": ok}

    rows = [
        {
            "motion": "zigzag",
            "samples": {
                "base": [sample(False), sample(False)],
                "random": [sample(i == 0), sample(False)],
                "retrieved": [sample(True), sample(i < 3)],
            },
        }
        for i in range(5)
    ]
    path = tmp_path / "rows.json"
    path.write_text(json.dumps({"rows": rows, "meta": {"weights_hash": "abc"}}))
    retrieved_vs_random, retrieved_vs_base, random_vs_base = motion_rows([path])
    assert "random -> retrieved" in retrieved_vs_random and "0.100 -> 0.800" in retrieved_vs_random
    assert "| 10 (5 x 2) | 7 / 0 |" in retrieved_vs_random and "`abc`" in retrieved_vs_random
    assert "| 8 / 0 |" in retrieved_vs_base and "reproduces" in retrieved_vs_base
    assert "| 1 / 0 |" in random_vs_base and "not shown" in random_vs_base
    assert "not measured yet" in motion_rows([])[0]


def test_the_claims_block_is_rewritten_between_its_markers_only(tmp_path):
    from bench.claims import BEGIN, END, write_block

    out = tmp_path / "claims.md"
    write_block(out, f"{BEGIN}\nold table\n{END}")
    assert out.read_text().startswith("# The papers' claims") and "old table" in out.read_text()
    out.write_text(f"# mine\n\nintro\n\n{BEGIN}\nold table\n{END}\n\n## discussion\n")
    write_block(out, f"{BEGIN}\nnew table\n{END}")
    assert out.read_text() == f"# mine\n\nintro\n\n{BEGIN}\nnew table\n{END}\n\n## discussion\n"
