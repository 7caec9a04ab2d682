"""``runway.data_types``: modelcloud's data types with Runway's argument order (``description`` first
for most, as runway-python 0.6.1 has them). Each is a subclass of modelcloud's type of the same name.

Runway gave a missing ``default`` as ``None`` (or ``''``, ``False``); here an omitted default stays
undeclared: a setup option then gets Runway's implicit default (text ``''``, number its min, max or 0,
boolean ``False``, category its first choice) and a command input must be sent.
"""

from typing import Any as _Any
from typing import Optional

from modelcloud import data_types as _dt
from modelcloud.data_types import MISSING, BaseType

__all__ = [
    "BaseType",
    "any",
    "array",
    "boolean",
    "category",
    "directory",
    "file",
    "image",
    "image_bounding_box",
    "image_landmarks",
    "image_point",
    "number",
    "segmentation",
    "text",
    "vector",
]


def _given(default: _Any) -> _Any:
    """Runway's ``None`` (no default given) as modelcloud's undeclared default."""
    return MISSING if default is None else default


class any(_dt.any):  # noqa: A001 - Runway's name
    def __init__(self, description: Optional[str] = None, default: _Any = None):
        super().__init__(default=_given(default), description=description)


class array(_dt.array):
    def __init__(
        self,
        item_type: _Any = None,
        description: Optional[str] = None,
        min_length: int = 0,
        max_length: Optional[int] = None,
        default: _Any = None,
    ):
        super().__init__(
            item_type=item_type,
            min_length=min_length,
            max_length=max_length,
            description=description,
            default=_given(default),
        )


class image(_dt.image):
    def __init__(
        self,
        description: Optional[str] = None,
        channels: int = 3,
        min_width: Optional[int] = None,
        min_height: Optional[int] = None,
        max_width: Optional[int] = None,
        max_height: Optional[int] = None,
        width: Optional[int] = None,
        height: Optional[int] = None,
        default_output_format: Optional[str] = None,
    ):
        super().__init__(
            channels=channels,
            min_width=min_width,
            min_height=min_height,
            max_width=max_width,
            max_height=max_height,
            width=width,
            height=height,
            default_output_format=default_output_format,
            description=description,
        )


class vector(_dt.vector):
    def __init__(
        self,
        length: Optional[int] = None,
        description: Optional[str] = None,
        default: _Any = None,
        sampling_mean: float = 0,
        sampling_std: float = 1,
    ):
        super().__init__(
            length=length,
            default=_given(default),
            sampling_mean=sampling_mean,
            sampling_std=sampling_std,
            description=description,
        )


class category(_dt.category):
    def __init__(
        self,
        description: Optional[str] = None,
        choices: Optional[list] = None,
        default: _Any = None,
    ):
        super().__init__(choices=choices, default=_given(default), description=description)


class number(_dt.number):
    def __init__(
        self,
        description: Optional[str] = None,
        default: _Any = None,
        step: Optional[float] = None,
        min: Optional[float] = None,  # noqa: A002 - Runway's names
        max: Optional[float] = None,  # noqa: A002
    ):
        super().__init__(
            default=_given(default), min=min, max=max, step=step, description=description
        )


class text(_dt.text):
    def __init__(
        self,
        description: Optional[str] = None,
        default: _Any = None,
        min_length: int = 0,
        max_length: Optional[int] = None,
    ):
        super().__init__(
            default=_given(default),
            min_length=min_length,
            max_length=max_length,
            description=description,
        )


class directory(_dt.directory):
    def __init__(self, description: Optional[str] = None, default: _Any = None):
        super().__init__(default=_given(default), description=description)


class file(_dt.file):
    def __new__(
        cls,
        description: Optional[str] = None,
        is_directory: bool = False,
        extension: _Any = None,
        default: _Any = None,
    ) -> _Any:
        if is_directory:  # Runway's file(is_directory=True) is a directory
            return directory(description=description, default=default)
        return _dt.BaseType.__new__(cls)

    def __init__(
        self,
        description: Optional[str] = None,
        is_directory: bool = False,
        extension: _Any = None,
        default: _Any = None,
    ):
        super().__init__(extension=extension, default=_given(default), description=description)


class segmentation(_dt.segmentation):
    def __init__(
        self,
        label_to_id: Optional[dict] = None,
        description: Optional[str] = None,
        label_to_color: Optional[dict] = None,
        default_label: Optional[str] = None,
        min_width: Optional[int] = None,
        min_height: Optional[int] = None,
        max_width: Optional[int] = None,
        max_height: Optional[int] = None,
        width: Optional[int] = None,
        height: Optional[int] = None,
    ):
        super().__init__(
            label_to_id=label_to_id,
            label_to_color=label_to_color,
            default_label=default_label,
            width=width,
            height=height,
            min_width=min_width,
            min_height=min_height,
            max_width=max_width,
            max_height=max_height,
            description=description,
        )


class boolean(_dt.boolean):
    def __init__(self, description: Optional[str] = None, default: _Any = None):
        super().__init__(default=_given(default), description=description)


class image_point(_dt.image_point):
    def __init__(self, description: Optional[str] = None, default: _Any = None):
        super().__init__(default=_given(default), description=description)


class image_bounding_box(_dt.image_bounding_box):
    def __init__(self, description: Optional[str] = None, default: _Any = None):
        super().__init__(default=_given(default), description=description)


class image_landmarks(_dt.image_landmarks):
    def __init__(
        self,
        length: Optional[int] = None,
        description: Optional[str] = None,
        labels: Optional[list] = None,
        connections: Optional[list] = None,
        default: _Any = None,
    ):
        super().__init__(
            length=length,
            labels=labels,
            connections=connections,
            description=description,
            default=_given(default),
        )
