"""Video in and out: files, folders of frames, webcams, network streams; annotated output video."""

from .sources import Frame, FolderSource, LiveSource, SourceStatus, VideoFileSource, open_source
from .writer import VideoWriter

__all__ = ["FolderSource", "Frame", "LiveSource", "SourceStatus", "VideoFileSource", "VideoWriter", "open_source"]
