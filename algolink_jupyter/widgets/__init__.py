"""ipywidgets for the notebook: the command test form (and, beside it, the publish form)."""

from .test_form import CommandForm, build_form, for_command

__all__ = ["CommandForm", "build_form", "for_command"]
