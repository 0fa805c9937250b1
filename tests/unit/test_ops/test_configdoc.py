"""The documented environment variables and the settings classes stay in step."""

from __future__ import annotations

from ops.configdoc import DOC_PATH, SETTINGS, _load, render


def test_configuration_doc_is_up_to_date() -> None:
    assert DOC_PATH.read_text() == render(), "run `./nx config-doc` and commit docs/configuration.md"


def test_every_settings_class_is_importable_and_documented() -> None:
    text = DOC_PATH.read_text()
    for _title, ref in SETTINGS:
        cls = _load(ref)
        assert cls is not None, f"{ref} is listed but cannot be imported"
        for name in cls.model_fields:
            assert f"`NXEM_{name.upper()}`" in text
