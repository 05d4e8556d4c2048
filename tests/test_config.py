"""ServerConfig validation: every bad value is a ConfigError naming the field."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nbserver import ConfigError, ServerConfig
from nbserver.config import normalize_base_url


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"port": 70000}, "port"),
        ({"port": -1}, "port"),
        ({"port_retries": -1}, "port_retries"),
        ({"max_body_size": 0}, "max_body_size"),
        ({"log_level": "LOUD"}, "log_level"),
        ({"password_hash": "hunter2"}, "password_hash"),
        ({"allow_origin": ("evil.example",)}, "allow_origin"),
        ({"base_url": "/a/../b"}, "base_url"),
        ({"base_url": "/a b"}, "base_url"),
        ({"cookie_max_age_days": 0}, "cookie_max_age_days"),
        ({"event_loop": "trio"}, "event_loop"),
    ],
)
def test_bad_values_are_refused(tmp_path, changes, message) -> None:
    with pytest.raises(ConfigError, match=message):
        ServerConfig(root_dir=tmp_path, **changes)


def test_root_dir_must_exist(tmp_path) -> None:
    with pytest.raises(ConfigError, match="root_dir"):
        ServerConfig(root_dir=tmp_path / "missing")


def test_defaults_are_safe(tmp_path) -> None:
    config = ServerConfig(root_dir=tmp_path)
    assert config.ip == "127.0.0.1"
    assert len(config.token) == 48 and config.auth_enabled
    assert ServerConfig(root_dir=tmp_path).token != config.token
    assert "token" not in repr(config) or config.token not in repr(config)
    assert not config.allow_hidden


def test_root_dir_is_resolved(tmp_path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    assert ServerConfig(root_dir=tmp_path / "link").root_dir == (tmp_path / "real").resolve()


@given(st.lists(st.text(alphabet="abcXYZ09_-", min_size=1, max_size=5), max_size=4))
def test_base_url_normalisation(parts: list[str]) -> None:
    for raw in ("/".join(parts), "/" + "/".join(parts) + "/", "//" + "//".join(parts)):
        url = normalize_base_url(raw)
        assert url.startswith("/") and url.endswith("/") and "//" not in url
        assert [p for p in url.split("/") if p] == parts
