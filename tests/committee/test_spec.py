from __future__ import annotations

import pytest

from preflab.audit.audit_pairs import audit
from preflab.committee.spec import (
    CommitteeError,
    load_committee,
    parse_committee,
    preset_names,
)


def write(tmp_path, text: str):
    path = tmp_path / "c.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(("body", "message"), [
    ('[[member]]\nname = "a"\nkind = "oracle"\nmodel = "minilm-l6"\n', "unknown kind 'oracle'"),
    ('[[member]]\nname = "a"\nkind = "seq-rm"\n',
     "member 1 ('a'): missing required key 'model' for kind seq-rm"),
    ('[[member]]\nname = "ok"\nkind = "seq-rm"\nmodel = "minilm-l6"\n'
     '[[member]]\nname = "rm"\nmodel = "minilm-l6"\n',
     "c.toml, member 2 ('rm'): missing required key 'kind' (one of seq-rm, causal-rm, "),
    ('[[member]]\nkind = "seq-rm"\nmodel = "minilm-l6"\n', "member 1: missing required key 'name'"),
    ('[[member]]\nname = "a"\nkind = "judge"\nmodel = "minilm-l6"\nmax_length = "long"\n',
     "member 1 ('a'): 'max_length' must be a positive whole number, got 'long'"),
    ('member = [1]\n', "member 1: expected a [[member]] table, got 1"),
    ('[[member]]\nname = "a"\nkind = "seq-rm"\nmodel = "./no/such/model"\n',
     "not found: not a preset"),
    ('[[member]]\nname = "a"\nkind = "crossfit"\nmodel = "minilm-l6"\n'
     '[[member]]\nname = "a"\nkind = "crossfit"\nmodel = "minilm-l6"\n', "duplicate member name"),
    ('[[member]]\nname = "a"\nkind = "judge"\nmodel = "minilm-l6"\ntemperature = 1\n',
     "unknown key(s) ['temperature']"),
    ('name = "x"\n', "at least one [[member]]"),
    ('[[member]\nname = "a"', "not valid TOML"),
    ('[[member]]\nname = "a"\nkind = "ifd"\nmodel = "minilm-l6"\n', "at least one must vote"),
    ('[[member]]\nname = "a"\nkind = "seq-rm"\nmodel = "minilm-l6"\nvote = "yes"\n',
     "'vote' must be true or false"),
    ('[[member]]\nname = "a"\nkind = "http-rm"\nurl = "ftp://host"\n',
     "url 'ftp://host' is not an http(s) URL"),
    ('[[member]]\nname = "a"\nkind = "http-rm"\nurl = "http://h"\napi = "grpc"\n',
     "api must be one of pooling, classify, got 'grpc'"),
    ('[[member]]\nname = "a"\nkind = "http-rm"\nurl = "http://h"\ntimeout = 0\n',
     "'timeout' must be a positive number of seconds"),
    ('[[member]]\nname = "a"\nkind = "seq-rm"\nmodel = "org/m"\nclass = "Model"\n',
     "'class' must be 'module:Name', got 'Model'"),
    ('[[member]]\nname = "a"\nkind = "seq-rm"\nmodel = "org/m"\nparams = -1\n',
     "'params' must be a positive number, got -1"),
    ('[[member]]\nname = "a"\nkind = "causal-rm"\nmodel = "org/m"\nreward_output = "x"\n',
     "unknown key(s) ['reward_output'] for kind causal-rm"),
])
def test_bad_committee_is_rejected_before_any_model_loads(tmp_path, body: str,
                                                          message: str) -> None:
    path = write(tmp_path, body)
    with pytest.raises(CommitteeError, match=message.replace("[", r"\[").replace("(", r"\(")
                       .replace(")", r"\)")):
        load_committee(path)
    cache = tmp_path / "scores.sqlite"
    from preflab.engine import EngineOptions

    with pytest.raises(CommitteeError):
        audit("no-data-needed.jsonl", committee=path, out=tmp_path / "out",
              engine_options=EngineOptions(cache_path=cache))
    assert not cache.exists() and not (tmp_path / "out").exists()


def test_committee_without_kind_names_file_member_and_key(tmp_path) -> None:
    """As found: a member without `kind` said `unknown kind None`."""
    path = write(tmp_path, '[[member]]\nname = "rm"\nmodel = "minilm-l6"\n')
    with pytest.raises(CommitteeError) as e:
        load_committee(path)
    assert str(e.value) == (f"{path}, member 1 ('rm'): missing required key 'kind' (one of "
                            "seq-rm, causal-rm, judge, embed-rm, crossfit, python, ifd, "
                            "http-rm, scores)")
    assert "None" not in str(e.value)


def test_longest_text_a_committee_reads() -> None:
    assert load_committee("tiny").max_tokens() == 2048  # causal-rm and judge by default
    fast = parse_committee({"member": [
        {"name": "e", "kind": "embed-rm", "model": "tiny-bert", "max_length": 128},
        {"name": "f", "kind": "ifd", "model": "tiny-llama", "max_reply_tokens": 300},
        {"name": "p", "kind": "python", "function": "tests.helpers:length_reward"}]}, "x")
    assert fast.max_tokens() == 300
    only_python = parse_committee({"member": [
        {"name": "p", "kind": "python", "function": "tests.helpers:length_reward"}]}, "x")
    assert only_python.max_tokens() is None


def test_presets_parse() -> None:
    assert {"cpu", "gold", "tiny"} <= set(preset_names())
    assert len(load_committee("gold").members) == 8
    kinds = {m.kind for m in load_committee("cpu").members}
    assert {"crossfit", "judge"} <= kinds
