"""The hub's root modes, with a real system account made for the test (``useradd``, a password
set with ``chpasswd``, removed with ``userdel -r`` afterwards):

- ``--authenticator pam``: the account's system password logs in through the hub's form (PAM
  via pamela); a wrong one, and the right one for a name the hub does not list, do not.
- ``--spawner system``: the account's server runs with its uid (``/proc/<pid>/status``) and its
  kernel in its home directory (``os.getcwd()`` in the kernel), as that user.

Skipped, with the reason, unless the tests run as root with pamela installed.

- ``trusted_proxies`` (``--trusted-proxy``): behind a TLS-terminating proxy the login cookie is
  ``Secure`` when that proxy says ``X-Forwarded-Proto: https``, and the login rate limit counts
  the client's address it forwards; from an address not trusted both headers are ignored.
"""

from __future__ import annotations

import os
import pwd
import re
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

import pytest
import tornado.ioloop

from nbserver.hub.app import HubServer
from tests.hub.hubapp_harness import login, settings, token_for
from tests.hub.realhub import Browser
from tests.services.kernels.wsclient import KernelSocket, stream_text

try:
    import pamela  # type: ignore[import-untyped]  # noqa: F401

    HAVE_PAMELA = True
except ImportError:
    HAVE_PAMELA = False

needs_root = pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() != 0,
    reason="needs root (useradd, a server run as another uid)",
)
needs_pamela = pytest.mark.skipif(not HAVE_PAMELA, reason="pip install pamela (the pam authenticator)")


@pytest.fixture
def account() -> Iterator[tuple[str, str]]:
    """A fresh system account with a home directory and a password: (name, password)."""
    name = "nbhub" + secrets.token_hex(3)
    password = "Pw-" + secrets.token_urlsafe(12)
    subprocess.run(["useradd", "--create-home", "--shell", "/bin/sh", name], check=True, timeout=60)
    try:
        subprocess.run(["chpasswd"], input=f"{name}:{password}\n", text=True, check=True, timeout=60)
        yield name, password
    finally:
        subprocess.run(["pkill", "-KILL", "-u", name], check=False, timeout=60)
        subprocess.run(["userdel", "--remove", name], check=False, timeout=60, capture_output=True)


def _blocking_dirs(path: Path, uid: int, gid: int) -> list[Path]:
    """The directories above ``path`` that an account (not owner, not in the group) cannot
    traverse."""
    found = []
    for parent in reversed(path.parents):
        st = parent.stat()
        if st.st_uid != uid and st.st_gid != gid and not st.st_mode & 0o001:
            found.append(parent)
    return found


@pytest.fixture
def interpreter_reachable(account: tuple[str, str]) -> Iterator[None]:
    """The server runs ``sys.executable`` as the account. Where the interpreter lives under a
    directory others may not traverse (pyenv under ``/root``, mode 0700), that directory gets
    the others' traverse bit (``o+x``, no listing) for the test, and its mode back after."""
    entry = pwd.getpwnam(account[0])
    blocking = _blocking_dirs(Path(sys.executable), entry.pw_uid, entry.pw_gid)
    modes = {d: d.stat().st_mode & 0o7777 for d in blocking}
    try:
        for directory, mode in modes.items():
            directory.chmod(mode | 0o001)
        yield
    finally:
        for directory, mode in modes.items():
            directory.chmod(mode)


@pytest.fixture
def hub(io_loop: tornado.ioloop.IOLoop, tmp_path: Path, account: tuple[str, str]) -> Iterator[HubServer]:
    # extra_env=(): the tests' JUPYTER_DATA_DIR is root's; the account uses its own home
    server = HubServer(settings(tmp_path, spawner="system", authenticator="pam", extra_env=()))
    io_loop.run_sync(server.start)
    server.hub.store.add_user(account[0], admin=False, password_hash=None)
    yield server

    async def stop() -> None:
        s = await server.hub.servers.stop(account[0])
        if s is not None:
            await s.stopped.wait()
        await server.stop()

    io_loop.run_sync(stop, timeout=60)


async def _post_login(browser: Browser, name: str, password: str) -> int:
    page = await browser.follow("/hub/login")
    match = re.search(rb'name="_xsrf" value="([^"]+)"', page.body)
    assert match, page.body[:300]
    form = urlencode({"username": name, "password": password, "_xsrf": match.group(1).decode()})
    posted = await browser.fetch(
        "/hub/login",
        "POST",
        body=form.encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    return posted.code


@needs_root
@needs_pamela
async def test_pam_logs_in_a_system_account_with_its_system_password(
    hub: HubServer, account: tuple[str, str]
) -> None:
    """Bad inputs: the wrong password, an empty one, and a system account the hub does not list
    (root, whatever its password): none logs in."""
    name, password = account
    base = f"http://127.0.0.1:{hub.port}/"
    browser = Browser(base)
    try:
        assert await _post_login(browser, name, password + "x") != 302
        assert await _post_login(browser, name, "") != 302
        assert await _post_login(browser, "root", password) != 302
        page = await login(browser, name, "/hub/home", password=password)
        assert page.code == 200 and page.effective_url.endswith("/hub/home"), browser.trail
        assert name.encode() in page.body
    finally:
        browser.close()


@needs_root
@needs_pamela  # the hub of these tests logs in with pam
async def test_system_spawner_runs_the_server_and_kernel_as_the_account_in_its_home(
    interpreter_reachable: None, hub: HubServer, account: tuple[str, str]
) -> None:
    name, _ = account
    entry = pwd.getpwnam(name)
    server = await hub.hub.servers.start(name)
    assert await hub.hub.servers.wait_ready(server, 90), (
        server.events,
        hub.hub.spawner.log_path(name).read_text()[-2000:],
    )
    status = Path(f"/proc/{server.pid}/status").read_text()
    uids = re.search(r"^Uid:\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)", status, re.MULTILINE)
    gids = re.search(r"^Gid:\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)", status, re.MULTILINE)
    assert uids and set(uids.groups()) == {str(entry.pw_uid)}, status
    assert gids and set(gids.groups()) == {str(entry.pw_gid)}, status
    assert os.readlink(f"/proc/{server.pid}/cwd") == entry.pw_dir

    token = token_for(hub, name)
    from tests.hub.hubapp_harness import HubClient

    client = HubClient(hub)
    try:
        r = await client.request("POST", f"/user/{name}/api/kernels", token=token, json={"name": "python3"})
        assert r.status == 201, (r.status, r.body)
        kernel = r.json["id"]
    finally:
        client.close()
    ws = await KernelSocket.connect(f"ws://127.0.0.1:{hub.port}/user/{name}/", kernel, token)
    try:
        outputs, reply = await ws.run(
            "import os, getpass; print(os.getcwd(), os.getuid(), getpass.getuser())"
        )
        assert reply.content["status"] == "ok"
        assert stream_text(outputs) == f"{entry.pw_dir} {entry.pw_uid} {name}\n"
    finally:
        ws.close()


async def _login_response(hub: HubServer, headers: dict[str, str]) -> tuple[int, list[str]]:
    """POST alice's right password to the login form with ``headers`` added: (status, Set-Cookie
    headers of the login cookie)."""
    from tests.hub.hubapp_harness import PASSWORDS, HubClient

    client = HubClient(hub)
    try:
        page = await client.request("GET", "/hub/login", headers=headers)
        match = re.search(rb'name="_xsrf" value="([^"]+)"', page.body)
        assert match, page.body[:300]
        xsrf = match.group(1).decode()
        cookie = "; ".join(c.split(";")[0] for c in page.headers.get_list("Set-Cookie"))
        form = urlencode({"username": "alice", "password": PASSWORDS["alice"], "_xsrf": xsrf})
        r = await client.request(
            "POST",
            "/hub/login",
            body=form.encode(),
            headers={**headers, "Cookie": cookie, "Content-Type": "application/x-www-form-urlencoded"},
        )
        login_cookies = [c for c in r.headers.get_list("Set-Cookie") if c.startswith("jupyterhub-hub-login=")]
        return r.status, login_cookies
    finally:
        client.close()


def _proxy_hub(
    io_loop: tornado.ioloop.IOLoop, tmp_path: Path, trusted: tuple[str, ...]
) -> Iterator[HubServer]:
    from tests.hub.hubapp_harness import add_users

    server = HubServer(settings(tmp_path, trusted_proxies=trusted, login_attempts=2))
    io_loop.run_sync(server.start)
    add_users(server, "alice")
    yield server
    io_loop.run_sync(server.stop, timeout=60)


@pytest.fixture
def behind_proxy(io_loop: tornado.ioloop.IOLoop, tmp_path: Path) -> Iterator[HubServer]:
    yield from _proxy_hub(io_loop, tmp_path, ("127.0.0.1",))


@pytest.fixture
def not_behind_proxy(io_loop: tornado.ioloop.IOLoop, tmp_path: Path) -> Iterator[HubServer]:
    yield from _proxy_hub(io_loop, tmp_path, ("10.9.9.9",))


async def test_trusted_tls_proxy_makes_the_login_cookie_secure(behind_proxy: HubServer) -> None:
    status, cookies = await _login_response(behind_proxy, {"X-Forwarded-Proto": "https"})
    assert status == 302 and len(cookies) == 1 and "secure" in cookies[0].lower(), cookies
    status, cookies = await _login_response(behind_proxy, {})
    assert status == 302 and len(cookies) == 1 and "secure" not in cookies[0].lower(), cookies


async def test_forwarded_proto_from_an_untrusted_address_is_ignored(not_behind_proxy: HubServer) -> None:
    """Bad input: ``X-Forwarded-Proto: https`` (and ``HTTPS, http``) from a client that is no
    trusted proxy: the cookie stays without Secure (the connection is plain http)."""
    for value in ("https", "HTTPS, http"):
        status, cookies = await _login_response(not_behind_proxy, {"X-Forwarded-Proto": value})
        assert status == 302 and len(cookies) == 1 and "secure" not in cookies[0].lower(), cookies


async def test_login_limit_counts_the_address_a_trusted_proxy_forwards(behind_proxy: HubServer) -> None:
    """Two failures from one forwarded client address lock that address (login_attempts=2), not
    the proxy: another client behind the same proxy still logs in."""
    from tests.hub.hubapp_harness import HubClient

    client = HubClient(behind_proxy)
    try:
        page = await client.request("GET", "/hub/login")
        match = re.search(rb'name="_xsrf" value="([^"]+)"', page.body)
        assert match
        cookie = "; ".join(c.split(";")[0] for c in page.headers.get_list("Set-Cookie"))

        async def attempt(name: str, password: str, address: str) -> int:
            form = urlencode({"username": name, "password": password, "_xsrf": match.group(1).decode()})
            headers = {
                "Cookie": cookie,
                "Content-Type": "application/x-www-form-urlencoded",
                "X-Forwarded-For": f"203.0.113.77, {address}",  # the first hop is the client's claim
            }
            r = await client.request("POST", "/hub/login", body=form.encode(), headers=headers)
            return r.status

        assert await attempt("nobody1", "x", "192.0.2.1") == 403
        assert await attempt("nobody2", "x", "192.0.2.1") == 403
        assert await attempt("nobody3", "x", "192.0.2.1") == 429
        assert await attempt("alice", "wrong", "192.0.2.2") == 403  # another client: not locked
    finally:
        client.close()
