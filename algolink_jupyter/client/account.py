"""``algolink login``, ``logout`` and ``whoami``: a user's token for the CLI and the notebook.

``login`` asks the hub for a token of the user (``POST /api/v1/tokens`` with the user's name and
password) and keeps it, with the hub's URL, in the user's config file (mode 600), where the other
commands, the notebook's publish form and the JupyterLab sidebar find it.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import socket
import sys
from typing import Any

from ..errors import CLIError
from .core import DEFAULT_URL, HubClient, config_path, hub_settings, load_config


def save_config(config: dict) -> None:
    """Write the user's config file with mode 600 (it holds a token), replacing it whole."""
    path = config_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(path.name + ".tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(config, f, indent=2)
        f.write("\n")
    os.replace(temp, path)


def read_password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    elif not sys.stdin.isatty():
        raise CLIError(
            "No terminal to ask the password on: pipe it in with --password-stdin, e.g. "
            '`echo "$PASSWORD" | algolink login --user NAME --password-stdin`.'
        )
    else:
        password = getpass.getpass(f"Password for {args.user}: ")
    if not password:
        raise CLIError("The password is empty: give the password of your AlgoLink account.")
    return password


def cmd_login(args: argparse.Namespace) -> int:
    url = args.hub or hub_settings()[0] or DEFAULT_URL
    user = args.user or os.environ.get("ALGOLINK_USER") or getpass.getuser()
    args.user = user
    password = read_password(args)
    client = HubClient(url, token="")
    name = args.token_name or f"cli-{socket.gethostname()}"[:64]
    name = "".join(c if c.isalnum() or c in "_-" else "-" for c in name) or "cli"
    body: dict[str, Any] = {"name": name, "user": user, "password": password}
    if args.days:
        body["expires_in"] = args.days * 86400
    made = client.call("POST", "/api/v1/tokens", body)
    save_config({**load_config(), "hub_url": client.url, "token": made["token"]})
    if os.environ.get("ALGOLINK_TOKEN"):
        print(
            "Note: ALGOLINK_TOKEN is set in this shell and wins over the config file: unset it to "
            "use this login."
        )
    print(f"Signed in to {client.url} as {user}; the token {name} is kept in {config_path()}.")
    return 0


def cmd_logout(args: argparse.Namespace) -> int:
    config = load_config()
    token = config.get("token")
    if not token:
        print(f"No token in {config_path()}: nothing to sign out.")
        return 0
    client = HubClient(config.get("hub_url"), token=str(token))
    try:
        me = client.call("GET", "/api/v1/user")
        if me.get("token"):
            client.call("DELETE", f"/api/v1/tokens/{me['token']['id']}")
    except CLIError as e:
        print(f"The hub did not revoke the token ({e}); it is removed here anyway.")
    config.pop("token", None)
    save_config(config)
    print(f"Signed out: the token is revoked and removed from {config_path()}.")
    return 0


def cmd_whoami(args: argparse.Namespace) -> int:
    client = HubClient()
    me = client.call("GET", "/api/v1/user")
    line = f"{me['name']} on {client.url}"
    if me.get("admin"):
        line += " (hub admin)"
    print(line)
    if me.get("token"):
        tok = me["token"]
        limit = tok.get("service") or tok.get("project") or "everything you may"
        print(f"token {tok['name']}: scopes {', '.join(tok['scopes'])}; limited to {limit}")
    for project, role in sorted(me.get("projects", {}).items()):
        print(f"  {role:<9} {project}")
    return 0


def add_account_commands(sub: Any) -> None:
    login = sub.add_parser(
        "login",
        help="sign in to a hub and keep a token for the CLI and the notebook",
        description="Ask the hub for a token of your account (your password is asked, or read "
        f"with --password-stdin) and keep it with the hub's URL in {config_path()} (mode 600).",
    )
    login.add_argument("--hub", metavar="URL", help=f"the hub's URL (default: {DEFAULT_URL})")
    login.add_argument("--user", help="your user name (default: $ALGOLINK_USER, else your login)")
    login.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    login.add_argument("--token-name", help="the token's name (default: cli-<hostname>)")
    login.add_argument("--days", type=int, help="the token expires after this many days")
    login.set_defaults(func=cmd_login)
    logout = sub.add_parser(
        "logout", help="revoke the kept token and remove it from the config file"
    )
    logout.set_defaults(func=cmd_logout)
    whoami = sub.add_parser("whoami", help="who the hub takes you for, and your projects' roles")
    whoami.set_defaults(func=cmd_whoami)
