"""The hub's client: what the ``algolink`` commands, the notebook and the Jupyter server extension use to
talk to a hub over HTTP. Nothing here imports the hub's server side."""

from .calls import Client, PredictError
from .core import (
    DEFAULT_URL,
    HubClient,
    HubRequestError,
    config_path,
    dev_service_lines,
    ensure_project_group,
    hub_settings,
    load_config,
    multipart,
    pack_folder,
    register_dev,
    service_page_url,
    service_path,
    split_service,
)

__all__ = [
    "Client",
    "PredictError",
    "DEFAULT_URL",
    "HubClient",
    "HubRequestError",
    "config_path",
    "dev_service_lines",
    "ensure_project_group",
    "hub_settings",
    "load_config",
    "multipart",
    "pack_folder",
    "register_dev",
    "service_page_url",
    "service_path",
    "split_service",
]
