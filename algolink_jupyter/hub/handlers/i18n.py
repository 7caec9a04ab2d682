"""The web UI's languages: English (the messages themselves) and 简体中文, from gettext catalogs.

Pages call ``t("English sentence {name}", name=...)`` (``t.pgettext(context, ...)`` where one English
word has two meanings, ``t.ngettext(singular, plural, n)`` for counts); Babel extracts them into
``algolink_jupyter/locale/algolink_jupyter.pot`` and each language's ``.po`` holds the translations
(``python scripts/i18n.py update`` / ``compile``; README, Development). The language comes from the
``lang`` cookie or the browser's ``Accept-Language`` (``algolink_jupyter.translation``). Messages
chosen at run time (a status, a role, an error's ``key``) are listed below with ``N_`` so that
extraction sees them.
"""

from __future__ import annotations

from typing import Any, Optional

from ...translation import (
    DEFAULT,
    LANGUAGES,
    N_,
    PROBLEM_MESSAGES,
    Translator,
    pick,
    translator,
)

__all__ = ["DEFAULT", "LANGUAGES", "N_", "Translator", "pick", "translator"]


# The labels of values shown in pages, by family.
STATUS = {
    "registered": N_("Registered"),
    "building": N_("Building"),
    "starting": N_("Starting"),
    "online": N_("Online"),
    "failed": N_("Failed"),
    "offline": N_("Offline"),
    "development": N_("Development"),
}
TYPES = {
    "model": N_("Model"),
    "dataset": N_("Dataset"),
    "application": N_("Application"),
    "other": N_("Other"),
}
ROLES = {
    "viewer": N_("Viewer"),
    "developer": N_("Developer"),
    "owner": N_("Owner"),
}
SCOPES = {
    "read": N_("see projects, services, versions and members"),
    "invoke": N_("call services (/serve, try it)"),
    "write": N_("register, upload, publish, options, logs"),
    "manage": N_("members and deleting"),
    "admin": N_("users and the whole hub (admins)"),
    "metrics": N_("GET /metrics and the charts (Prometheus)"),
}
KINDS = {
    "project": N_("project"),
    "group": N_("group"),
    "service": N_("service"),
    "token": N_("token"),
}
#: The labels the service page's scripts show (try-it: shared results; metrics.js: the charts).
TRY_LABELS = {
    "share_link": N_("Shareable link:"),
    "share_not_kept": N_("The result is too large to keep behind a link."),
    "share_delete": N_("Delete the link"),
    "share_deleted": N_("The link is deleted: the result is no longer kept."),
    "copy": N_("Copy"),
    "copied": N_("Copied"),
    "download": N_("Download"),
    "bytes": N_("{size} bytes"),
}
CHART_LABELS = {
    "chart_requests": N_("Requests per minute"),
    "chart_latency": N_("Latency (ms)"),
    "chart_errors": N_("Error rate (%)"),
    "series_all": N_("all versions"),
    "series_4xx": N_("refused (4xx), all"),
    "metrics_summary": N_(
        "{requests} requests, {errors} failed (5xx), {client_errors} refused (4xx) in this range."
    ),
    "metrics_none": N_("No requests in this range."),
}
PROCESSES = {
    "online": N_("running"),
    "starting": N_("starting"),
    "restarting": N_("restarting"),
    "stopped": N_("stopped"),
}
# The sentences of errors raised by the hub's shared logic with a key: ``APIError(status, message, key,
# **params)``, ``BundleError(message, key, **params)``; ``{kind}`` is one of KINDS.
ERRORS = {
    "dev_unreachable": N_(
        "The development server at {url} is not answering: start it again and connect it again."
    ),
    "dev_url_missing": N_(
        "The model server URL is missing: give the address your model server prints, such as http://127.0.0.1:9000."
    ),
    "dev_url_bad": N_(
        "{url} is not a model server URL: give an http:// or https:// address such as http://127.0.0.1:9000, without a query."
    ),
    "dev_refused": N_("The development server at {url} refused the hub: give the token it needs."),
    "dev_url_internal": N_(
        "{url} leads to this hub or one of its services: give the address of your own model server (python cloud_model.py or %algolink serve prints it)."
    ),
    "dev_too_many": N_(
        "Too many development URLs were tried within a minute: wait a minute and connect again."
    ),
    "dev_not_yours": N_(
        "This development service was connected by another token: only it (or the admin) may connect it again."
    ),
    "body_too_large": N_("The request is over this page's limit of {limit}: send less."),
    "form_bad": N_("The form could not be read: send it again."),
    "dev_not_manifest": N_(
        "{url} did not answer like a model server: give the URL of a running AlgoLink model server."
    ),
    **PROBLEM_MESSAGES,
    "group_exists": N_("Project '{project}' already has a group '{name}': choose another name."),
    "group_missing": N_("Project '{project}' has no group '{name}': create the group first."),
    "metadata_json": N_("The metadata is not valid JSON: send a JSON object."),
    "metadata_type": N_("The metadata must be an object with fields such as tagline and license."),
    "metadata_text": N_("The field '{field}' must be text: type it as plain text."),
    "metadata_links": N_(
        "The links must be a list of a title and a URL each: write one link a line."
    ),
    "image_bad": N_(
        "'{name}' is not an image the hub can show: give a PNG, JPEG, GIF or WebP file under 20 MB."
    ),
    "no_bundle": N_(
        "No bundle was given: upload a .tar.gz or .zip file, or give a bundle folder on the hub's machine."
    ),
    "folder_bad": N_(
        "'{path}' is not a folder on the hub's machine: give the absolute path of a bundle folder, or upload the bundle."
    ),
    "no_entry": N_(
        "The bundle has no cloud_model.py at its top: put cloud_model.py at the top of the bundle folder and pack it again."
    ),
    "not_archive": N_(
        "The uploaded file is not a .tar.gz, .tgz, .tar or .zip archive: upload one of those."
    ),
    "bundle_refused": N_("The bundle was refused ({detail}): fix it and upload it again."),
    "service_exists": N_(
        "Project '{project}' already has a service '{name}': choose another name, or upload a new version on that service's page."
    ),
    "token_admin": N_(
        "The token name 'admin' is kept for the hub's admin token: choose another name."
    ),
    "try_unreachable": N_("The service did not answer: read its log below, then try again."),
    "opt_unknown_option": N_(
        "There is no setup option '{option}': this service's options are {known}."
    ),
    "opt_not_file": N_("The setup option '{option}' takes no file: set its value instead."),
    "opt_extension": N_(
        "The setup option '{option}' takes files ending in {ext}, got '{filename}': choose a file with one of those extensions."
    ),
    "opt_rule": N_("The value of option '{option}' {reason}: give a value that fits its rule."),
    "opt_no_file": N_("The file of option '{option}' is not on the hub: upload it again."),
    "opt_too_large": N_(
        "The file '{filename}' for option '{option}' is {size}, over the hub's limit of {limit}: choose a smaller file."
    ),
    "opt_not_known": N_(
        "The options of version {version} are not known yet: wait until its bundle is built, then try again."
    ),
    "version_online": N_(
        "Version {number} is online: publish another version (or take the service offline) before deleting it."
    ),
    "version_busy": N_("Version {number} is being built or started: wait until it is done."),
    "version_aliased": N_(
        "Version {number} is named by {aliases}: point them at another version or delete them first."
    ),
    "group_not_empty": N_("The group {group} still has services ({services}): delete them first."),
    "alias_unbuilt": N_(
        "That version has not been built yet: an alias names a version that can run."
    ),
    "keep_warm_bad": N_("Keep warm is whole seconds from 0 to 604800 (a week)."),
    "port_gone": N_("The hub no longer takes a port: leave it out."),
    "scope_missing": N_(
        "This needs a token with the '{scope}' scope: sign in with your password or use a token that has it."
    ),
    "role_needed": N_("This needs the {role} role in project {project}: ask one of its owners."),
    "admin_needed": N_("Only a hub admin may do this."),
    "token_limited": N_(
        "This session's token is limited to one project or service: sign in with your password to do this."
    ),
    "sign_in_needed": N_("Sign in to continue."),
    "project_missing": N_("Not found: there is no such project, or you may not see it."),
    "expiry_bad": N_("The expiry is a whole number of days from 1 to 3650, or empty."),
    "scopes_bad": N_(
        "The scopes are some of read, invoke, write, manage, admin and metrics, none wider than "
        "yours."
    ),
    "user_exists": N_("There is a user {name} already: choose another name."),
    "user_missing": N_("There is no user {name}: a hub admin adds users on the users page."),
    "member_exists": N_("{user} is a {role} of {project} already: change the role instead."),
    "last_owner": N_("{user} is the last owner of {project}: make someone else an owner first."),
    "role_bad": N_("The role must be viewer, developer or owner."),
    "password_bad": N_("A password has 8 to 1024 characters: type another one."),
    "old_password_bad": N_("The current password is wrong: type it again."),
    "token_refused": N_("That token no longer works (unknown, revoked or expired): sign in again."),
    "sign_in_bad": N_("That user name and password do not match: check both and try again."),
    "sign_in_locked": N_(
        "Too many wrong passwords: this account is locked for {minutes} minutes. Try again later, or ask a hub admin to set a new password."
    ),
    "sign_in_disabled": N_("This account is disabled: ask a hub admin to enable it."),
}


def label(t: Translator, family: dict, value: Any) -> str:
    """A value's label from one of the families above (``STATUS``, ``ROLES`` …) in ``t``'s
    language; a value the family does not know, as it is."""
    message = family.get(str(value))
    return t(message) if message else str(value)


def error_message(t: Translator, key: Optional[str], params: Optional[dict]) -> Optional[str]:
    """The sentence of an error raised with ``key`` and ``params`` (``APIError``, ``BundleError``)
    in ``t``'s language, or None when ``key`` is not one of ``ERRORS``."""
    message = ERRORS.get(key or "")
    if not message:
        return None
    params = dict(params or {})
    if "kind" in params:
        params["kind"] = label(t, KINDS, params["kind"])
    return t(message, **params)


def relative_time(seconds: float, t: Translator) -> str:
    """``seconds`` since a moment (negative: until it) in words of the page's language: "just now",
    "3 minutes ago", "in 2 days"; past 30 days, "" (the date is shown instead)."""
    ahead = seconds < 0
    left = abs(seconds)
    if left < 60:
        return t("just now")
    n = int(left // 60)
    if n < 60:
        if ahead:
            return t.ngettext("in {n} minute", "in {n} minutes", n, n=n)
        return t.ngettext("{n} minute ago", "{n} minutes ago", n, n=n)
    n = int(left // 3600)
    if n < 24:
        if ahead:
            return t.ngettext("in {n} hour", "in {n} hours", n, n=n)
        return t.ngettext("{n} hour ago", "{n} hours ago", n, n=n)
    n = int(left // 86400)
    if n < 30:
        if ahead:
            return t.ngettext("in {n} day", "in {n} days", n, n=n)
        return t.ngettext("{n} day ago", "{n} days ago", n, n=n)
    return ""
