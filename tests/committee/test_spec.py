from __future__ import annotations

import pytest

from preflab.audit.audit_pairs import audit
from preflab.committee.spec import CommitteeError, load_committee, preset_names


def write(tmp_path, text: str):
    path = tmp_path / "c.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(("body", "message"), [
    ('[[member]]\nname = "a"\nkind = "oracle"\nmodel = "minilm-l6"\n', "unknown kind 'oracle'"),
    ('[[member]]\nname = "a"\nkind = "seq-rm"\n', "missing 'model'"),
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


def test_presets_parse() -> None:
    assert {"cpu", "gold", "tiny"} <= set(preset_names())
    assert len(load_committee("gold").members) == 8
    kinds = {m.kind for m in load_committee("cpu").members}
    assert {"crossfit", "judge"} <= kinds
