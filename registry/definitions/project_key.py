"""A key for a definitions folder's exact contents, so that reading and checking it again
(every proposal check, every sync of the same tree) can reuse the last result.

The key covers everything ``load_project`` reads for a plain folder: the path as given (it
shows in messages), the bytes of every definitions file, the legacy time-spine SQL files it
looks for, and the reader's limits from the environment. Anything whose result depends on
more than that gets no key, and is read afresh: dbt projects (their profiles live outside the
folder and read the environment), dbt semantic manifests, single files, links (a link can
change without the folder changing) and trees over the size limit. Django-free.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from registry.definitions.objects import LEGACY_TIME_SPINE
from registry.definitions.yaml_source import (
    MAX_TOTAL_BYTES,
    dbt_project_at,
    discover_files,
    max_file_bytes,
    max_nodes,
)


def project_key(root: Path, validate: bool) -> str | None:
    """The contents key of the definitions folder ``root``, or None when it cannot have one.

    Example:
        >>> project_key(Path("/nonexistent"), True) is None
        True
    """
    if not root.is_dir() or root.is_symlink() or dbt_project_at(root) is not None:
        return None
    digest = hashlib.sha256()
    digest.update(f"{root}\0{validate}\0{max_file_bytes()}\0{max_nodes()}\0".encode())
    for spine in sorted(root.rglob(f"{LEGACY_TIME_SPINE}.sql")):
        digest.update(f"spine\0{spine}\0".encode())
    total = 0
    for path in discover_files(root):
        try:
            info = os.lstat(path)
        except OSError:
            return None
        total += info.st_size
        if path.is_symlink() or total > MAX_TOTAL_BYTES or not path.is_file():
            return None
        digest.update(f"file\0{path}\0{info.st_size}\0".encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()
