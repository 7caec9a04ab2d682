"""``runway.model.RunwayModel``: a model of one's own, apart from the default one (a modelcloud
``Registry`` with Runway's ``run`` method)."""

from typing import Any, Optional

from modelcloud.model import Registry
from modelcloud.runner import run as _run


class RunwayModel(Registry):
    """Runway's model class: ``setup``, ``command`` and ``run`` on an instance of its own."""

    def run(
        self,
        host: str = "0.0.0.0",
        port: int = 9000,
        model_options: Optional[dict] = None,
        debug: bool = False,
        meta: bool = False,
        no_serve: bool = False,
    ) -> Any:
        return _run(host, port, model_options, debug, meta, no_serve, registry=self)


__all__ = ["RunwayModel"]
