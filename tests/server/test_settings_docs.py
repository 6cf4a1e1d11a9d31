"""Every setting is in docs/configuration.md with its environment variable."""

from pathlib import Path

from server.settings import Settings

DOC = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


def test_every_setting_is_documented() -> None:
    text = DOC.read_text(encoding="utf-8")
    missing = [name for name in Settings.model_fields
               if f"| `{name}` | `COMFYGEN_{name.upper()}` |" not in text]
    assert missing == []
