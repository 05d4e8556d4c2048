"""The UI's settings: ``frame_ancestors``, ``cookie_samesite`` and ``custom_dir``, from the config
dataclass and from the command line."""

from __future__ import annotations

from pathlib import Path

import pytest

from nbserver import ConfigError, ServerConfig
from nbserver.cli import _parser, build_config


def config(tmp_path: Path, **changes: object) -> ServerConfig:
    return ServerConfig(root_dir=tmp_path, token="t", **changes)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "origin",
    [
        "https://app.example",
        "http://127.0.0.1:8000",
        "https://*.example.org",
        "http://[::1]:9000",
        "https://a.b:*",
    ],
)
def test_frame_ancestors_accepts_origins(tmp_path: Path, origin: str) -> None:
    assert config(tmp_path, frame_ancestors=[origin]).frame_ancestors == (origin,)


@pytest.mark.parametrize(
    "origin",
    [
        "*",
        "'self'",
        "app.example",
        "https://app.example/path",
        "https://a.example; script-src *",  # no way to smuggle a directive into the header
        "https://a.example https://b.example",
        "https://a.example\r\nSet-Cookie: x=1",
    ],
)
def test_frame_ancestors_refuses_anything_else(tmp_path: Path, origin: str) -> None:
    with pytest.raises(ConfigError, match="frame_ancestors"):
        config(tmp_path, frame_ancestors=(origin,))


def test_cookie_samesite_values(tmp_path: Path) -> None:
    assert config(tmp_path).cookie_samesite == "Lax"
    assert config(tmp_path, cookie_samesite="none").cookie_samesite == "None"
    assert config(tmp_path, cookie_samesite="Strict").cookie_samesite == "Strict"
    with pytest.raises(ConfigError, match="cookie_samesite"):
        config(tmp_path, cookie_samesite="Sometimes")


def test_custom_dir_is_a_path(tmp_path: Path) -> None:
    assert config(tmp_path).custom_dir is None
    assert config(tmp_path, custom_dir=str(tmp_path)).custom_dir == tmp_path


def test_command_line_options(tmp_path: Path) -> None:
    empty = tmp_path / "empty.json"
    empty.write_text("{}")
    argv = [
        *("--config", str(empty), "--root-dir", str(tmp_path)),
        *("--frame-ancestors", "https://a.example", "--frame-ancestors", "https://b.example"),
        *("--cookie-samesite", "none"),
    ]
    built = build_config(_parser().parse_args(argv), {})
    assert built.frame_ancestors == ("https://a.example", "https://b.example")
    assert built.cookie_samesite == "None"


def test_config_file_sets_the_ui_settings(tmp_path: Path) -> None:
    file = tmp_path / "nbserver.toml"
    file.write_text(
        f'root_dir = "{tmp_path}"\ncustom_dir = "{tmp_path / "custom"}"\n'
        'frame_ancestors = ["https://a.example"]\ncookie_samesite = "Strict"\n'
    )
    built = build_config(_parser().parse_args(["--config", str(file)]), {})
    assert built.custom_dir == tmp_path / "custom"
    assert built.frame_ancestors == ("https://a.example",)
    assert built.cookie_samesite == "Strict"
