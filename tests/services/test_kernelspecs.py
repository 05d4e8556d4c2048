"""``/kernelspecs/{kernel_name}/{file}``: every file of a kernelspec's directory, nothing outside it.

A private kernelspec (on a private JUPYTER_PATH) holds ``kernel.json``, a logo, a nested file, a
symlink to a file inside, hidden files, and symlinks to a file and a directory outside the spec.

Bad paths tried: ``..`` (raw and as ``%2e%2e``, also via ``%2f``), absolute (``//etc/...`` and
``%2Fetc%2F...``), a symlink to a file outside, a path through a symlinked directory outside,
hidden files and directories, a directory, a trailing slash, a NUL byte, a missing file, an unknown
kernelspec.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

from tests.conftest import Client

SPEC = {
    "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
    "display_name": "Spec with files",
    "language": "python",
}


@pytest.fixture
def spec_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The kernelspec ``files`` on a private JUPYTER_PATH (python3 stays available)."""
    import ipykernel

    path = tmp_path / "jupyter-path"
    spec = path / "kernels" / "files"
    (spec / "sub").mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps(SPEC))
    shutil.copy(Path(ipykernel.__file__).parent / "resources" / "logo-64x64.png", spec)
    (spec / "sub" / "nested.js").write_text("// nested\n")
    (spec / "alias.png").symlink_to("logo-64x64.png")
    (spec / ".secret").write_text("SECRET-HIDDEN")
    (spec / ".hidden-dir").mkdir()
    (spec / ".hidden-dir" / "x.txt").write_text("SECRET-HIDDEN")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("SECRET-OUTSIDE")
    (spec / "link.txt").symlink_to(outside / "secret.txt")
    (spec / "linkdir").symlink_to(outside)
    monkeypatch.setenv("JUPYTER_PATH", str(path))
    return spec


async def test_kernel_json_is_a_resource(spec_dir: Path, client: Client) -> None:
    """jupyter_server serves it; it was a 404 ``"no such resource"``."""
    r = await client.get("kernelspecs/files/kernel.json")
    assert r.status == 200, r.text
    assert r.headers["Content-Type"] == "application/json"
    assert r.json == SPEC
    head = await client.request("HEAD", "kernelspecs/files/kernel.json")
    assert head.status == 200 and head.body == b""


async def test_python3_kernel_json_is_a_resource(client: Client) -> None:
    r = await client.get("kernelspecs/python3/kernel.json")
    assert r.status == 200 and r.json["language"] == "python"


@pytest.mark.parametrize(
    ("file", "content_type"),
    [("logo-64x64.png", "image/png"), ("alias.png", "image/png"), ("sub/nested.js", None)],
    ids=["logo", "symlink to a file inside", "nested file"],
)
async def test_files_of_the_spec_directory(spec_dir: Path, client: Client, file: str, content_type) -> None:
    r = await client.get(f"kernelspecs/files/{file}")
    assert r.status == 200, r.text
    assert r.body == (spec_dir / file).read_bytes()
    if content_type is not None:
        assert r.headers["Content-Type"] == content_type


async def test_the_model_still_lists_what_jupyter_server_lists(spec_dir: Path, client: Client) -> None:
    """Resources in the model stay logos, kernel.js and kernel.css (not kernel.json)."""
    r = await client.get("api/kernelspecs/files")
    assert r.json["resources"] == {"logo-64x64": "/kernelspecs/files/logo-64x64.png"}


@pytest.mark.parametrize(
    "file",
    [
        "../files/kernel.json",
        "%2e%2e/files/kernel.json",
        "%2E%2E%2F%2E%2E%2Foutside%2Fsecret.txt",
        "sub/../kernel.json",
        "../../outside/secret.txt",
        "/etc/hostname",
        "%2Fetc%2Fhostname",
        "link.txt",
        "linkdir/secret.txt",
        ".secret",
        ".hidden-dir/x.txt",
        "sub",
        "sub/",
        "kernel.json%00.png",
        "missing.png",
        "./kernel.json",
    ],
)
async def test_refusals_are_404_no_such_resource(spec_dir: Path, client: Client, file: str) -> None:
    r = await client.get(f"kernelspecs/files/{file}")
    assert r.status == 404, (file, r.status, r.body[:200])
    assert r.json["reason"] == "no such resource"
    assert b"SECRET" not in r.body and b"argv" not in r.body


async def test_unknown_kernelspec_is_404_with_a_short_message(client: Client) -> None:
    for path in ("kernelspecs/no-such-spec/kernel.json", "api/kernelspecs/no-such-spec"):
        r = await client.get(path)
        assert r.status == 404 and r.json["reason"] == "no such kernelspec", path
        assert r.json["short_message"] == "no-such-spec not found", path
