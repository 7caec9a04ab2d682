"""The ``curl`` lines the publish form shows once a service answers: lines that run as given in a
terminal.

- The body is a real request: the command's first recorded example (``examples/<command>/NNN.json`` in
  the bundle, or the notebook's ``algolink_examples/`` for a development service) when there is one,
  else an input made up from the input types as the export makes up the examples it records (a real
  PNG for an image, a PNG of known labels for a segmentation). It is sent as JSON with ``-d '...'``, quoted for the shell; a body over
  :data:`INLINE_LIMIT` bytes is written to a file beside the bundle and sent with ``-d @PATH``.
- The token is read from ``$ALGOLINK_TOKEN`` (no header at all for a public service), and
  :func:`token_setup` gives the one line that sets it in a terminal without the token itself ever being
  shown: it reads the AlgoLink config file the form read it from, or else a private copy (mode 600) in
  Jupyter's runtime folder, where Jupyter keeps its own tokens and kernel keys.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import shlex
import sys
import zipfile
from pathlib import Path
from typing import Any, Optional

from modelcloud import data_types as dt

from .. import examples
from ..client import config_path, load_config
from ..errors import CLIError
from ..export.recording import NoExample, synthetic

#: What :func:`sample_input` gives for an input better left out.
OMIT: Any = object()

#: Bodies longer than this (in bytes) go to a file: ``-d @PATH``.
INLINE_LIMIT = 4096
TOKEN_HEADER = '-H "Authorization: token $ALGOLINK_TOKEN"'
_READ_CONFIG_TOKEN = 'import json, sys; print(json.load(open(sys.argv[1]))["token"])'


def sample_input(data_type: Any, name: str) -> Any:
    """A value ``data_type`` (a modelcloud type) accepts, made up as the export makes up the examples
    it records (a real PNG for an image), or :data:`OMIT` to leave the input out (a file or folder
    input that has a default)."""
    try:
        return synthetic(data_type, name)
    except NoExample:
        pass
    if data_type.has_default:
        return OMIT
    if isinstance(data_type, dt.directory):
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as archive:
            archive.writestr("example.txt", "example\n")
        return "data:application/zip;base64," + base64.b64encode(buf.getvalue()).decode()
    extension = (getattr(data_type, "extension", None) or [""])[0]
    return {"filename": f"example{extension}", "data": base64.b64encode(b"example").decode()}


def request_body(command: Any, recorded: list) -> dict:
    """The JSON body to show for ``command`` (a modelcloud ``Command``): the inputs of its first
    recorded example, else a sample of every input."""
    for example in recorded:
        if isinstance(example.get("inputs"), dict):
            return example["inputs"]
    body = {}
    for name, data_type in command.inputs.items():
        value = sample_input(data_type, name)
        if value is not OMIT:
            body[name] = value
    return body


def recorded_examples(command: str, directory: Optional[Path]) -> list:
    """The examples recorded for ``command`` under ``directory`` (none when it is None or unreadable)."""
    if directory is None:
        return []
    try:
        return examples.load(command, directory)
    except (OSError, ValueError):
        return []


def curl_line(
    url: str,
    command: str,
    body: dict,
    *,
    public: bool = False,
    body_dir: Optional[Path] = None,
) -> str:
    """One ``curl`` call of ``command`` at ``url`` (the service's API or serve URL) with ``body``; a
    body over :data:`INLINE_LIMIT` bytes is written to ``body_dir/<command>.json`` (absolute) and
    posted from there. ``public``: no Authorization header."""
    target = url.rstrip("/") + "/" + command
    text = json.dumps(body, ensure_ascii=False)
    parts = ["curl -sS"]
    if not public:
        parts.append(TOKEN_HEADER)
    parts.append("-H 'Content-Type: application/json'")
    if len(text.encode()) > INLINE_LIMIT and body_dir is not None:
        path = Path(body_dir).absolute() / f"{command}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        parts.append("-d " + shlex.quote(f"@{path}"))
    else:
        parts.append("-d " + shlex.quote(text))
    parts.append(shlex.quote(target))
    return " ".join(parts)


def command_lines(
    url: str,
    commands: list,
    *,
    examples_dir: Optional[Path],
    body_dir: Optional[Path],
    public: bool,
) -> list:
    """A ``curl`` line for each of ``commands`` (modelcloud ``Command`` objects)."""
    return [
        curl_line(
            url,
            c.name,
            request_body(c, recorded_examples(c.name, examples_dir)),
            public=public,
            body_dir=body_dir,
        )
        for c in commands
    ]


def token_file(hub_url: str) -> Path:
    """Where :func:`token_setup` keeps a private copy of the token for ``hub_url``."""
    from jupyter_core.paths import jupyter_runtime_dir

    digest = hashlib.sha256(hub_url.encode()).hexdigest()[:16]
    return Path(jupyter_runtime_dir()) / f"algolink-token-{digest}"


def token_setup(hub_url: str, token: Optional[str]) -> Optional[str]:
    """The line that sets ``ALGOLINK_TOKEN`` in a terminal to ``token``, never holding the token itself:
    it reads the AlgoLink config file when that is where the token came from, else a copy of it
    written now, readable by this user only, in Jupyter's runtime folder. None without a token."""
    if not token:
        return None
    try:
        from_config = load_config().get("token") == token
    except CLIError:
        from_config = False
    if from_config:
        path = config_path().absolute()
        read = shlex.join([sys.executable, "-c", _READ_CONFIG_TOKEN, str(path)])
        return f'export ALGOLINK_TOKEN="$({read})"'
    from jupyter_core.paths import secure_write

    path = token_file(hub_url)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    with secure_write(str(path)) as f:  # mode 600, as Jupyter writes its own secrets
        f.write(token)
    os.chmod(path, 0o600)
    return f'export ALGOLINK_TOKEN="$(cat {shlex.quote(str(path))})"'
