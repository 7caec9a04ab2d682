"""The service page's actions after registration, and the tokens page.

- 上传新版本: a new version from a bundle upload or a folder on the hub's machine (the same code as
  ``POST .../versions``); publishing any version, an older one too, is ``PublishAction``.
- 编辑模型信息: the model card (tagline, Markdown description with a preview, license, performance
  notes, links, gallery images); the name is fixed. What is saved wins over the bundle's
  ``modelcloud.meta(...)`` and over metadata uploaded with a version.
- 令牌: list (name, first characters, created, last used, revoked), create (the secret is on the
  answer page only, never again) and revoke (its sessions end at once: the cookie names the token).
- 别名 (aliases): name a version, or remove the name.
- 删除 (delete): a version, a service, an empty group or a project, each with the same checks as the
  API; the form must carry ``confirm`` (the page's script asks first: a yes for a version or an alias,
  the name typed again for a service or a project), so a stray POST deletes nothing.

Every handler is a page handler: signed-in user, XSRF on POST, the page's language.
"""

from __future__ import annotations

from typing import Any, Optional
from urllib.parse import quote

from .. import access, orm
from ..apihandlers.common import APIError
from ..apihandlers.groups import GroupAPIHandler, rename_group
from ..apihandlers.models import current_version, effective_metadata
from ..apihandlers.projects import ProjectAPIHandler
from ..apihandlers.services import BundleReceiver, ServiceAPIHandler, check_keep_warm
from ..apihandlers.tokens import TokenListAPIHandler
from ..apihandlers.versions import AliasAPIHandler, VersionAPIHandler, VersionListAPIHandler
from ..publisher import store_image
from .pages import FormError, PageHandler, ServicePage, render_markdown

META_TEXT = ("tagline", "description", "license", "performance_notes")
ADMIN = "admin"


def service_path(project: str, name: str) -> str:
    return f"/projects/{quote(project, safe='')}/services/{quote(name, safe='')}"


def parse_links(text: str) -> list:
    """One link a line: a title, a space, then the URL (a bare URL is its own title)."""
    links = []
    for line in text.splitlines():
        title, _, url = line.strip().rpartition(" ")
        if url:
            links.append({"title": title.strip() or url, "url": url})
    return links


def links_text(links: Any) -> str:
    lines = []
    for link in links or []:
        if isinstance(link, dict) and link.get("url"):
            title = link.get("title") or ""
            lines.append(f"{title} {link['url']}".strip() if title != link["url"] else link["url"])
        elif isinstance(link, str):
            lines.append(link)
    return "\n".join(lines)


class VersionUploadAction(PageHandler, VersionListAPIHandler):
    """上传新版本: the service's next version, by upload or folder path; refusals on the page."""

    def get(self, project_name: str, name: str) -> None:  # type: ignore[override]
        self.redirect(service_path(project_name, name))

    async def post(self, project_name: str, name: str) -> None:  # type: ignore[override]
        try:
            await VersionListAPIHandler.post(self, project_name, name)
        except APIError as e:
            self.db.rollback()
            self.set_status(400)
            ServicePage.get(self, project_name, name, error=self.error_text(e))  # type: ignore[arg-type]

    def write_json(self, body: Any, status: int = 200) -> None:
        project, name = self.path_args[0], self.path_args[1]
        self.redirect(service_path(project, name) + "#versions")


class MetadataEditPage(PageHandler):
    """编辑模型信息: the model card, checked like a registration's metadata."""

    max_body = 256 << 20  # gallery images, 20 MB each at most

    def get(
        self, project_name: str, name: str, error: Optional[str] = None, form: Optional[dict] = None
    ) -> None:
        service = self.find_service(project_name, name, "change")
        if form is None:
            meta = effective_metadata(service, current_version(service))
            form = {k: str(meta.get(k) or "") for k in META_TEXT}
            form["links"] = links_text(meta.get("links"))
            form["keep_warm"] = str(service.keep_warm)
        version = current_version(service)
        gallery = [image["name"] for image in (version.gallery or [])] if version else []
        self.render(
            "service_edit.html",
            service=service,
            form=form,
            gallery=gallery,
            back=service_path(project_name, name),
            error=error,
        )

    def post(self, project_name: str, name: str) -> None:
        service = self.find_service(project_name, name)
        form = {
            k: self.get_body_argument(k, "").strip() for k in (*META_TEXT, "links", "keep_warm")
        }
        edited: dict = {k: form[k] for k in META_TEXT}
        edited["links"] = parse_links(form["links"])
        try:
            keep_warm = service.keep_warm
            if form["keep_warm"]:
                try:
                    keep_warm = check_keep_warm(
                        int(form["keep_warm"])
                        if form["keep_warm"].isascii() and form["keep_warm"].isdigit()
                        else form["keep_warm"]
                    )
                except APIError as e:
                    raise FormError(self.error_text(e)) from None
            try:
                BundleReceiver.metadata_field(self, {"metadata": edited})  # type: ignore[arg-type]
            except APIError as e:
                raise FormError(self.error_text(e)) from None
            parts = self.request.files.get("images", [])
            images = []
            collector = self.hub.collector
            for keep in (False, True):  # all checked before any is stored
                images = []
                for part in parts:
                    try:
                        with collector.store_lock:
                            image = store_image(
                                part.body, self.hub.data / "gallery", part.filename, keep=keep
                            )
                            if keep:  # until the row is committed (collect.py)
                                collector.pin(image["file"])
                        images.append(image)
                    except ValueError:
                        raise FormError(
                            self.t(
                                "'{name}' is not an image the hub can show: give a PNG, JPEG, GIF or WebP file under 20 MB.",
                                name=part.filename,
                            )
                        ) from None
        except FormError as e:
            self.set_status(400)
            self.get(project_name, name, error=e.message, form=form)
            return
        service.keep_warm = keep_warm
        service.meta = {**(service.meta or {}), **edited}
        for version in service.versions:  # the card saved here wins over a version's metadata
            if version.meta and set(version.meta) & set(edited):
                version.meta = {k: v for k, v in version.meta.items() if k not in edited}
        version = current_version(service)
        if images and version is not None:
            version.gallery = images
        self.db.commit()
        for image in images:
            self.hub.collector.unpin(image["file"])
        self.hub.publisher.route(service)
        self.redirect(service_path(project_name, name))


class MarkdownPreview(PageHandler):
    """The description's preview: the same sanitised HTML the service page shows."""

    def post(self) -> None:
        self.set_header("Content-Type", "text/html; charset=UTF-8")
        self.finish(render_markdown(self.get_body_argument("text", "")))


class TokensPage(PageHandler, TokenListAPIHandler):
    """令牌: the user's tokens (a hub admin's page lists everyone's), made with scopes, a project or
    service they are limited to and an expiry (shown once, on this answer only), and revoked."""

    def get(  # type: ignore[override]
        self,
        error: Optional[str] = None,
        created: Optional[dict] = None,
        notice: Optional[str] = None,
    ) -> None:
        query = self.db.query(orm.Token)
        if not self.caller.may("admin"):
            query = query.filter(orm.Token.user_id == self.caller.user_id)
        tokens = query.order_by(orm.Token.id).all()
        self.render(
            "tokens.html",
            tokens=tokens,
            error=error,
            created=created,
            notice=notice,
            admin_token_id=self.hub.admin_token_id,
            scopes=[s for s in access.SCOPES if s in self.caller.scopes],
        )

    def post(self) -> None:  # type: ignore[override]
        form = {k: self.get_body_argument(k, "").strip() for k in ("name", "limit", "days")}
        chosen = [s for s in self.get_body_arguments("scopes") if s]
        try:
            name = self.validated("token", form["name"])
            if name == ADMIN:
                raise FormError(
                    self.t(
                        "The token name 'admin' is kept for the hub's admin token: choose another name."
                    )
                )
            days = form["days"]
            if days and not (days.isascii() and days.isdigit() and 0 < int(days) <= 3650):
                raise FormError(
                    self.t("The expiry is a whole number of days from 1 to 3650, or empty.")
                )
            data: dict = {
                "scopes": chosen or None,
                "expires_in": int(days) * 86400 if days else None,
            }
            if "/" in form["limit"]:
                data["service"] = form["limit"]
            elif form["limit"]:
                data["project"] = form["limit"]
            try:
                fields = self.limits(data)
            except APIError as e:
                raise FormError(self.error_text(e)) from None
        except FormError as e:
            self.set_status(400)
            self.get(error=e.message)
            return
        token, row = self.hub.create_token(self.db, name, self.caller.user_id, **fields)
        self.set_status(201)
        self.get(created={"name": row.name, "token": token, "id": row.id})


class TokenRevokeAction(PageHandler):
    def post(self, token_id: str) -> None:
        row = self.db.get(orm.Token, int(token_id)) if len(token_id) <= 18 else None
        mine = row is not None and (row.user_id == self.caller.user_id or self.caller.may("admin"))
        if row is None or row.revoked_at is not None or not mine:
            self.set_status(404)
            TokensPage.get(
                self, error=self.t("There is no token {id}: reload the tokens page.", id=token_id)
            )  # type: ignore[arg-type]
            return
        if row.id == self.hub.admin_token_id:
            self.set_status(400)
            TokensPage.get(
                self,
                error=self.t(
                    "The admin token cannot be revoked here: delete the admin_token file in the hub's data folder and restart the hub to replace it."
                ),
            )  # type: ignore[arg-type]
            return
        row.revoked_at = orm.utcnow()
        self.db.commit()
        self.hub.forget_token(row.hashed)
        if self.token_id == row.id:  # the session was signed in with it: it has just ended
            self.end_session()
            self.redirect("/login")
            return
        TokensPage.get(
            self,
            notice=self.t(
                "Token {name} is revoked: it no longer works and its sessions have ended.",
                name=row.name,
            ),
        )  # type: ignore[arg-type]


class ConfirmedAction(PageHandler):
    """A page action that changes for good: refused unless the form carries ``confirm`` (the name
    typed again where :attr:`confirm_name` says so)."""

    confirm_name = False

    def confirmed(self, name: str) -> bool:
        given = self.get_body_argument("confirm", "").strip()
        return given == name if self.confirm_name else bool(given)

    def refuse(
        self, project_name: str, name: Optional[str], message: str, status: int = 400
    ) -> None:
        self.db.rollback()
        self.set_status(status)
        if name is None:
            from .pages import ProjectPage

            ProjectPage.get(self, project_name, error=message)  # type: ignore[arg-type]
        else:
            ServicePage.get(self, project_name, name, error=message)  # type: ignore[arg-type]

    def write_json(self, body: Any, status: int = 200) -> None:
        """Where the shared API code answers: back to the page."""
        self.redirect(self.after())

    def after(self) -> str:
        return service_path(self.path_args[0], self.path_args[1])


class VersionDeleteAction(ConfirmedAction, VersionAPIHandler):
    """删除版本: a version that is not online (the API's checks)."""

    async def post(self, project_name: str, name: str, number: str) -> None:  # type: ignore[override]
        self.find_service(project_name, name, "change")  # a 403 or 404 before the form's checks
        if not self.confirmed(number):
            return self.refuse(project_name, name, self.t("Nothing was deleted: confirm it first."))
        try:
            await VersionAPIHandler.delete(self, project_name, name, number)
        except APIError as e:
            self.refuse(project_name, name, self.error_text(e), e.status_code)

    def after(self) -> str:
        return service_path(self.path_args[0], self.path_args[1]) + "#versions"


class ServiceDeleteAction(ConfirmedAction, ServiceAPIHandler):
    """删除服务: its processes stopped, everything of it removed; back to the project."""

    confirm_name = True

    async def post(self, project_name: str, name: str) -> None:  # type: ignore[override]
        self.find_service(project_name, name, "manage")
        if not self.confirmed(name):
            return self.refuse(
                project_name,
                name,
                self.t("Nothing was deleted: type {name} to confirm.", name=name),
            )
        await ServiceAPIHandler.delete(self, project_name, name)

    def after(self) -> str:
        return f"/projects/{quote(self.path_args[0], safe='')}"


class AliasSetAction(ConfirmedAction, AliasAPIHandler):
    """设置别名: ``name`` now names ``version``."""

    def post(self, project_name: str, name: str) -> None:  # type: ignore[override]
        alias = self.get_body_argument("name", "").strip()
        number = self.get_body_argument("version", "").strip()
        try:
            self.name_version(project_name, name, alias, {"version": number})
        except APIError as e:
            self.refuse(project_name, name, self.error_text(e), e.status_code)

    def after(self) -> str:
        return service_path(self.path_args[0], self.path_args[1]) + "#aliases"


class AliasDeleteAction(ConfirmedAction, AliasAPIHandler):
    def post(self, project_name: str, name: str, alias: str) -> None:  # type: ignore[override]
        self.find_service(project_name, name, "change")
        if not self.confirmed(alias):
            return self.refuse(project_name, name, self.t("Nothing was deleted: confirm it first."))
        try:
            AliasAPIHandler.delete(self, project_name, name, alias)
        except APIError as e:
            self.refuse(project_name, name, self.error_text(e), e.status_code)

    def after(self) -> str:
        return service_path(self.path_args[0], self.path_args[1]) + "#aliases"


class GroupDeleteAction(ConfirmedAction, GroupAPIHandler):
    """删除分组: an empty one."""

    def post(self, project_name: str, group: str) -> None:  # type: ignore[override]
        self.find_project(project_name, "manage")
        if not self.confirmed(group):
            return self.refuse(project_name, None, self.t("Nothing was deleted: confirm it first."))
        try:
            GroupAPIHandler.delete(self, project_name, group)
        except APIError as e:
            self.refuse(project_name, None, self.error_text(e), e.status_code)

    def after(self) -> str:
        return f"/projects/{quote(self.path_args[0], safe='')}"


class GroupRenameAction(PageHandler):
    """重命名分组: the project page's rename form (a Unicode name such as 表格模型 allowed)."""

    def post(self, project_name: str, group: str) -> None:
        project = self.find_project(project_name, "change")
        try:
            found = self.find_group(project, group)
            rename_group(self, project, found, self.get_body_argument("name", "").strip())
        except APIError as e:
            from .pages import ProjectPage

            self.db.rollback()
            self.set_status(e.status_code)
            ProjectPage.get(self, project_name, error=self.error_text(e))  # type: ignore[arg-type]
            return
        self.redirect(f"/projects/{quote(project_name, safe='')}#groups")


class ProjectDeleteAction(ConfirmedAction, ProjectAPIHandler):
    """删除项目: with its groups and services (each stopped and removed)."""

    confirm_name = True

    async def post(self, project_name: str) -> None:  # type: ignore[override]
        self.find_project(project_name, "manage")
        if not self.confirmed(project_name):
            return self.refuse(
                project_name,
                None,
                self.t("Nothing was deleted: type {name} to confirm.", name=project_name),
            )
        await ProjectAPIHandler.delete(self, project_name)

    def after(self) -> str:
        return "/projects"


manage_handlers = [
    (r"/projects/([^/]+)/services/([^/]+)/versions", VersionUploadAction),
    (r"/projects/([^/]+)/services/([^/]+)/versions/([^/]+)/delete", VersionDeleteAction),
    (r"/projects/([^/]+)/services/([^/]+)/delete", ServiceDeleteAction),
    (r"/projects/([^/]+)/services/([^/]+)/aliases", AliasSetAction),
    (r"/projects/([^/]+)/services/([^/]+)/aliases/([^/]+)/delete", AliasDeleteAction),
    (r"/projects/([^/]+)/groups/([^/]+)/delete", GroupDeleteAction),
    (r"/projects/([^/]+)/groups/([^/]+)/rename", GroupRenameAction),
    (r"/projects/([^/]+)/delete", ProjectDeleteAction),
    (r"/projects/([^/]+)/services/([^/]+)/edit", MetadataEditPage),
    (r"/preview", MarkdownPreview),
    (r"/tokens/?", TokensPage),
    (r"/tokens/(\d+)/revoke", TokenRevokeAction),
]
