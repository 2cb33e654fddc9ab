"""The documentation lists what the code accepts: one settings table, no gaps."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from okta_pyramid import settings
from okta_pyramid.devissuer import config as devissuer_config

DOCS = Path(__file__).resolve().parent.parent / "docs"

# A table row whose first cell is a key in backticks: "| `okta.issuer` | ...".
_ROW = re.compile(r"^\|\s*`([a-z_]+\.[a-z_]+)`\s*\|", re.MULTILINE)


def documented_keys(prefix: str) -> list[str]:
    text = (DOCS / "settings.md").read_text(encoding="utf-8")
    return [key for key in _ROW.findall(text) if key.startswith(prefix)]


@pytest.mark.parametrize(
    ("prefix", "accepted"),
    [
        ("okta.", settings.SETTING_NAMES),
        ("devissuer.", devissuer_config.SETTING_NAMES),
    ],
)
def test_the_settings_table_lists_every_setting_once(prefix, accepted):
    keys = documented_keys(prefix)
    assert len(keys) == len(set(keys)), "a setting has two rows"
    assert set(keys) == set(accepted)


def test_every_doc_link_names_a_file_that_exists():
    link = re.compile(r"\]\(((?!https?:|#)[^)#\s]+)(?:#[^)]*)?\)")
    pages = [
        DOCS.parent / "README.md",
        DOCS.parent / "benchmarks" / "README.md",
        *DOCS.glob("*.md"),
    ]
    missing = [
        f"{page.name}: {target}"
        for page in pages
        for target in link.findall(page.read_text(encoding="utf-8"))
        if not (page.parent / target).exists()
    ]
    assert missing == []
