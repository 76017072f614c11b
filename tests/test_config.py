"""Settings: one source of defaults (the `Settings` class), documented once in README.md's table."""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from pathlib import Path

import pytest
from autobots.config import Settings

ROOT = Path(__file__).resolve().parents[1]
FIELDS = set(Settings.model_fields)


def readme_table_keys() -> list[str]:
    """The keys named in the first column of README.md's configuration table, once per mention."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n## Configuration\n", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    assert rows, "README.md's configuration section has no table"
    return [key for row in rows for key in re.findall(r"`([^`]+)`", row.split("|")[1])]


class TestReadmeTable:
    def test_every_field_is_documented_once(self) -> None:
        counts = Counter(readme_table_keys())
        assert sorted(FIELDS - set(counts)) == [], "settings missing from README.md's configuration table"
        assert sorted(key for key, count in counts.items() if count > 1) == [], "keys documented more than once"

    def test_every_documented_key_is_a_field(self) -> None:
        assert sorted(set(readme_table_keys()) - FIELDS) == []


@pytest.fixture
def no_settings_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings from the caller's environment must not change what these tests see."""
    for name in list(os.environ):
        if name.startswith("AUTOBOTS_"):
            monkeypatch.delenv(name)


class TestConfigFile:
    def test_local_config_json_is_never_committed(self) -> None:
        assert "/config.json" in (ROOT / ".gitignore").read_text(encoding="utf-8").splitlines()

    def test_example_names_real_settings_with_valid_values(self) -> None:
        example = json.loads((ROOT / "config.example.json").read_text(encoding="utf-8"))
        assert sorted(set(example) - FIELDS) == []
        Settings(**example)

    @pytest.mark.usefixtures("no_settings_env")
    def test_file_changes_only_the_keys_it_names(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        path = tmp_path / "settings.json"
        path.write_text(json.dumps({"port": 9000, "run_max_messages": 7}), encoding="utf-8")
        monkeypatch.setenv("AUTOBOTS_CONFIG", str(path))
        monkeypatch.setenv("AUTOBOTS_RUN_MAX_MESSAGES", "9")
        settings = Settings()
        assert (settings.port, settings.run_max_messages) == (9000, 9)
        assert settings.model_dump(exclude={"port", "run_max_messages"}) == Settings.model_construct().model_dump(
            exclude={"port", "run_max_messages"})

    @pytest.mark.usefixtures("no_settings_env")
    def test_missing_file_means_defaults(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("AUTOBOTS_CONFIG", str(tmp_path / "absent.json"))
        assert Settings().model_dump() == Settings.model_construct().model_dump()


def test_the_startup_description_masks_the_database_password() -> None:
    settings = Settings(database_url="postgresql://autobots:s3cret-pw@db.internal:5432/autobots")
    described = settings.describe()
    assert described["database_url"] == "postgresql://autobots:***@db.internal:5432/autobots"
    assert "s3cret-pw" not in str(described)
