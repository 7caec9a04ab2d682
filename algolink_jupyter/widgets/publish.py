"""The publish form (``%algolink publish``): export the notebook as a bundle, verify it, register it on the
hub, build and start it, without leaving the notebook.

:func:`build_publish_form` takes the kernel's registry, the shell (for the export and the images it has
shown) and a :class:`~algolink_jupyter.client.HubClient` (None when no hub is configured), so tests
drive it through its traitlets and ``click()`` without a browser. The hub's URL and token come from the
environment or the user's AlgoLink config file and stay in the client: no widget holds the token, so a
saved notebook (widget state included) never contains it; the ``curl`` lines read ``$ALGOLINK_TOKEN``
and the line shown above them sets it in a terminal without showing it (:mod:`.curl`).

Versions stay versions: after a publish (or a Connect) the Project, Group and Service lists are filled
from the hub again with that service selected, so pressing Publish again publishes its next version.
A name typed under "new…" that is already a service of the project is said at once, with a button
"Publish as a new version of P/S"; and Publish asks the hub again (two quick requests) before it
exports, so a service made meanwhile is found before the export, not after it. The hub chooses its
services' ports: the form sends none.

The long work (export, verification, upload, build, start) runs in a background thread so the kernel
stays responsive; one progress bar goes through the five steps, the build log streams into the log box,
and every failure ends as one sentence in the form that says what to do.

**Connect (development)** exports nothing: it registers this kernel's own model server (started first
when it is not serving) with the hub in development mode under the project, group and name chosen in the
form, exactly as ``%algolink connect`` does, so the hub serves the live notebook model while the
kernel runs. The work itself (export, verify, upload, build, connect) is :mod:`.publishing`'s.
"""

from __future__ import annotations

import html
import re
import threading
import urllib.parse
from pathlib import Path
from typing import Any, Optional

import ipywidgets as widgets

from .. import names
from ..client import HubClient, HubRequestError, config_path, hub_settings, rights, service_page_url
from ..errors import CLIError
from ..examples import DEFAULT_DIR as EXAMPLES_DIR
from ..kernel import registry as kernel_registry
from ..markdown import render_markdown
from ..translation import N_, PROBLEM_MESSAGES, Translator, kernel_translator, speaking
from . import curl, gallery
from . import publishing as pipeline
from .publishing import STEPS, new_version_label, taken_sentence

LICENSES = ("MIT", "Apache-2.0", "BSD-3-Clause", "GPL-3.0", "proprietary", "other…")
NEW = "new…"
_LOG_LIMIT = 40_000
_ERROR_STYLE = "color: #b3261e; margin: 2px 0"
_NOTE_STYLE = "color: #1a73e8; margin: 2px 0"
_CODE_STYLE = "white-space: pre-wrap; word-break: break-all"  # a long line wraps in the form
_OK_BORDER = "2px solid #188038"
_DEV_BORDER = "2px dashed #1a73e8"
_NO_HUB = N_(
    "No hub is configured: set ALGOLINK_HUB_URL and ALGOLINK_TOKEN in the environment, or write "
    "{settings} to {config}, then run %algolink publish again."
)
#: The progress bar's step names (``publishing`` reports them in English; shown translated).
_STEP_NAMES = (
    N_("starting"),
    N_("export"),
    N_("verification"),
    N_("exported"),
    N_("verified"),
    N_("upload"),
    N_("build"),
    N_("start"),
    N_("online"),
    N_("serving"),
    N_("connected"),
)

_latest: Optional[PublishForm] = None


def latest() -> Optional[PublishForm]:
    """The form ``%algolink publish`` showed last in this kernel (for scripts and tests)."""
    return _latest


_KINDS = {"project": N_("project"), "group": N_("group"), "model": N_("service")}


def _problem_sentence(problem: Optional[names.Problem], tr: Optional[Translator]) -> Optional[str]:
    if problem is None:
        return None
    message = PROBLEM_MESSAGES.get(problem.key)
    if tr is None or tr.lang == "en" or message is None:
        return problem.message
    params = dict(problem.params)
    if "kind" in params:
        params["kind"] = tr(_KINDS.get(params["kind"], params["kind"]))
    return tr(message, **params)


def name_problem(kind: str, value: str, tr: Optional[Translator] = None) -> Optional[str]:
    """The sentence that says which rule a project, group or service name breaks, or None: the
    hub's own check (``algolink_jupyter.names``), so the form and the hub's 400s say the same (in
    ``tr``'s language)."""
    return _problem_sentence(names.name_problem(kind, value), tr)


def version_problem(value: str, tr: Optional[Translator] = None) -> Optional[str]:
    return _problem_sentence(names.version_problem(value), tr)


def _service_label(service: dict, tr: Translator) -> str:
    if service.get("mode") == "development":
        return tr("{name} (development)", name=service["name"])
    return str(service["name"])


def _choices(names: list, new_label: str) -> list:
    """Dropdown options: the names, then "new…" shown as ``new_label`` (its value stays NEW)."""
    if new_label == NEW:
        return [*names, NEW]
    return [*((n, n) for n in names), (new_label, NEW)]


def _esc(value: Any) -> str:
    return html.escape(str(value), quote=False)


def _error_html(text: str) -> str:
    return f'<div class="algolink-error" style="{_ERROR_STYLE}">{_esc(text)}</div>' if text else ""


def _links(text: str, tr: Optional[Translator] = None) -> tuple[list, Optional[str]]:
    """``Title | https://...`` lines as ``[{"title", "url"}]``, or the sentence of the bad line."""
    links = []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line:
            continue
        title, sep, url = line.rpartition("|") if "|" in line else ("", "", line)
        title, url = title.strip(), url.strip()
        if not re.match(r"^https?://\S+$", url):
            tr = tr or Translator("en")
            return [], tr(
                "Link line {number} ({line}) has no http(s) URL: write one link a line as "
                "Title | https://...",
                number=number,
                line=repr(line),
            )
        links.append({"title": title or url, "url": url})
    return links, None


class PublishForm(widgets.VBox):
    """The metadata, where it goes on the hub, and the Export / Verify / Publish buttons."""

    def __init__(
        self,
        registry: Any,
        client: Any,
        *,
        shell: Any = None,
        project: Optional[str] = None,
        group: Optional[str] = None,
        name: Optional[str] = None,
        bundle_dir: Optional[str] = None,
        no_hub_reason: str = "",
        tr: Optional[Translator] = None,
    ) -> None:
        #: The language of its texts: the kernel's (:func:`~algolink_jupyter.translation.kernel_language`).
        self.tr = tr = tr if tr is not None else kernel_translator()
        self.registry = registry
        self.client = client
        self.shell = shell
        self.state = "idle"  # idle, working, exported, verified, online, connected, failed
        self.message = ""
        self.api_url: Optional[str] = None
        self.bundle_path: Optional[Path] = None
        self._thread: Optional[threading.Thread] = None
        self.client_ok = False
        self._filling = False
        self._hub: dict = {}  # project -> {"groups": [...], "services": {name: service JSON}}
        self._conflict: Optional[tuple] = None  # (project, service) the typed name collides with
        self._dev_name = False  # the name is a development service's: Publish needs another
        self.hub_problem = ""  # why the hub could not be asked, when it could not
        #: Who the hub takes the token for (``GET /api/v1/user``) and what they may publish to
        #: (:func:`algolink_jupyter.client.rights.publish_rights`); None until the hub answered.
        self.me: Optional[dict] = None
        self.rights: Optional[dict] = None
        self.signed_in = ""  # "Signed in to <hub> as <display name> (<name>)."
        self.cannot_publish = ""  # why this user may publish nowhere, and what to ask for
        self._log_lock = threading.Lock()
        self._uploaded: Optional[tuple] = None  # (project, group, name) once a publish uploaded
        meta = dict(getattr(registry, "metadata", None) or {})
        style = {"description_width": "110px"}

        def text(desc: str, value: str = "", cls: str = "", **kw: Any) -> widgets.Text:
            # A layout of its own: hiding "New project" or marking the name must not touch the rest.
            layout = widgets.Layout(width="100%")
            w = widgets.Text(value=value, description=desc, style=style, layout=layout, **kw)
            w.add_class(f"algolink-publish-{cls}")
            return w

        # -- model card ----------------------------------------------------------------------------
        self.name = text(
            tr("Name"), str(name or meta.get("name") or ""), "name", continuous_update=True
        )
        self.name.placeholder = "my-model"
        rule = tr(
            "A name is {rule}, no spaces: it names the service and its URL.", rule=names.NAME_RULE
        )
        self.name_rule = widgets.HTML(f"<small>{_esc(rule)}</small>")
        self.name_error = widgets.HTML()
        self.name_error.add_class("algolink-publish-name-error")
        self.new_version_button = widgets.Button(
            description=tr("Publish as a new version"),
            icon="cloud-upload",
            button_style="primary",
            layout=widgets.Layout(width="auto", display="none"),
        )
        self.new_version_button.add_class("algolink-publish-new-version-button")
        self.new_version_button.on_click(lambda _b: self.publish_new_version())
        self.tagline = text(tr("Tagline"), str(meta.get("tagline") or ""), "tagline")
        self.description = widgets.Textarea(
            value=str(meta.get("description") or ""),
            description=tr("Description"),
            placeholder=tr("Markdown: what it does, how to call it, what it was trained on"),
            style=style,
            layout=widgets.Layout(width="100%", height="110px"),
            continuous_update=True,
        )
        self.description.add_class("algolink-publish-description")
        self.preview = widgets.HTML()
        self.preview.add_class("algolink-publish-preview")
        license_value = str(meta.get("license") or "MIT")
        self.license = widgets.Dropdown(
            options=list(LICENSES) if license_value in LICENSES else [*LICENSES, license_value],
            value=license_value,
            description=tr("License"),
            style=style,
        )
        self.license.add_class("algolink-publish-license")
        self.license_other = text(tr("Other license"), "", "license-other")
        self.performance = widgets.Textarea(
            value=str(meta.get("performance_notes") or ""),
            description=tr("Performance"),
            placeholder=tr("e.g. 12 ms per image on an A100, 80 ms on a laptop CPU"),
            style=style,
            layout=widgets.Layout(width="100%", height="50px"),
        )
        self.performance.add_class("algolink-publish-performance")
        self.links = widgets.Textarea(
            value="\n".join(
                f"{link.get('title', '')} | {link.get('url', '')}"
                for link in meta.get("links") or []
            ),
            description=tr("Links"),
            placeholder=tr("One a line: Paper | https://arxiv.org/abs/..."),
            style=style,
            layout=widgets.Layout(width="100%", height="50px"),
        )
        self.links.add_class("algolink-publish-links")
        self.gallery_box = widgets.HBox(layout=widgets.Layout(flex_flow="row wrap"))
        self.gallery_box.add_class("algolink-publish-gallery")
        self.gallery_picks: list = []  # (checkbox, bytes, format, label)
        self.refresh_images = widgets.Button(description=tr("Refresh images"))
        self.refresh_images.add_class("algolink-publish-refresh-images")
        self.refresh_images.on_click(lambda _b: self.load_images())
        self.upload = widgets.FileUpload(
            accept="image/png,image/jpeg,image/gif,image/webp",
            multiple=True,
            description=tr("Upload"),
        )
        self.upload.add_class("algolink-publish-upload")

        # -- where on the hub ----------------------------------------------------------------------
        self.project = widgets.Dropdown(
            options=_choices([], tr("new…")), value=NEW, description=tr("Project"), style=style
        )
        self.project.add_class("algolink-publish-project")
        self.new_project = text(tr("New project"), str(project or "notebooks"), "new-project")
        self.group = widgets.Dropdown(
            options=_choices([], tr("new…")), value=NEW, description=tr("Group"), style=style
        )
        self.group.add_class("algolink-publish-group")
        self.new_group = text(tr("New group"), str(group or "default"), "new-group")
        self.service = widgets.Dropdown(
            options=[(tr("new… (named as the model)"), NEW)],
            value=NEW,
            description=tr("Service"),
            style=style,
        )
        self.service.add_class("algolink-publish-service")
        self.version = text(tr("Version"), str(meta.get("version") or "1.0"), "version")
        self.where_error = widgets.HTML()
        self.where_error.add_class("algolink-publish-where-error")
        self.bundle_dir = text(tr("Bundle folder"), bundle_dir or "", "bundle-dir")
        self.bundle_dir.placeholder = tr("bundles/<name> beside the notebook")
        self.hub_line = widgets.HTML()

        # -- actions -------------------------------------------------------------------------------
        self.export_button = widgets.Button(description=tr("Export"), icon="download")
        self.verify_button = widgets.Button(description=tr("Verify"), icon="check")
        self.publish_button = widgets.Button(
            description=tr("Publish"), icon="cloud-upload", button_style="primary"
        )
        self.connect_button = widgets.Button(
            description=tr("Connect (development)"),
            icon="plug",
            tooltip=tr(
                "Let the hub serve this kernel's live model now, in development mode: "
                "nothing is exported or published."
            ),
            layout=widgets.Layout(width="auto"),
        )
        for b, cls in (
            (self.export_button, "export"),
            (self.verify_button, "verify"),
            (self.publish_button, "publish"),
            (self.connect_button, "connect"),
        ):
            b.add_class(f"algolink-publish-{cls}-button")
        self.export_button.on_click(lambda _b: self.start("export"))
        self.verify_button.on_click(lambda _b: self.start("verify"))
        self.publish_button.on_click(lambda _b: self.start("publish"))
        self.connect_button.on_click(lambda _b: self.start("connect"))
        note = tr(
            "Connect (development) lets the hub serve this kernel's live model "
            "under the project, group and name above, while the kernel runs: nothing is "
            "exported or published."
        )
        self.connect_note = widgets.HTML(f"<small>{_esc(note)}</small>")
        self.page_url: Optional[str] = None  # set by Connect (development)
        self.serve_url: Optional[str] = None
        self.progress = widgets.IntProgress(
            value=0, min=0, max=len(STEPS), description="", layout=widgets.Layout(width="60%")
        )
        self.progress.add_class("algolink-publish-progress")
        self.step = widgets.HTML()
        self.step.add_class("algolink-publish-step")
        self.status = widgets.HTML()
        self.status.add_class("algolink-publish-status")
        self.result = widgets.HTML()
        self.result.add_class("algolink-publish-result")
        self.log_box = widgets.Textarea(
            value="",
            placeholder=tr("The export, verification and build log appear here."),
            layout=widgets.Layout(width="100%", height="180px"),
        )
        self.log_box.add_class("algolink-publish-log")

        super().__init__(
            [
                widgets.HTML(
                    "<b>" + _esc(tr("Publish this notebook's model to the AlgoLink hub")) + "</b>"
                ),
                self.hub_line,
                self.name,
                self.name_rule,
                self.name_error,
                self.new_version_button,
                self.tagline,
                self.description,
                widgets.HTML(
                    "<small>" + _esc(tr("Preview, as the hub will show it:")) + "</small>"
                ),
                self.preview,
                self.license,
                self.license_other,
                self.performance,
                self.links,
                widgets.HTML(
                    "<small>"
                    + _esc(tr("Gallery: tick images this notebook has shown, or upload some."))
                    + "</small>"
                ),
                self.gallery_box,
                widgets.HBox([self.refresh_images, self.upload]),
                self.project,
                self.new_project,
                self.group,
                self.new_group,
                self.service,
                self.version,
                self.bundle_dir,
                self.where_error,
                widgets.HBox(
                    [
                        self.export_button,
                        self.verify_button,
                        self.publish_button,
                        self.connect_button,
                    ]
                ),
                self.connect_note,
                widgets.HBox([self.progress, self.step]),
                self.status,
                self.result,
                self.log_box,
            ],
            layout=widgets.Layout(padding="8px", border="1px solid #ddd"),
        )
        self.add_class("algolink-publish")

        self.name.observe(lambda _c: self._name_changed(), names="value")
        for w in (self.version, self.new_project, self.new_group, self.links):
            w.observe(lambda _c: self.check(), names="value")
        self.description.observe(lambda _c: self.render_preview(), names="value")
        self.license.observe(lambda _c: self._show_license_other(), names="value")
        self.project.observe(lambda _c: self._project_changed(), names="value")
        self.group.observe(lambda _c: self.check(), names="value")
        self.service.observe(lambda _c: self._service_changed(), names="value")

        self.render_preview()
        self._show_license_other()
        self.load_images()
        if client is None:
            self.hub_line.value = _error_html(no_hub_reason)
            self.message = no_hub_reason
        elif not self.refresh_hub(project, group, name):
            self.message = self.hub_problem
        self.check()

    # -- the hub's projects, groups and services ---------------------------------------------------
    def refresh_hub(
        self,
        project: Optional[str] = None,
        group: Optional[str] = None,
        name: Optional[str] = None,
    ) -> bool:
        """Ask the hub who is signed in and fill the lists with the projects they may publish to
        (developer, owner or hub admin; "new…" only when they may create projects), selecting
        ``project``, ``group`` and the service ``name`` when the hub has them (else "new…" with the
        names typed in); on failure say why in the form (:attr:`hub_problem`). True when the hub
        answered."""
        found = {}
        try:
            me = self.client.call("GET", "/api/v1/user")
            readable = "read" in (me.get("scopes") or [])
            projects = self.client.call("GET", "/api/v1/projects") if readable else []
            allowed = rights.publish_rights(me, projects)
            for p in projects:
                if p["name"] in allowed["projects"]:
                    found[p["name"]] = self._project_info(p["name"], p)
        except Exception as e:
            self._hub_failed(e)
            return False
        self.me, self.rights = me, allowed
        self._hub = found
        self._hub_answered()
        if project is None or (project not in self._hub and not allowed["create_projects"]):
            # No project named (or one this user may not publish to, nor make): the first one.
            project = sorted(self._hub)[0] if self._hub else project
        self._fill(project, group, name)
        return True

    def recheck(self) -> bool:
        """Ask the hub again about the project the form points at (two quick requests), keeping what
        is selected: a service made since the lists were filled is found before anything is
        exported. True when the hub answered."""
        project = self._project_name()
        service = self.service.value if self.service.value != NEW else None
        try:
            quoted = urllib.parse.quote(project)
            try:
                info = self._project_info(
                    project, self.client.call("GET", f"/api/v1/projects/{quoted}")
                )
            except HubRequestError as e:
                if e.status != 404:
                    raise
                info = None
        except Exception as e:
            self._hub_failed(e)
            return False
        if info is None:
            self._hub.pop(project, None)
        else:
            self._hub[project] = info
        self._hub_answered()
        self._fill(project, self._group_name(), service)
        return True

    def _project_info(self, project: str, model: dict) -> dict:
        services = self.client.call(
            "GET", f"/api/v1/projects/{urllib.parse.quote(project)}/services"
        )
        groups = [g if isinstance(g, str) else g["name"] for g in model.get("groups") or []]
        return {"groups": groups, "services": {s["name"]: s for s in services}}

    def _hub_failed(self, error: Exception) -> None:
        with speaking(self.tr.lang):
            self.hub_problem = pipeline.failure_sentence(error, self.client)
        self.hub_line.value = _error_html(self.hub_problem)
        self.client_ok = False

    def _hub_answered(self) -> None:
        """The hub answered: who is signed in (and the token's limits), and what they may do."""
        self.hub_problem = ""
        self.client_ok = True
        me, allowed = self.me or {}, self.rights or {}
        with speaking(self.tr.lang):
            self.signed_in = rights.signed_in_line(self.client.url, me)
            self.cannot_publish = rights.cannot_publish_sentence(me, allowed)
            token = rights.token_line(me)
            note = rights.viewer_note(allowed)
        signed = (
            "Signed in to {hub} as {user}, a hub admin."
            if me.get("admin")
            else "Signed in to {hub} as {user}."
        )
        signed = _esc(self.tr(signed, hub="\1", user="\2"))
        signed = signed.replace("\1", f"<code>{_esc(self.client.url)}</code>", 1)
        signed = signed.replace("\2", f"<b>{_esc(rights.who(me))}</b>", 1)
        lines = [f'<div class="algolink-publish-signed-in"><small>{signed}</small></div>']
        if token:
            lines.append(f'<div class="algolink-publish-token"><small>{_esc(token)}</small></div>')
        if self.cannot_publish:
            lines.append(
                f'<div class="algolink-publish-cannot" style="{_ERROR_STYLE}">'
                f"{_esc(self.cannot_publish)}</div>"
            )
        elif note:
            lines.append(
                f'<div class="algolink-publish-viewer-note" style="{_NOTE_STYLE}">'
                f"<small>{_esc(note)}</small></div>"
            )
        self.hub_line.value = "".join(lines)

    @property
    def may_publish(self) -> bool:
        """Whether Publish and Connect are offered: not when the hub said this user may publish
        nowhere (until the hub answers, the buttons stay, disabled)."""
        return self.rights is None or bool(self.rights["publish"])

    def _may_create(self) -> bool:
        return self.rights is None or bool(self.rights["create_projects"])

    def _fill(self, project: Optional[str], group: Optional[str], service: Optional[str]) -> None:
        """Set the three lists from :attr:`_hub` and select ``project``, ``group`` and ``service``
        (a name the hub has not got selects "new…" and is typed in the field below)."""
        create = self._may_create()
        if not self.may_publish or not (create or self._hub):
            self.check()  # nowhere to publish: the lists stay as they are, hidden
            return
        self._filling = True  # a new options list selects its first entry: not the user's choice
        try:
            if not create and project not in self._hub:
                project = sorted(self._hub)[0]
            new = [(self.tr("new…"), NEW)] if create else []
            if create and self.tr.lang == "en":
                self.project.options = [*sorted(self._hub), NEW]
            else:
                self.project.options = [*((p, p) for p in sorted(self._hub)), *new]
            self.project.value = project if project in self._hub else NEW
            if project and project not in self._hub:
                self.new_project.value = project
            info = self._hub.get(project) or {"groups": [], "services": {}}
            chosen = info["services"].get(service) if service else None
            if chosen is not None:
                group = chosen.get("group") or group
            self.group.options = _choices(info["groups"], self.tr("new…"))
            if group and group not in info["groups"]:
                self.group.value = NEW
                self.new_group.value = group
            else:
                self.group.value = group or (info["groups"] or [NEW])[0]
            self.service.options = [
                *((_service_label(s, self.tr), n) for n, s in sorted(info["services"].items())),
                (self.tr("new… (named as the model)"), NEW),
            ]
            self.service.value = service if chosen is not None else NEW
            if chosen is not None:
                self.name.value = chosen["name"]
        finally:
            self._filling = False
        self.check()

    def _project_changed(self) -> None:
        if self._filling:
            return
        name = self.name.value.strip()
        self._fill(self._project_name(), self._group_name(), name)  # its service of that name

    def _service_changed(self) -> None:
        if self._filling:
            return
        self._fill(self._project_name(), self._group_name(), self.service.value)

    def _name_changed(self) -> None:
        """A name typed that is not the selected service's means a new service ("new…")."""
        if not self._filling and self.service.value not in (NEW, self.name.value.strip()):
            self._filling = True
            try:
                self.service.value = NEW
            finally:
                self._filling = False
        self.check()

    def _show_license_other(self) -> None:
        self.license_other.layout.display = "" if self.license.value == "other…" else "none"

    # -- the model card ----------------------------------------------------------------------------
    def render_preview(self) -> None:
        body = render_markdown(self.description.value) or (
            "<i>" + _esc(self.tr("No description yet.")) + "</i>"
        )
        self.preview.value = (
            f'<div style="border-left: 3px solid #ccc; padding-left: 8px">{body}</div>'
        )

    def load_images(self) -> None:
        """Offer the images this kernel has shown (see :mod:`.gallery`), keeping the ticks."""
        ticked = {label for box, _c, _f, label in self.gallery_picks if box.value}
        self.gallery_picks = []
        cells = []
        for label, content, fmt in gallery.notebook_images(self.shell):
            box = widgets.Checkbox(value=label in ticked, description=label, indent=False)
            box.add_class("algolink-publish-gallery-pick")
            self.gallery_picks.append((box, content, fmt, label))
            thumb = widgets.Image(
                value=content, format=fmt, layout=widgets.Layout(max_width="96px")
            )
            cells.append(widgets.VBox([thumb, box], layout=widgets.Layout(margin="0 8px 4px 0")))
        if not cells:
            empty = _esc(self.tr("No images shown in this kernel yet."))
            cells = [widgets.HTML(f"<small><i>{empty}</i></small>")]
        self.gallery_box.children = tuple(cells)

    def images(self) -> list:
        """``(filename, bytes)`` of the ticked and uploaded gallery images, in that order."""
        out = []
        for i, (box, content, fmt, _label) in enumerate(self.gallery_picks):
            if box.value:
                out.append((f"notebook-{i + 1}.{'jpg' if fmt == 'jpeg' else fmt}", content))
        for upload in self.upload.value or ():
            out.append((upload.get("name") or "upload.png", bytes(upload["content"])))
        return out

    def metadata(self) -> dict:
        links, _ = _links(self.links.value)
        license_value = self.license.value
        if license_value == "other…":
            license_value = self.license_other.value.strip() or "other"
        meta = {
            "name": self.name.value.strip(),
            "tagline": self.tagline.value.strip(),
            "description": self.description.value,
            "license": license_value,
            "performance_notes": self.performance.value.strip(),
            "links": links,
            "version": self.version.value.strip(),
        }
        return {k: v for k, v in meta.items() if v not in ("", [])}

    # -- checks as the user types ------------------------------------------------------------------
    def problems(self) -> dict:
        """``{field: sentence}`` for every field that would stop a publish."""
        found = {}
        self._conflict = None
        self._dev_name = False
        name = self.name.value.strip()
        project = self._project_name()
        problem = name_problem("model", name, self.tr)
        there = (self._hub.get(project) or {"services": {}})["services"].get(name)
        if problem is None and there is not None and there.get("mode") == "development":
            problem = self.tr(
                "{service} is a development service (a kernel connected with Connect): it "
                "has no versions, so Publish needs a name of its own; type another name (Connect "
                "(development) connects this kernel to it again).",
                service="/".join((project, name)),
            )
            self._dev_name = True  # not a mistake: said as a note, not in red
        elif problem is None and there is not None and self.service.value == NEW:
            with speaking(self.tr.lang):
                problem = taken_sentence(project, name)
            self._conflict = (project, name)
        if problem:
            found["name"] = problem
        if self.project.value == NEW:
            problem = name_problem("project", self.new_project.value.strip(), self.tr)
            if problem is None and project in (self.rights or {}).get("viewer_of", ()):
                with speaking(self.tr.lang):
                    ask = rights.ask_owner()
                problem = self.tr(
                    "You are a viewer of {project}: publishing there needs the developer role; "
                    "{ask}, or name a new project of your own.",
                    project=project,
                    ask=ask,
                )
            if problem:
                found["project"] = problem
        if self.group.value == NEW:
            problem = name_problem("group", self.new_group.value.strip(), self.tr)
            if problem:
                found["group"] = problem
        problem = version_problem(self.version.value.strip(), self.tr)
        if problem:
            found["version"] = problem
        _, problem = _links(self.links.value, self.tr)
        if problem:
            found["links"] = problem
        return found

    def check(self) -> dict:
        found = self.problems()
        if self._dev_name:
            self.name_error.value = f'<div style="{_NOTE_STYLE}">{_esc(found["name"])}</div>'
        else:
            self.name_error.value = _error_html(found.get("name", ""))
        error = "name" in found and not self._dev_name
        self.name.layout.border = "2px solid #d93025" if error else None
        others = [v for k, v in found.items() if k != "name"]
        self.where_error.value = "".join(_error_html(ty) for ty in others)
        busy = self.state == "working"
        self.export_button.disabled = busy
        self.verify_button.disabled = busy
        self.publish_button.disabled = (
            busy or bool(found) or not getattr(self, "client_ok", False) or not self.may_publish
        )
        self.connect_button.disabled = busy or self.client is None or not self.may_publish
        # A user who may publish nowhere gets the sentence that says so (above), not buttons that
        # would be refused, nor lists of places they cannot publish to.
        offered = "" if self.may_publish else "none"
        self.publish_button.layout.display = self.connect_button.layout.display = offered
        self.connect_note.layout.display = offered
        for w in (self.project, self.group, self.service):
            w.layout.display = offered
        conflict = self._conflict
        self.new_version_button.layout.display = "" if conflict else "none"
        self.new_version_button.disabled = busy or not conflict
        if conflict:
            with speaking(self.tr.lang):
                self.new_version_button.description = new_version_label(*conflict)
        self.new_project.layout.display = (
            "" if self.project.value == NEW and not offered else "none"
        )
        self.new_group.layout.display = "" if self.group.value == NEW and not offered else "none"
        return found

    # -- the work ----------------------------------------------------------------------------------
    def say(self, text: str) -> None:
        """Append to the log box (thread-safe), keeping its last characters."""
        with self._log_lock:
            value = self.log_box.value + text + ("" if text.endswith("\n") else "\n")
            self.log_box.value = value[-_LOG_LIMIT:]

    def _set_step(self, index: int, label: str) -> None:
        self.progress.value = index
        self.step.value = f"<small>{_esc(self.tr(label))}</small>"

    def start(self, action: str) -> bool:
        """Run ``export``, ``verify``, ``publish`` or ``connect`` in the background; False when it
        cannot start."""
        if self.state == "working":
            return False
        if action in ("publish", "connect") and self.client is None:
            self._fail(self.message or self.tr("No hub is configured."))
            return False
        if action in ("publish", "connect") and not self.may_publish:
            self._fail(self.cannot_publish)
            return False
        if action == "publish" and not self.recheck():  # a name taken meanwhile: before the export
            self._fail(self.hub_problem)
            return False
        found = self.check()
        if action != "publish":  # only the rules: a name on the hub is reconnected, or exported
            found = self._name_problems()
        if found and (action in ("publish", "connect") or "name" in found):
            self._fail(next(iter(found.values())))
            return False
        self.state = "working"
        self.message = ""
        self.api_url = self.page_url = self.serve_url = None
        self._uploaded = None
        self.result.value = ""
        self.status.value = ""
        self.remove_class("algolink-publish-online")
        self.remove_class("algolink-publish-connected")
        self.remove_class("algolink-publish-failed")
        self.layout.border = "1px solid #ddd"
        self.progress.bar_style = "info"
        self.progress.max = {"export": 1, "verify": 2, "publish": len(STEPS), "connect": 2}[action]
        self._set_step(0, "starting")
        self.log_box.value = ""
        self.check()
        self._thread = threading.Thread(target=self._work, args=(action,), daemon=True)
        self._thread.start()
        return True

    def publish(self, timeout: float = 900) -> str:
        """What the Publish button does, waited for (for a notebook cell or a script): the final state."""
        self.start("publish")
        return self.wait(timeout)

    def wait(self, timeout: float = 600) -> str:
        """Block until the running action ends; its final state."""
        if self._thread is not None:
            self._thread.join(timeout)
        return self.state

    def publish_new_version(self) -> bool:
        """What the "Publish as a new version of P/S" button does: select the service the typed name
        is taken by, and publish the notebook as its next version. False when it cannot start."""
        if self._conflict is None or self.state == "working":
            return False
        project, name = self._conflict
        self._fill(project, None, name)
        return self.start("publish")

    def connect(self, timeout: float = 120) -> str:
        """What the Connect (development) button does, waited for: the final state."""
        self.start("connect")
        return self.wait(timeout)

    def _work(self, action: str) -> None:
        with speaking(self.tr.lang):  # the sentences of the pipeline, in this thread
            self._work_in_language(action)

    def _work_in_language(self, action: str) -> None:
        try:
            if action == "connect":
                self._connect()
                return
            self.bundle_path = pipeline.export_bundle(
                str(self._bundle_folder()),
                verify=action in ("verify", "publish"),
                shell=self.shell,
                registry=self.registry,
                say=self.say,
                step=self._set_step,
            )
            if action == "export":
                self._done("exported", self.tr("Exported to {path}.", path=self.bundle_path))
            elif action == "verify":
                self._done(
                    "verified", self.tr("Exported to {path} and verified.", path=self.bundle_path)
                )
            else:
                self._publish()
        except Exception as e:
            if action == "publish":
                self._lists_after_failure()  # while still "working": no second start meanwhile
            self._fail(pipeline.failure_sentence(e, self.client))
        finally:
            if self.state == "working":  # pragma: no cover - every path above settles
                self.state = "failed"
            self.check()

    def _bundle_folder(self) -> Path:
        return Path(self.bundle_dir.value.strip() or Path("bundles") / self.name.value.strip())

    def _project_name(self) -> str:
        return self.project.value if self.project.value != NEW else self.new_project.value.strip()

    def _group_name(self) -> str:
        return self.group.value if self.group.value != NEW else self.new_group.value.strip()

    def _publish(self) -> None:
        """Upload the exported bundle, then build and start it: green with the API and curl lines."""
        client = self.client
        project, group = self._project_name(), self._group_name()
        name = self.name.value.strip()
        self._set_step(2, "upload")
        assert self.bundle_path is not None
        pipeline.ensure_place(client, project, group, self.version.value.strip(), self.say)
        number = pipeline.upload(
            client,
            self.bundle_path,
            project=project,
            group=group,
            name=name,
            metadata=self.metadata(),
            images=self.images(),
            existing=self.service.value != NEW,
            say=self.say,
        )
        self._uploaded = (project, group, name)
        service, version = pipeline.build_and_start(
            client,
            project,
            name,
            number,
            say=self.say,
            step=self._set_step,
            log_tail=lambda: self.log_box.value,
        )
        self.api_url = service["urls"]["api"] or service["urls"]["serve"]
        public = bool(service.get("public"))
        try_it = self._try_it(
            self.api_url,
            list(self.registry.commands.values()),
            public,
            self.bundle_path / "examples",
        )
        self._refresh_lists(project, group, name)
        self._set_step(len(STEPS), "online")
        self._done(
            "online",
            self.tr(
                "{service} version {number} is online as {api_version}; "
                "press Publish again to publish its next version.",
                service="/".join((project, name)),
                number=number,
                api_version=version["api_version"],
            ),
            f'<div>API: <a href="{_esc(self.api_url)}" target="_blank">{_esc(self.api_url)}</a></div>'
            + try_it,
        )

    def _refresh_lists(self, project: str, group: str, name: str) -> None:
        """The lists from the hub again, with ``project/name`` selected: pressing Publish again
        publishes its next version, without running the cell again."""
        if not self.refresh_hub(project, group, name):
            self.say(
                self.tr(
                    "The lists could not be refreshed from the hub: {problem}",
                    problem=self.hub_problem,
                )
            )

    def _lists_after_failure(self) -> None:
        """After a failed publish: the service selected when it was uploaded (a failed build is fixed
        by its next version), else the hub asked again (a name taken meanwhile offers its button)."""
        try:
            if self._uploaded is not None:
                self._refresh_lists(*self._uploaded)
            else:
                self.recheck()
        except Exception as e:  # pragma: no cover - the sentence of the failure is already shown
            self.say(self.tr("The lists could not be refreshed from the hub: {problem}", problem=e))

    def _try_it(self, url: str, commands: list, public: bool, examples_dir: Path) -> str:
        """The "Try it" part of the result: a ``curl`` line per command that runs as given in a
        terminal, and (unless the service is public) the line that sets ``$ALGOLINK_TOKEN`` first."""
        if not commands:
            return ""
        folder = self._bundle_folder().absolute()
        lines = curl.command_lines(
            url,
            commands,
            examples_dir=examples_dir,
            body_dir=folder.with_name(folder.name + ".requests"),
            public=public,
        )
        out = []
        if public:
            public_note = _esc(self.tr("A public service: no token is needed."))
            out.append(f"<div><small>{public_note}</small></div>")
        else:
            try:
                setup = curl.token_setup(self.client.url, self.client.token)
            except OSError as e:
                setup = None
                self.say(
                    self.tr(
                        "Could not keep a copy of the token for the curl lines ({error}).", error=e
                    )
                )
            if setup:
                token_note = self.tr(
                    "In a terminal, set "
                    "ALGOLINK_TOKEN first with this line (it reads the token from the file it "
                    "names; the token itself is never shown here):"
                )
                out.append(
                    '<div class="algolink-publish-token-note"><small>'
                    f"{_esc(token_note)}</small></div>"
                    f'<div><code class="algolink-publish-token-line" style="{_CODE_STYLE}">'
                    f"{_esc(setup)}</code></div>"
                )
            else:
                first = self.tr("Set ALGOLINK_TOKEN in your terminal to a token of this hub first.")
                out.append(f"<div><small>{_esc(first)}</small></div>")
        curls = "<br>".join(
            f'<code class="algolink-publish-curl" style="{_CODE_STYLE}">{_esc(line)}</code>'
            for line in lines
        )
        out.append("<div>" + _esc(self.tr("Try it:")) + f"</div><div>{curls}</div>")
        return "".join(out)

    def _connect(self) -> None:
        """Register this kernel's server in development mode under the chosen project/group/name."""
        project, group = self._project_name(), self._group_name()
        name = self.name.value.strip()
        service = pipeline.connect_kernel(
            self.client, project, group, name, say=self.say, step=self._set_step
        )
        self.page_url = service_page_url(self.client, service)
        self.serve_url = service["urls"]["serve"]
        served = [c["name"] for c in (service.get("manifest") or {}).get("commands") or []]
        commands = [self.registry.commands[n] for n in served if n in self.registry.commands]
        try_it = self._try_it(
            self.serve_url, commands, bool(service.get("public")), Path(EXAMPLES_DIR)
        )
        self._refresh_lists(project, group, name)
        self._done(
            "connected",
            self.tr(
                "Connected {service} in development mode: the hub serves this kernel's live "
                "model while the kernel runs; nothing is published (to publish a version, type a "
                "name of its own and press Publish).",
                service="/".join((project, name)),
            ),
            '<div class="algolink-publish-dev-note">'
            + _esc(
                self.tr(
                    "Development mode: calls go to this notebook's kernel, so they stop when it "
                    "stops or restarts."
                )
            )
            + "</div><div>"
            + _esc(self.tr("Service page:"))
            + f' <a href="{_esc(self.page_url)}" target="_blank">{_esc(self.page_url)}</a></div>'
            + "<div>"
            + _esc(self.tr("Serve URL:"))
            + f" <code>{_esc(self.serve_url)}&lt;command&gt;</code></div>"
            + try_it,
        )

    def _name_problems(self) -> dict:
        """``{field: sentence}`` for a bad service, project or group name (what Connect needs)."""
        fields = {"name": ("model", self.name.value.strip())}
        if self.project.value == NEW:
            fields["project"] = ("project", self.new_project.value.strip())
        if self.group.value == NEW:
            fields["group"] = ("group", self.new_group.value.strip())
        found = {k: name_problem(kind, value, self.tr) for k, (kind, value) in fields.items()}
        return {k: v for k, v in found.items() if v}

    def _done(self, state: str, text: str, extra: str = "") -> None:
        self.state = state
        self.message = text
        self.progress.value = self.progress.max
        self.progress.bar_style = "success"
        color = "#188038" if state == "online" else "#1a73e8"
        self.status.value = f'<div style="color: {color}; font-weight: bold">{_esc(text)}</div>'
        self.result.value = extra
        if state == "online":
            self.add_class("algolink-publish-online")
            self.layout.border = _OK_BORDER
        elif state == "connected":
            self.add_class("algolink-publish-connected")
            self.layout.border = _DEV_BORDER

    def _fail(self, text: str) -> None:
        self.state = "failed"
        self.message = text
        self.progress.bar_style = "danger"
        self.status.value = _error_html(text)
        self.add_class("algolink-publish-failed")


#: The form is a pure function of its arguments: ``build_publish_form(registry, client, name=...)``
#: (``client`` None: no hub is configured, and ``no_hub_reason`` says so in the form).
build_publish_form = PublishForm


def for_kernel(
    shell: Any = None,
    project: Optional[str] = None,
    group: Optional[str] = None,
    name: Optional[str] = None,
    bundle_dir: Optional[str] = None,
) -> PublishForm:
    """The form for this kernel: its registry, and the hub from the environment or the user's config."""
    global _latest
    tr = kernel_translator()
    reason = ""
    client = None
    try:
        url, token, _where = hub_settings()
    except CLIError as e:
        url, token, reason = None, None, str(e)
    if url:
        client = HubClient(url, token or "")
    elif not reason:
        reason = tr(_NO_HUB, settings='{"hub_url": "...", "token": "..."}', config=config_path())
    _latest = build_publish_form(
        kernel_registry,
        client,
        shell=shell,
        project=project,
        group=group,
        name=name,
        bundle_dir=bundle_dir,
        no_hub_reason=reason,
        tr=tr,
    )
    return _latest
