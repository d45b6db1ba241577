"""The configuration reference is generated from `Settings`; the committed copy must be current."""

from __future__ import annotations

from exosuit.cli.config_reference import REFERENCE, env_names, render
from exosuit.settings import Settings


def test_committed_configuration_reference_is_what_settings_generate() -> None:
    committed = REFERENCE.read_text(encoding="utf-8") if REFERENCE.exists() else ""
    assert committed == render(), "docs/configuration.md is stale: run `make docs` and commit it"


def test_every_setting_has_a_description() -> None:
    missing = [name for name, field in Settings.model_fields.items() if not field.description]
    assert not missing, f"settings without Field(description=...): {missing}"


def test_reference_names_every_environment_variable_a_setting_reads() -> None:
    reference = render()
    fields = Settings.model_fields
    assert env_names("temporal_address", fields["temporal_address"]) == [
        "TEMPORAL_ADDRESS",
        "EXOSUIT_TEMPORAL_ADDRESS",
    ]
    for name, field in fields.items():
        for env in env_names(name, field):
            assert f"`{env}`" in reference
