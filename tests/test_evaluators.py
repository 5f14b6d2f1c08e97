"""The evaluator library as a specification: what each type scores, what it refuses at submit time, and
that a failing evaluator becomes the item's error score instead of an exception.

Pure unit tests (no Jupyter server); the LLM judge talks to the real scripted OpenAI-compatible server
through the real OpenAI client.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from pydantic import ValidationError

from agiflow_lab.evals.evaluators import (
    DEFAULT_RUBRIC,
    Case,
    JudgeBinding,
    Score,
    build_evaluator,
    check_unique_names,
    describe,
)
from agiflow_lab.evals.evaluators.specs import EvaluatorSpecAdapter
from agiflow_lab.evals.evaluators.text import shown
from agiflow_lab.providers.openai_compat import OpenAICompatibleClient
from tests.support.scripted_llm import ScriptedLLM


def case(output: str, expected: Any = None, input: dict[str, Any] | None = None, **metadata: Any) -> Case:
    return Case(output=output, expected=expected, input=input or {}, metadata=metadata)


async def score(spec: dict[str, Any], output: str, expected: Any = None, *, judge: JudgeBinding | None = None,
                input: dict[str, Any] | None = None, **metadata: Any) -> Score:  # fmt: skip
    evaluator = build_evaluator(EvaluatorSpecAdapter.validate_python(spec), judge=judge)
    return await evaluator.score(case(output, expected, input, **metadata))


def errored(result: Score, *mentions: str) -> None:
    assert (result.score, result.passed) == (None, None), result
    assert result.error is not None and result.explanation, result
    for text in mentions:
        assert text in result.error, result


# --- specs -------------------------------------------------------------------------------------------------


def test_each_type_validates_with_a_sensible_default_threshold() -> None:
    minimal = {
        "exact_match": {}, "contains": {}, "regex": {"pattern": "x"}, "json_valid": {},
        "json_schema": {"schema": {"type": "object"}}, "numeric": {}, "levenshtein": {},
        "llm_judge": {"connection": "openai", "prompt": "rubric"}, "python": {"code": "def evaluate(*a):\n  return 1"},
    }  # fmt: skip
    thresholds = {kind: EvaluatorSpecAdapter.validate_python({"type": kind, **opts}).threshold
                  for kind, opts in minimal.items()}  # fmt: skip
    assert thresholds == {"exact_match": 1.0, "contains": 1.0, "regex": 1.0, "json_valid": 1.0, "json_schema": 1.0,
                          "numeric": 1.0, "levenshtein": 0.8, "llm_judge": 0.5, "python": 0.5}  # fmt: skip
    assert EvaluatorSpecAdapter.validate_python({"type": "regex"}).evaluator_name == "regex"
    assert EvaluatorSpecAdapter.validate_python({"type": "regex", "name": "has-digit"}).evaluator_name == "has-digit"


@pytest.mark.parametrize(
    ("spec", "field", "mentions"),
    [
        ({"type": "regex", "pattern": "("}, "pattern", "not a valid regular expression"),
        ({"type": "regex", "pattern": "a", "flags": ["x"]}, "flags", ""),
        ({"type": "json_schema", "schema": {"type": "nope"}}, "schema", "not a valid JSON Schema"),
        ({"type": "json_schema", "schema": {"properties": {"a": {"minimum": "1"}}}}, "schema", "minimum"),
        ({"type": "python", "code": "def evaluate(:\n  pass"}, "code", "does not compile"),
        ({"type": "python", "code": "def score(o, e, i, m):\n  return 1"}, "function", "'evaluate'"),
        ({"type": "python", "code": "def evaluate(o, e, i, m):\n  return 1", "function": "go"}, "function", "'go'"),
        ({"type": "python", "code": "def evaluate(*a): return 1", "timeout_seconds": 0}, "timeout_seconds", ""),
        ({"type": "exact_match", "threshold": 1.5}, "threshold", "less than or equal to 1"),
        ({"type": "levenshtein", "threshold": -0.1}, "threshold", "greater than or equal to 0"),
        (
            {"type": "llm_judge", "connection": "c", "prompt": "p", "label": "production", "version": 2},
            "version",
            "give label or version, not both",
        ),
        ({"type": "llm_judge", "connection": "c", "prompt": "p", "scale": 0}, "scale", ""),
        ({"type": "contains", "value": []}, "value", "at least one substring"),
        ({"type": "numeric", "tolerance": -1}, "tolerance", ""),
        ({"type": "exact_match", "ignore_case": True}, "ignore_case", "Extra inputs are not permitted"),
        ({"type": "no_such_type"}, "", "does not match any of the expected tags"),  # the union has no field
    ],
)
def test_invalid_options_fail_validation_naming_the_field(spec: dict[str, Any], field: str, mentions: str) -> None:
    with pytest.raises(ValidationError) as caught:
        EvaluatorSpecAdapter.validate_python(spec)
    errors = caught.value.errors()
    assert not field or any(field in [str(part) for part in e["loc"]] for e in errors), errors
    assert mentions in str(caught.value)


def test_names_must_be_unique_within_a_run() -> None:
    specs = [EvaluatorSpecAdapter.validate_python(s) for s in ({"type": "exact_match"}, {"type": "contains"})]
    check_unique_names(specs)
    twice = [*specs, EvaluatorSpecAdapter.validate_python({"type": "exact_match"})]
    with pytest.raises(ValueError, match="'exact_match'.*defaults to the type"):
        check_unique_names(twice)
    named = [*specs, EvaluatorSpecAdapter.validate_python({"type": "regex", "pattern": "a", "name": "contains"})]
    with pytest.raises(ValueError, match="'contains'"):
        check_unique_names(named)


def test_a_spec_round_trips_through_its_json_form() -> None:
    spec = EvaluatorSpecAdapter.validate_python({"type": "json_schema", "schema": {"type": "array"}})
    dumped = spec.model_dump(mode="json")
    assert dumped["schema"] == {"type": "array"} and "json_schema" not in dumped
    assert EvaluatorSpecAdapter.validate_python(dumped) == spec


def test_describe_lists_every_type_with_its_options() -> None:
    listed = {d["type"]: d for d in describe()}
    assert set(listed) == {"exact_match", "contains", "regex", "json_valid", "json_schema", "numeric", "levenshtein",
                           "llm_judge", "python"}  # fmt: skip
    assert all(d["description"].endswith(".") for d in listed.values())
    assert {"pattern", "flags", "threshold", "name"} <= set(listed["regex"]["config_schema"]["properties"])
    assert "schema" in listed["json_schema"]["config_schema"]["properties"]


def test_a_judge_cannot_be_built_without_its_binding() -> None:
    spec = EvaluatorSpecAdapter.validate_python({"type": "llm_judge", "connection": "c", "prompt": "p"})
    with pytest.raises(ValueError, match="JudgeBinding"):
        build_evaluator(spec)


# --- exact_match, contains, regex --------------------------------------------------------------------------


async def test_exact_match_strips_and_respects_case_by_default() -> None:
    ok = await score({"type": "exact_match"}, "  Paris\n", "Paris")
    assert (ok.evaluator, ok.score, ok.passed, ok.error) == ("exact_match", 1.0, True, None)
    wrong = await score({"type": "exact_match", "name": "exact"}, "paris", "Paris")
    assert (wrong.evaluator, wrong.score, wrong.passed) == ("exact", 0.0, False)
    assert "“paris”" in wrong.explanation and "“Paris”" in wrong.explanation
    assert (await score({"type": "exact_match", "case_sensitive": False}, "PARIS", "Paris")).passed is True
    assert (await score({"type": "exact_match", "strip": False}, "Paris ", "Paris")).passed is False


async def test_exact_match_compares_a_non_string_expected_as_json_text() -> None:
    assert (await score({"type": "exact_match"}, "42", 42)).passed is True
    assert (await score({"type": "exact_match"}, "true", True)).passed is True
    assert (await score({"type": "exact_match"}, "True", True)).passed is False
    assert (await score({"type": "exact_match"}, '{"a": [1, "é"]}', {"a": [1, "é"]})).passed is True


async def test_an_item_without_expected_value_is_an_error_not_a_failure() -> None:
    for spec in ({"type": "exact_match"}, {"type": "contains"}, {"type": "levenshtein"}, {"type": "numeric"}):
        errored(await score(spec, "anything", None), "item has no expected value")


async def test_contains_scores_the_fraction_of_substrings_found() -> None:
    spec = {"type": "contains", "value": ["paris", "france", "europe"]}
    two = await score(spec, "Paris is in France.")
    assert two.score == pytest.approx(2 / 3) and two.passed is False
    assert "“europe”" in two.explanation
    assert (await score({**spec, "threshold": 0.6}, "Paris is in France.")).passed is True
    assert (await score({**spec, "case_sensitive": True}, "Paris is in France.")).score == 0.0


async def test_contains_any_mode_and_expected_as_the_default_value() -> None:
    spec = {"type": "contains", "mode": "any", "value": ["yes", "correct"]}
    assert (await score(spec, "That is CORRECT")).score == 1.0
    none = await score(spec, "no")
    assert none.score == 0.0 and "none of" in none.explanation
    assert (await score({"type": "contains"}, "The capital is Paris.", "paris")).passed is True
    assert (await score({"type": "contains"}, "Paris, France", ["Paris", "France"])).score == 1.0
    errored(await score({"type": "contains"}, "x", ""), "nothing to look for")


async def test_regex_searches_with_flags_or_uses_the_expected_value_as_the_pattern() -> None:
    assert (await score({"type": "regex", "pattern": r"\d{4}"}, "in 1969")).passed is True
    assert (await score({"type": "regex", "pattern": "^paris"}, "Paris")).passed is False
    assert (await score({"type": "regex", "pattern": "^paris$", "flags": ["i", "m"]}, "x\nParis\ny")).passed is True
    assert (await score({"type": "regex"}, "order #123", r"#\d+")).passed is True
    errored(await score({"type": "regex"}, "x", "("), "not a valid regular expression")
    errored(await score({"type": "regex"}, "x", 5), "no pattern")


# --- json_valid, json_schema -------------------------------------------------------------------------------


async def test_json_valid_accepts_one_fence_unless_told_not_to() -> None:
    assert (await score({"type": "json_valid"}, '{"a": 1}')).score == 1.0
    fenced = '```json\n{"a": 1}\n```'
    assert (await score({"type": "json_valid"}, fenced)).score == 1.0
    assert (await score({"type": "json_valid", "allow_fence": False}, fenced)).score == 0.0
    bad = await score({"type": "json_valid"}, "{'a': 1}")
    assert (bad.score, bad.passed, bad.error) == (0.0, False, None)  # the model's failure, not the evaluator's
    assert "not valid JSON" in bad.explanation and "line 1" in bad.explanation


async def test_json_schema_explains_the_first_error_with_its_path() -> None:
    schema = {
        "type": "object", "required": ["name", "age"],
        "properties": {"name": {"type": "string"}, "age": {"type": "integer", "minimum": 0},
                       "email": {"type": "string", "format": "email"}},
    }  # fmt: skip
    spec = {"type": "json_schema", "schema": schema}
    assert (await score(spec, '```json\n{"name": "Ada", "age": 36}\n```')).passed is True
    wrong = await score(spec, '{"name": "Ada", "age": -1}')
    assert (wrong.score, wrong.error) == (0.0, None)
    assert "$.age" in wrong.explanation and "minimum" in wrong.explanation
    assert "email" in (await score(spec, '{"name": "A", "age": 1, "email": "nope"}')).explanation
    not_json = await score(spec, "name: Ada")
    assert (not_json.score, not_json.error) == (0.0, None) and "not valid JSON" in not_json.explanation


# --- numeric, levenshtein ----------------------------------------------------------------------------------


async def test_numeric_finds_the_number_in_prose_with_thousands_separators() -> None:
    ok = await score({"type": "numeric"}, "The total is 1,234.5 dollars.", 1234.5)
    assert ok.passed is True and "1234.5" in ok.explanation
    assert (await score({"type": "numeric"}, "-7", "-7")).passed is True
    assert (await score({"type": "numeric"}, " 3e2 ", 300)).passed is True
    assert (await score({"type": "numeric"}, "1,5", 1)).passed is True  # a comma not in thousands ends the number


async def test_numeric_tolerances_and_explanations() -> None:
    off = await score({"type": "numeric"}, "10.5", 10)
    assert off.score == 0.0
    assert "10.5" in off.explanation and "10" in off.explanation and "difference 0.5" in off.explanation
    assert (await score({"type": "numeric", "tolerance": 0.5}, "10.5", 10)).passed is True
    assert (await score({"type": "numeric", "relative": 0.01}, "1011", 1000)).passed is False
    assert (await score({"type": "numeric", "relative": 0.01}, "1009", 1000)).passed is True
    none = await score({"type": "numeric"}, "I don't know", 3)
    assert (none.score, none.error) == (0.0, None) and "no number" in none.explanation
    errored(await score({"type": "numeric"}, "3", "three"), "not a number")
    errored(await score({"type": "numeric"}, "1", True), "not a number")


async def test_levenshtein_similarity_against_the_threshold() -> None:
    close = await score({"type": "levenshtein"}, "Hello", "hellO")
    assert close.score == 1.0  # case-insensitive by default
    four_of_five = await score({"type": "levenshtein"}, "abcdx", "abcde")
    assert four_of_five.score == pytest.approx(0.8) and four_of_five.passed is True  # exactly the default threshold
    assert (await score({"type": "levenshtein", "threshold": 0.9}, "abcdx", "abcde")).passed is False
    assert (await score({"type": "levenshtein", "case_sensitive": True}, "ABC", "abc")).score == 0.0


# --- python ------------------------------------------------------------------------------------------------


def python(code: str, **options: Any) -> dict[str, Any]:
    return {"type": "python", "code": code, **options}


async def test_python_functions_may_return_a_bool_a_number_or_a_dict() -> None:
    as_bool = python("def evaluate(output, expected, input, metadata):\n    return output == expected")
    assert (await score(as_bool, "a", "a")).score == 1.0
    as_number = python("def evaluate(output, expected, input, metadata):\n    return len(output) / 10")
    result = await score(as_number, "abc")
    assert (result.score, result.passed) == (pytest.approx(0.3), False)
    as_dict = python(
        "def evaluate(output, expected, input, metadata):\n"
        "    return {'score': 0.3, 'passed': True, 'explanation': f\"{input['q']} / {metadata['tag']}\"}"
    )
    result = await score(as_dict, "x", input={"q": "why"}, tag="t1")
    assert (result.score, result.passed, result.explanation) == (0.3, True, "why / t1")  # passed overrides threshold


async def test_async_python_functions_and_a_custom_function_name() -> None:
    code = "import asyncio\nasync def grade(output, expected, input, metadata):\n    await asyncio.sleep(0)\n    return 0.75"
    result = await score(python(code, function="grade"), "x")
    assert (result.score, result.passed) == (0.75, True)


async def test_python_failures_become_error_scores_with_the_line() -> None:
    raising = python("def evaluate(output, expected, input, metadata):\n    x = 1\n    raise ValueError('no good')\n")
    errored(await score(raising, "x"), "ValueError: no good", "line 3 in evaluate", "raise ValueError('no good')")
    errored(await score(python("def evaluate(*a):\n    return 1.5"), "x"), "outside [0, 1]")
    errored(await score(python("def evaluate(*a):\n    return 'yes'"), "x"), "returned str")
    errored(await score(python("def evaluate(*a):\n    return {'scor': 1}"), "x"), "unknown key(s) scor")
    errored(await score(python("def evaluate(*a):\n    return {'score': 1, 'passed': 'y'}"), "x"), "'passed'")
    errored(await score(python("def evaluate(o, e):\n    return 1"), "x"), "TypeError")
    own_timeout = python("def evaluate(*a):\n    raise TimeoutError('upstream slow')")
    errored(await score(own_timeout, "x"), "TimeoutError: upstream slow")


async def test_python_code_that_fails_to_load_fails_every_item() -> None:
    spec = EvaluatorSpecAdapter.validate_python(python("limit = 1 / 0\ndef evaluate(*a):\n    return 1"))
    evaluator = build_evaluator(spec)
    for _ in range(2):
        errored(await evaluator.score(case("x")), "loading the code failed", "ZeroDivisionError", "line 1")
    not_callable = python("evaluate = 3")
    errored(await score(not_callable, "x"), "does not define a function named 'evaluate'")


async def test_a_python_function_cannot_change_the_case_other_evaluators_see() -> None:
    spec = python("def evaluate(output, expected, input, metadata):\n    input['q'] = 'changed'\n    return True")
    item = case("x", "x", {"q": "original"})
    evaluator = build_evaluator(EvaluatorSpecAdapter.validate_python(spec))
    assert (await evaluator.score(item)).passed is True
    assert item.input == {"q": "original"}


async def test_a_slow_python_function_times_out_and_stuck_threads_stop_further_calls() -> None:
    spec = python("import time\ndef evaluate(*a):\n    time.sleep(3)\n    return 1", timeout_seconds=0.05)
    evaluator = build_evaluator(EvaluatorSpecAdapter.validate_python(spec))
    errored(await evaluator.score(case("a")), "timed out after 0.05 s")
    errored(await evaluator.score(case("b")), "timed out after 0.05 s")
    # Both threads are still sleeping (a thread cannot be killed): the third item is not handed another one.
    errored(await evaluator.score(case("c")), "not called: 2 earlier calls are still running")


async def test_cancelling_a_scoring_propagates_so_a_run_can_stop() -> None:
    spec = python("import asyncio\nasync def evaluate(*a):\n    await asyncio.sleep(60)\n    return 1")
    evaluator = build_evaluator(EvaluatorSpecAdapter.validate_python(spec))
    task = asyncio.create_task(evaluator.score(case("x")))
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


# --- llm_judge ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def llm() -> Iterator[ScriptedLLM]:
    with ScriptedLLM() as server:
        yield server


@pytest.fixture
async def client(llm: ScriptedLLM) -> AsyncIterator[OpenAICompatibleClient]:
    await llm.areset()
    judge_client = OpenAICompatibleClient(llm.openai_base_url, "sk-test", timeout=10)
    yield judge_client
    await judge_client.close()


def binding(client: OpenAICompatibleClient, template: Any = DEFAULT_RUBRIC) -> JudgeBinding:
    return JudgeBinding(complete=client.complete, model="judge-model", params={"temperature": 0},
                        prompt_type="text" if isinstance(template, str) else "chat", template=template)  # fmt: skip


JUDGE = {"type": "llm_judge", "connection": "judge", "prompt": "rubric", "version": 1}


async def test_the_judge_renders_the_default_rubric_and_parses_its_json_reply(
    llm: ScriptedLLM, client: OpenAICompatibleClient
) -> None:
    await llm.ascript(rules=[{"match": "The Eiffel Tower", "reply": '{"score": 0.9, "reasoning": "Correct city."}'}])
    result = await score(JUDGE, "The Eiffel Tower is in Paris.", "Paris", judge=binding(client),
                         input={"question": "Where is the Eiffel Tower?"})  # fmt: skip
    assert result == Score("llm_judge", 0.9, True, "Correct city.")
    [request] = await llm.arequests()
    assert request["model"] == "judge-model"
    assert '{"question": "Where is the Eiffel Tower?"}' in request["last_user"]
    assert "The reference answer is:\nParis" in request["last_user"]


async def test_the_judge_reads_fenced_or_embedded_json_on_its_scale(
    llm: ScriptedLLM, client: OpenAICompatibleClient
) -> None:
    await llm.ascript(rules=[
        {"match": "fenced", "reply": '```json\n{"score": 8, "reasoning": "mostly right"}\n```'},
        {"match": "chatty", "reply": 'Sure! Here it is: {"score": "4", "reasoning": "ok"} Hope that helps {.'},
    ])  # fmt: skip
    fenced = await score({**JUDGE, "scale": 10, "threshold": 0.7}, "fenced", "x", judge=binding(client))
    assert (fenced.score, fenced.passed, fenced.explanation) == (0.8, True, "mostly right")
    chatty = await score({**JUDGE, "scale": 5}, "chatty", "x", judge=binding(client))
    assert (chatty.score, chatty.passed, chatty.explanation) == (0.8, True, "ok")


async def test_a_chat_rubric_sees_input_keys_and_is_told_the_reply_format(
    llm: ScriptedLLM, client: OpenAICompatibleClient
) -> None:
    await llm.ascript(rules=[{"match": "Grade", "reply": '{"score": 2, "reasoning": "weak"}'}])
    rubric = [{"role": "system", "content": "You grade answers from 0 to 10."},
              {"role": "user", "content": "Grade the answer {{output}} to {{question}} (tag {{metadata}})"}]  # fmt: skip
    result = await score({**JUDGE, "scale": 10}, "42", None, judge=binding(client, rubric),
                         input={"question": "6 x 7?"}, tag="math")  # fmt: skip
    assert (result.score, result.passed, result.explanation) == (0.2, False, "weak")
    [request] = await llm.arequests()
    assert request["last_user"].startswith('Grade the answer 42 to 6 x 7? (tag {"tag": "math"})')
    assert '"score"' in request["last_user"] and "JSON" in request["last_user"]  # the format hint was added


async def test_judge_failures_become_error_scores(llm: ScriptedLLM, client: OpenAICompatibleClient) -> None:
    await llm.ascript(rules=[
        {"match": "garbage", "reply": "I think it is pretty good!"},
        {"match": "too-high", "reply": '{"score": 12, "reasoning": "great"}'},
        {"match": "no-score", "reply": '{"verdict": "pass"}'},
        {"match": "broken", "status": 500, "reply": "upstream exploded"},
    ])  # fmt: skip
    judge = binding(client)
    errored(await score(JUDGE, "garbage", "x", judge=judge), "no JSON object", "pretty good")
    errored(await score({**JUDGE, "scale": 10}, "too-high", "x", judge=judge), "outside [0, 1]")
    errored(await score(JUDGE, "no-score", "x", judge=judge), 'numeric "score"')
    errored(await score(JUDGE, "broken", "x", judge=judge), "judge call failed (HTTP 500)", "upstream exploded")


async def test_a_rubric_with_an_unknown_variable_is_an_error_without_a_call(
    llm: ScriptedLLM, client: OpenAICompatibleClient
) -> None:
    judge = binding(client, "Grade {{output}} for {{audience}}")
    errored(await score(JUDGE, "x", "y", judge=judge, input={"question": "q"}), "unknown variable(s): audience",
            "question")  # fmt: skip
    assert await llm.arequests() == []


async def test_a_quoted_value_keeps_its_line_breaks_for_a_reader() -> None:
    assert shown("two\nlines") == "“two\nlines”"  # a real line break, not a backslash and an n
