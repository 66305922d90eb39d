"""Local paths are never looked up on the hub; hub ids fail fast and clearly offline."""

from __future__ import annotations

import pytest

from preflab import read_pairs
from preflab.data.containers import is_hub_id, kind_of
from preflab.errors import SourceError

LOCAL = ["dir/file.jsonl", "./nothere.jsonl", "nothere.jsonl", "/abs/x", "~/x", "a/b/c",
         "a\\b", "owner/data.parquet", "owner/data.csv.gz", ".hidden/name", "plain"]
HUB = ["Anthropic/hh-rlhf", "allenai/tulu-2.5-preference-data", "owner/name_v2"]


@pytest.mark.parametrize("path", LOCAL)
def test_a_missing_local_path_is_no_such_file(path: str) -> None:
    assert not is_hub_id(path)
    with pytest.raises(FileNotFoundError) as e:
        kind_of(path)
    assert str(e.value) == f"no such file: {path}"


@pytest.mark.parametrize("name", HUB)
def test_owner_name_ids_go_to_the_hub(name: str) -> None:
    assert is_hub_id(name) and kind_of(name) == "hub"


def test_an_existing_path_shaped_like_an_id_is_local(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "owner").mkdir()
    (tmp_path / "owner" / "name").write_text("")
    with pytest.raises(ValueError, match="unknown file type"):
        kind_of("owner/name")


def test_a_hub_failure_is_one_line(monkeypatch) -> None:
    """The real offline check runs in a fresh process (tests/cli/test_hardening.py):
    `datasets` reads HF_HUB_OFFLINE when imported."""
    import datasets

    def unreachable(*args: object, **kwargs: object) -> None:
        raise ConnectionError("Couldn't reach 'o/n' on the Hub (OfflineModeIsEnabled)\nmore")

    monkeypatch.setattr(datasets, "load_dataset", unreachable)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(SourceError) as e:
        read_pairs("o/n")
    assert str(e.value) == ("o/n: no such local file, not in the local cache, and the hub is "
                            "unreachable: offline mode (HF_HUB_OFFLINE is set)")
