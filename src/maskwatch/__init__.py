"""MaskWatch: are people wearing face masks? Photos, video files and live cameras."""

from .errors import InputError, MaskWatchError, ModelError
from .faces import LABELS, Faces

__version__ = "0.1.0"

__all__ = ["LABELS", "Faces", "InputError", "MaskWatchError", "ModelError", "__version__"]
