"""The profile reference is generated from the schema; it must not be stale."""

from __future__ import annotations

from dciot.profiles_doc import render_profiles_readme
from device_profiles.schema import PROFILES_ROOT


def test_profiles_readme_is_up_to_date() -> None:
    current = (PROFILES_ROOT / "README.md").read_text(encoding="utf-8")
    assert current == render_profiles_readme(), "run `dciot profiles doc` and commit the result"
