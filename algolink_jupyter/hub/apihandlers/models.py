"""The hub's rows as the API's JSON: projects, groups, services, versions and tokens."""

from __future__ import annotations

import hashlib
import json
from typing import Any, Optional

from .. import orm
from ..devmode import dev_model
from .common import isotime


def project_model(project: orm.Project, detail: bool = False) -> dict:
    model = {
        "name": project.name,
        "type": project.type,
        "version": project.version,
        "description": project.description,
        "created": isotime(project.created),
        "groups": [g.name for g in project.groups],
    }
    if detail:
        model["groups"] = [group_model(g) for g in project.groups]
        model["services"] = [service_summary(s) for s in project.services]
    return model


def group_model(group: orm.Group) -> dict:
    return {
        "name": group.name,
        "project": group.project.name,
        "created": isotime(group.created),
        "services": [s.name for s in group.services],
    }


def effective_metadata(service: orm.Service, version: Optional[orm.Version]) -> dict:
    """What the bundle's ``modelcloud.meta(...)`` says, overridden by the metadata given at
    registration (the service's), overridden by the metadata given with this version."""
    manifest = (version.manifest if version is not None else None) or {}
    merged = dict(manifest.get("metadata") or {})
    merged.update(service.meta or {})
    if version is not None:
        merged.update(version.meta or {})
    return merged


def current_version(service: orm.Service) -> Optional[orm.Version]:
    """The published version, or else the newest one."""
    return service.version(service.published_version) or (
        service.versions[-1] if service.versions else None
    )


def default_publish_version(service: orm.Service) -> Optional[orm.Version]:
    """What 上线 publishes when no version is named: the newest version uploaded since the one
    online last went online, else that one (a rollback stays a rollback), else the newest."""
    published = service.version(service.published_version)
    if published is None:
        return service.versions[-1] if service.versions else None
    since = published.published_at or published.created
    newer = [v for v in service.versions if v.created is not None and v.created > since]
    return newer[-1] if newer else published


def version_model(
    version: orm.Version,
    base: str = "",
    serve_base: Optional[str] = None,
    process: Optional[str] = None,
    replicas: Optional[list] = None,
) -> dict:
    """A version as the API shows it; ``process`` is the state of its process when one runs
    (``online``, ``starting``, ``restarting``), else None; ``replicas`` what runs it (the
    backend's :meth:`~..backend.Backend.replicas`)."""
    service = version.service
    project = service.project.name
    path = f"/api/v1/projects/{project}/services/{service.name}/versions/{version.number}"
    serve = f"{(serve_base or base).rstrip('/')}/serve/{project}/{service.name}/"
    return {
        "number": version.number,
        "status": version.status,
        "error": version.error or None,
        "api_version": f"v{version.api_version}" if version.api_version else None,
        "url": f"{serve}v{version.api_version}/" if version.api_version else None,
        "aliases": [a.name for a in service.aliases if a.version_number == version.number],
        "process": process,
        "replicas": replicas or [],
        "bundle_hash": version.bundle_hash,
        "manifest": version.manifest,
        "metadata": effective_metadata(service, version),
        "gallery": gallery_model(version, base),
        "created": isotime(version.created),
        "published_by": version.published_by,
        "published_at": isotime(version.published_at),
        "options": version.options or {},
        "logs": base + path + "/logs",
    }


def alias_model(alias: orm.Alias, base: str = "", serve_base: Optional[str] = None) -> dict:
    service = alias.service
    version = service.version(alias.version_number)
    serve = f"{(serve_base or base).rstrip('/')}/serve/{service.project.name}/{service.name}/"
    return {
        "name": alias.name,
        "version": alias.version_number,
        "api_version": f"v{version.api_version}" if version and version.api_version else None,
        "url": f"{serve}@{alias.name}/",
        "updated_by": alias.updated_by,
        "created": isotime(alias.created),
    }


def service_summary(service: orm.Service) -> dict:
    return {
        "name": service.name,
        "group": service.group.name,
        "status": service.status,
        "published_version": service.published_version,
        "public": service.public,
    }


def gallery_model(version: Optional[orm.Version], base: str = "") -> list:
    return [
        {"name": image["name"], "url": f"{base}/gallery/{image['file']}"}
        for image in ((version.gallery or []) if version is not None else [])
    ]


def service_model(
    service: orm.Service,
    base: str = "",
    serve_base: Optional[str] = None,
    running: Optional[dict] = None,
    replicas: Optional[dict] = None,
) -> dict:
    """A service as the API shows it; its ``/serve`` URLs start with ``serve_base`` (the hub's
    ``--serve-origin``) when given, else ``base``; ``running`` maps the numbers of the versions
    whose process runs to its state, ``replicas`` to what runs them."""
    running = running or {}
    version = current_version(service)
    published = service.version(service.published_version)
    default_version = default_publish_version(service)
    project = service.project.name
    serve = f"{(serve_base or base).rstrip('/')}/serve/{project}/{service.name}/"
    model = {
        "name": service.name,
        "project": project,
        "group": service.group.name,
        "status": service.status,
        "message": service.message or None,
        "public": service.public,
        "created_by": service.created_by,
        "keep_warm": service.keep_warm,
        "published_version": service.published_version,
        "publish_default": default_version.number if default_version else None,
        "api_version": f"v{published.api_version}" if published and published.api_version else None,
        "metadata": effective_metadata(service, version),
        "manifest": version.manifest if version else None,
        "gallery": gallery_model(version, base),
        "versions": [
            version_model(
                v, base, serve_base, running.get(v.number), (replicas or {}).get(v.number)
            )
            for v in service.versions
        ],
        "running": sorted(running),
        "aliases": [alias_model(a, base, serve_base) for a in service.aliases],
        "created": isotime(service.created),
        "urls": {
            "serve": serve,
            "api": f"{serve}v{published.api_version}/"
            if published and published.api_version
            else None,
            "api_versions": {
                f"v{v.api_version}": f"{serve}v{v.api_version}/"
                for v in service.versions
                if v.api_version
            },
            "logs": f"{base}/api/v1/projects/{project}/services/{service.name}/versions/"
            f"{version.number}/logs"
            if version
            else None,
        },
        "mode": "bundle",
    }
    if service.dev_url:  # development mode: a live server elsewhere, no versions (devmode.py)
        merged = dict((service.dev_manifest or {}).get("metadata") or {})
        merged.update(service.meta or {})
        model.update(dev_model(service), manifest=service.dev_manifest, metadata=merged)
        model["urls"]["api"] = serve
    model["state"] = state_of(model)
    return model


#: What a page shows of a service that is not a URL (URLs differ with the host a page is seen on).
_URL_KEYS = {"urls", "url", "logs", "gallery", "state", "created", "dev_checked_at"}


def state_of(model: dict) -> str:
    """A short digest of what the service's page shows: when it changes, the page shows it anew
    (all of it at once, so that no part says something another part contradicts)."""

    def strip(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if k not in _URL_KEYS}
        if isinstance(value, list):
            return [strip(v) for v in value]
        return value

    text = json.dumps(strip(model), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def token_model(token: orm.Token) -> dict:
    service = token.service
    return {
        "id": token.id,
        "name": token.name,
        "user": token.user.name if token.user is not None else None,
        "prefix": token.prefix,
        "scopes": token.scopes,
        "project": token.project.name if token.project is not None else None,
        "service": f"{service.project.name}/{service.name}" if service is not None else None,
        "expires_at": isotime(token.expires_at),
        "created": isotime(token.created),
        "last_used": isotime(token.last_used),
        "last_ip": token.last_ip,
        "revoked": token.revoked_at is not None,
    }
