"""Build hook: compiles the translation catalogs (``algolink_jupyter/locale/*/LC_MESSAGES/*.po``)
into the ``.mo`` the hub reads and the JSON JupyterLab reads, with Babel (``scripts/i18n.py
compile``), for wheels, sdists' builds and editable installs alike. Only the ``.po`` are committed."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from hatchling.builders.hooks.plugin.interface import BuildHookInterface


class CatalogsBuildHook(BuildHookInterface):
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict) -> None:
        script = Path(self.root) / "scripts" / "i18n.py"
        spec = importlib.util.spec_from_file_location("algolink_i18n_tool", script)
        tool = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(tool)
        tool.cmd_compile(quiet=True)
