"""Replace a file only once its new content is completely written."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path


def default_mode(directory: bool = False) -> int:
    """The permissions ``open``/``mkdir`` would give a new file or folder (umask applied).

    ``mkstemp``/``mkdtemp`` create private 0600/0700 entries; the reports and
    models of a run are meant to be read by the group like any other file.
    """
    umask = os.umask(0)
    os.umask(umask)
    return (0o777 if directory else 0o666) & ~umask


def write_atomically(target: Path, write: Callable[[Path], None]) -> None:
    """Call ``write`` on a temporary file beside ``target``, then rename it into place.

    A failure (or a crash) while writing leaves the previous ``target`` untouched
    and removes the temporary file. The file gets the usual umask permissions.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(
        dir=target.parent, prefix=f".{target.name}.", suffix=".tmp"
    )
    os.close(handle)
    try:
        write(Path(temporary))
        os.chmod(temporary, default_mode())
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
