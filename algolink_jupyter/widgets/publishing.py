"""The publish pipeline behind the form (publish.py): export, verify, upload, build and start, or connect
the kernel in development mode. No widgets here: each step reports through the callbacks it is given
(``say`` for the log, ``step`` for the progress bar), and every failure is an exception whose
:func:`failure_sentence` says what to do. Its sentences are written with ``translation.tr``: the form
runs the pipeline in its own language (``translation.speaking``).
"""

from __future__ import annotations

import json
import threading
import time
import urllib.parse
from pathlib import Path
from typing import Any, Callable, Optional

from .. import kernel
from ..client import (
    HubClient,
    HubRequestError,
    dev_service_lines,
    multipart,
    pack_folder,
    register_dev,
    rights,
    service_path,
)
from ..errors import CLIError
from ..export import ExportError, VerifyError, export, verify_bundle
from ..translation import tr

Say = Callable[[str], Any]
Step = Callable[[int, str], Any]

#: The steps of a publish, as the progress bar counts them.
STEPS = ("export", "verification", "upload", "build", "start")


class Failed(Exception):
    """A failure whose message is already the sentence to show."""


def failure_sentence(error: BaseException, client: Optional[HubClient]) -> str:
    """Any failure of the work as one sentence that says what to do."""
    if isinstance(error, (Failed, kernel.ServingError)):
        return str(error)
    if isinstance(error, HubRequestError):
        where = client.url if client is not None else "the hub"
        then = tr("run %algolink publish again")
        if error.status == 401 and not (client is not None and client.token):
            return rights.not_signed_in_sentence(where, then)
        if rights.refuses_token(error.status, str(error)):
            return rights.refused_sentence(where, error, then)
        text = str(error).rstrip(".")
        return tr(
            "The hub refused the request ({status}): {reason}.", status=error.status, reason=text
        )
    if isinstance(error, ExportError):
        text = str(error)
        if getattr(error, "whole_sentence", False) or text.startswith("Verification failed"):
            return text
        return tr("The export failed: {reason}", reason=text[:1].lower() + text[1:])
    if isinstance(error, CLIError):
        return str(error)
    return tr(
        "Unexpected {error}; see the log below, fix what it names and press the button again.",
        error=type(error).__name__ + ": " + str(error),
    )


def new_version_label(project: str, name: str) -> str:
    """The words of the form's one-click button for a name that is taken."""
    return tr("Publish as a new version of {service}", service="/".join((project, name)))


def taken_sentence(project: str, name: str) -> str:
    """What the form says when the name typed for a new service is a service of that project."""
    return tr(
        'The name {name} is taken: {service} is already a service on the hub. Press "{button}" to '
        "publish this notebook as its next version, or type another name.",
        name=repr(name),
        service="/".join((project, name)),
        button=new_version_label(project, name),
    )


def export_bundle(
    folder: str,
    *,
    verify: bool,
    shell: Any,
    registry: Any,
    say: Say,
    step: Step,
) -> Path:
    """Export the kernel's commands to ``folder`` (and verify the bundle): the bundle's path."""
    step(0, "export")
    say(tr("Exporting the notebook to {folder}...", folder=folder))
    bundle = export(folder, False, shell=shell, registry=registry, say=say)
    if verify:
        step(1, "verification")
        try:
            verify_bundle(bundle.path, expected=registry.manifest(), out=say)
        except VerifyError as e:
            text = str(e)
            text = text[:1].lower() + text[1:]
            if "example(s) failed" in text:
                text = tr(
                    "{reason}: make the command answer the same outside the notebook (does it "
                    "read something the bundle lacks?), or record that example again.",
                    reason=text.rstrip("."),
                )
            failed = ExportError(tr("Verification failed: {reason}", reason=text))
            failed.whole_sentence = True  # type: ignore[attr-defined]
            raise failed from None
        step(2, "verified")
    else:
        step(1, "exported")
    return Path(bundle.path)


def ensure_place(client: HubClient, project: str, group: str, version: str, say: Say) -> None:
    """The project (of that version string) and the group, made on the hub when missing."""
    quoted = urllib.parse.quote(project)
    try:
        client.call("GET", f"/api/v1/projects/{quoted}")
    except HubRequestError as e:
        if e.status != 404:
            raise
        client.call(
            "POST", "/api/v1/projects", {"name": project, "type": "model", "version": version}
        )
        say(tr("Created project {project}.", project=project))
    try:
        client.call("GET", f"/api/v1/projects/{quoted}/groups/{urllib.parse.quote(group)}")
    except HubRequestError as e:
        if e.status != 404:
            raise
        client.call("POST", f"/api/v1/projects/{quoted}/groups", {"name": group})
        say(tr("Created group {group} in {project}.", group=group, project=project))


def upload(
    client: HubClient,
    bundle_path: Path,
    *,
    project: str,
    group: str,
    name: str,
    metadata: dict,
    images: list,
    existing: bool,
    say: Say,
) -> int:
    """Upload the bundle as a new service (version 1) or, ``existing``, as its next version: the
    version's number."""
    data = pack_folder(bundle_path)
    fields: dict = {"metadata": json.dumps(metadata)}
    files = [("bundle", f"{name}.tar.gz", data)]
    files += [("images", filename, content) for filename, content in images]
    path = service_path(project, name)
    say(
        tr(
            "Uploading the bundle ({size} KB) to {hub}...",
            size=round(len(data) / 1024),
            hub=client.url,
        )
    )
    if existing:
        body, content_type = multipart(fields, files)
        with client.open("POST", f"{path}/versions", body, content_type) as r:
            number = json.loads(r.read())["number"]
        say(
            tr(
                "Uploaded version {number} of {service}.",
                number=number,
                service="/".join((project, name)),
            )
        )
        return number
    fields.update({"name": name, "group": group})  # no port: the hub chooses its services' ports
    body, content_type = multipart(fields, files)
    quoted = urllib.parse.quote(project)
    try:
        with client.open("POST", f"/api/v1/projects/{quoted}/services", body, content_type):
            pass
    except HubRequestError as e:
        if e.status == 409 and "already has a service" in str(e):
            raise Failed(taken_sentence(project, name)) from None
        raise
    say(tr("Registered {service} (version 1).", service="/".join((project, name))))
    return 1


def build_and_start(
    client: HubClient,
    project: str,
    name: str,
    number: int,
    *,
    say: Say,
    step: Step,
    log_tail: Callable[[], str],
) -> tuple[dict, dict]:
    """Publish version ``number`` and follow its build and start: ``(service, version)`` once it is
    online, else :class:`Failed` with the reason and the log's last line (``log_tail`` gives the
    log shown so far)."""
    path = service_path(project, name)
    step(3, "build")
    client.call("POST", f"{path}/publish", {"version": number})
    stop = threading.Event()
    watcher = threading.Thread(target=_watch, args=(client, path, number, step, stop), daemon=True)
    watcher.start()
    try:
        for line in client.stream(f"{path}/versions/{number}/logs?follow=1&until=online"):
            say(line.decode("utf-8", "replace").rstrip("\n"))
        deadline = time.monotonic() + 30
        while True:
            service = client.call("GET", path)
            version = next(v for v in service["versions"] if v["number"] == number)
            if version["status"] in ("online", "failed", "offline"):
                break
            if time.monotonic() > deadline:
                break
            time.sleep(0.2)
    finally:
        stop.set()
        watcher.join(2)
    if version["status"] != "online":
        why = str(version.get("error") or service.get("message") or tr("no reason given"))
        # The hub's error is a sentence, often followed by the log's last lines.
        lines = [line.strip() for line in why.splitlines() if line.strip()]
        if len(lines) < 2:
            lines += [ln.strip() for ln in log_tail().splitlines() if ln.strip()][-1:]
        reason = lines[0].rstrip(".:").split("; its log ends with")[0]
        tail = repr(lines[-1][-200:]) if len(lines) > 1 else tr("nothing")
        raise Failed(
            tr(
                "The build or start of {service} version {number} failed ({reason}); the log "
                "ends with {tail}: fix what it names and press Publish again.",
                service="/".join((project, name)),
                number=number,
                reason=reason,
                tail=tail,
            )
        )
    return service, version


def _watch(client: HubClient, path: str, number: int, step: Step, stop: threading.Event) -> None:
    """Move the progress bar as the hub reports the version building, then starting."""
    last = None
    while not stop.is_set():
        try:
            service = client.call("GET", path)
            version = next(v for v in service["versions"] if v["number"] == number)
        except Exception:
            version = None
        status = version["status"] if version else None
        if status and status != last:
            last = status
            if status == "building":
                step(3, "build")
            elif status == "starting":
                step(4, "start")
        stop.wait(0.5)


def connect_kernel(
    client: HubClient, project: str, group: str, name: str, *, say: Say, step: Step
) -> dict:
    """Register this kernel's server (started first when it is not serving) with the hub in
    development mode as ``project/name``: the service's JSON."""
    step(0, "serving")

    def started(info: dict) -> None:
        say(tr("Started serving this kernel's model at {url}.", url=info["url"]))

    say(
        tr(
            "Connecting this kernel's model server to {hub} as {service}...",
            hub=client.url,
            service="/".join((project, name)),
        )
    )
    info = kernel.ensure_serving(on_start=started)
    try:
        service = register_dev(client, project, group, name, info["url"], info["token"], False, say)
    except HubRequestError as e:
        if e.status == 409:
            raise Failed(
                tr(
                    "The name {name} is taken: {service} on the hub is a published service (from "
                    "a bundle), not a development one, so type another name under Name and press "
                    "Connect (development) again.",
                    name=repr(name),
                    service="/".join((project, name)),
                )
            ) from None
        raise
    for line in dev_service_lines(client, service):
        say(line)
    step(2, "connected")
    return service
