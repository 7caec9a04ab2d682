"""An OpenAPI 3.1 document generated from a registry's data types: one path per command."""

from __future__ import annotations

from .model import Registry

_ERROR = {
    "type": "object",
    "properties": {
        "error": {"type": "string", "description": "One sentence saying what went wrong."},
        "field": {"type": "string", "description": "The input at fault, when there is one."},
    },
    "required": ["error"],
}

_ERRORS = {
    "400": "Malformed body, or a missing or invalid input",
    "413": "The body is over the size limit",
    "500": "The command raised",
    "503": "Setup has not finished, or failed",
}

_JOB = {
    "type": "object",
    "properties": {
        "id": {"type": "string"},
        "command": {"type": "string"},
        "status": {"enum": ["queued", "running", "succeeded", "failed", "canceled"]},
        "progress": {"type": ["number", "null"], "minimum": 0, "maximum": 1},
        "outputs": {
            "type": ["object", "null"],
            "description": "The final outputs, or the latest partial ones while it runs.",
        },
        "error": {"type": ["string", "null"]},
        "field": {"type": "string"},
        "created_at": {"type": "string", "format": "date-time"},
        "started_at": {"type": ["string", "null"], "format": "date-time"},
        "finished_at": {"type": ["string", "null"], "format": "date-time"},
        "url": {"type": "string"},
    },
    "required": ["id", "command", "status", "progress", "outputs", "error"],
}

_SSE_DESCRIPTION = (
    "With `Accept: text/event-stream`: one Server-Sent Event per yield, `event: progress` "
    '(`{"progress"}`) or `event: output` (`{"progress"?, "outputs"}`), then `event: succeeded` '
    '(`{"outputs"}`: the last outputs) or `event: failed` (`{"error", "field"?}`).'
)

_JOB_PARAM = {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}

_MULTIPART_TYPES = {"image", "file", "directory", "segmentation"}


def _error_responses(codes: tuple) -> dict:
    return {
        code: {
            "description": _ERRORS[code],
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
        }
        for code in codes
    }


def _object(types: dict) -> dict:
    return {
        "type": "object",
        "properties": {name: t.json_schema() for name, t in types.items()},
        "required": [name for name, t in types.items() if not t.has_default],
        "additionalProperties": False,
    }


def _multipart(types: dict) -> dict:
    props = {}
    for name, t in types.items():
        if t.type_name in _MULTIPART_TYPES:
            props[name] = {"type": "string", "contentMediaType": "application/octet-stream"}
        else:
            props[name] = t.json_schema()
    return {"type": "object", "properties": props}


def openapi_document(
    registry: Registry, server_url: str = "/", *, clients_only: bool = False
) -> dict:
    """The document; ``clients_only`` (a server run by an AlgoLink hub) lists only what clients
    reach through the hub: ``/meta``, ``/openapi.json``, the commands, ``/jobs/{id}`` and ``/ws``."""
    meta = registry.metadata
    paths: dict = {
        "/meta": {
            "get": {
                "summary": "The manifest: metadata, options and commands",
                "operationId": "meta",
                "responses": {
                    "200": {
                        "description": "The manifest",
                        "content": {"application/json": {"schema": {"type": "object"}}},
                    }
                },
            }
        },
        "/healthcheck": {
            "get": {
                "summary": "Whether the model is ready",
                "operationId": "healthcheck",
                "responses": {
                    "200": {
                        "description": "The status",
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "properties": {
                                        "status": {"enum": ["STARTING", "RUNNING", "SETUP_FAILED"]}
                                    },
                                    "required": ["status"],
                                }
                            }
                        },
                    }
                },
            }
        },
        "/setup": {
            "post": {
                "summary": "Run setup again with these options",
                "operationId": "setup",
                "requestBody": {
                    "required": False,
                    "content": {
                        "application/json": {"schema": _object(registry.options) | {"required": []}}
                    },
                },
                "responses": {
                    "200": {
                        "description": "Setup finished",
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "properties": {"success": {"type": "boolean"}},
                                }
                            }
                        },
                    },
                    **_error_responses(("400", "413", "500")),
                },
            }
        },
    }
    if clients_only:
        del paths["/healthcheck"], paths["/setup"]
        paths["/openapi.json"] = {
            "get": {
                "summary": "This document",
                "operationId": "openapi",
                "responses": {
                    "200": {
                        "description": "The OpenAPI document",
                        "content": {"application/json": {"schema": {"type": "object"}}},
                    }
                },
            }
        }
    job_answer = {
        "description": "The job",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Job"}}},
    }
    no_job = {
        "description": "No such job (or it expired)",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }
    paths["/jobs/{id}"] = {
        "get": {
            "summary": "An async job: status, progress, outputs and error",
            "operationId": "job_status",
            "parameters": [_JOB_PARAM],
            "responses": {"200": job_answer, "404": no_job},
        },
        "delete": {
            "summary": "Cancel a job (a finished one is forgotten)",
            "operationId": "job_cancel",
            "parameters": [_JOB_PARAM],
            "responses": {"200": job_answer, "404": no_job},
        },
    }
    paths["/ws"] = {
        "get": {
            "summary": "Runway's WebSocket protocol (submit, started, output, succeeded, failed, "
            "cancel)",
            "operationId": "websocket",
            "responses": {"101": {"description": "Switching to the WebSocket protocol"}},
        }
    }
    for cmd in list(registry.commands.values()):
        content = {"application/json": {"schema": _object(cmd.inputs)}}
        if cmd.inputs:
            content["multipart/form-data"] = {"schema": _multipart(cmd.inputs)}
        paths[f"/{cmd.name}"] = {
            "get": {
                "summary": f"The spec of {cmd.name}",
                "operationId": f"{cmd.name}_spec",
                "responses": {
                    "200": {
                        "description": "Inputs and outputs",
                        "content": {"application/json": {"schema": {"type": "object"}}},
                    }
                },
            },
            "post": {
                "summary": cmd.description or f"Run {cmd.name}",
                "operationId": cmd.name,
                "x-streams": cmd.streams,
                "parameters": [
                    {
                        "name": "Prefer",
                        "in": "header",
                        "required": False,
                        "description": "`respond-async`: answer 202 with a job to poll at "
                        "`GET /jobs/{id}` (its URL in `Location`).",
                        "schema": {"type": "string"},
                    }
                ],
                "requestBody": {"required": bool(cmd.inputs), "content": content},
                "responses": {
                    "200": {
                        "description": "The outputs"
                        + (" (the last ones the command yielded)" if cmd.streams else "")
                        + ". "
                        + _SSE_DESCRIPTION,
                        "content": {
                            "application/json": {
                                "schema": _object(cmd.outputs) | {"additionalProperties": True}
                            },
                            "text/event-stream": {"schema": {"type": "string"}},
                        },
                    },
                    "202": {
                        "description": "With `Prefer: respond-async`: the job, queued",
                        "headers": {
                            "Location": {
                                "description": "The job's URL",
                                "schema": {"type": "string"},
                            }
                        },
                        "content": {
                            "application/json": {"schema": {"$ref": "#/components/schemas/Job"}}
                        },
                    },
                    **_error_responses(("400", "413", "500", "503")),
                },
            },
        }
        if cmd.batch is not None:
            # Clients send one input as usual; the server gathers concurrent ones into batches.
            paths[f"/{cmd.name}"]["post"]["x-algolink-batch"] = cmd.batch.to_dict()
    return {
        "openapi": "3.1.0",
        "info": {
            "title": meta.get("name") or "modelcloud model",
            "version": str(meta.get("version", "1")),
            "description": meta.get("tagline")
            or meta.get("description")
            or "A model served by modelcloud.",
        },
        "servers": [{"url": server_url}],
        "paths": paths,
        "components": {"schemas": {"Error": _ERROR, "Job": _JOB}},
    }
