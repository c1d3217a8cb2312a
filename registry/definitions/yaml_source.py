"""Reading definition files safely: size limits, UTF-8, YAML with line numbers kept per key.

Bounded input (issue 18): a file over ``TALLY_MAX_DEFINITION_BYTES`` is refused unread, and
each YAML document is measured as composed, before anything is built from it: aliases share
nodes, so an 800-byte "billion laughs" document composes in microseconds but expands to
hundreds of millions of nodes in everything that walks it afterwards (schema validation,
JSON, diffs). A document that expands to more than ``TALLY_MAX_DEFINITION_NODES`` nodes, or
refers to itself through an alias, is refused at the line where it blows up.

PyYAML loses positions once a document becomes dicts and lists; ``LineDict`` and
``LineList`` (registry/definitions/lines.py) keep the line of every key and item so that an error deep inside an object
(a jsonschema path, an unknown measure) still points at ``file:line``.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from registry.definitions.issues import IssueSet
from registry.definitions.lines import LineDict, LineList
from tally.errors import UserError

MAX_FILE_BYTES = 5 * 1024 * 1024
MAX_NODES = 250_000
# Longest file name (as given, in UTF-8 bytes) a proposal may carry: most file systems'.
MAX_NAME_BYTES = 255
MAX_TOTAL_BYTES = 200 * 1024 * 1024
YAML_SUFFIXES = (".yml", ".yaml")
# dbt's own configuration files: YAML, but not semantic definitions.
DBT_CONFIG_FILES = {
    "dbt_project.yml", "profiles.yml", "packages.yml", "dependencies.yml", "selectors.yml",
    "package-lock.yml",
}  # fmt: skip
DBT_PROJECT_FILE = "dbt_project.yml"
DBT_DEFAULT_MODEL_PATHS = ("models",)
# Folders a dbt project keeps that never hold hand-written definitions.
SKIP_DIRS = {"target", "dbt_packages", "dbt_modules", "logs", "node_modules", "__pycache__"}


class _DuplicateKey(yaml.MarkedYAMLError):
    pass


class _TooComplex(yaml.MarkedYAMLError):
    """A document expands (through aliases) past the node limit, or into itself."""


def limit_from_env(variable: str, default: int) -> int:
    """A positive integer limit from the environment (checked at start-up by tally.env).

    Example:
        >>> limit_from_env("TALLY_UNSET_LIMIT_FOR_DOCTEST", 7)
        7
    """
    raw = os.environ.get(variable, "").strip()
    return int(raw) if raw.isdigit() and int(raw) > 0 else default


def _size_text(size: int) -> str:
    # "5 MB", "1.5 MB", "2 KB": the limit as people set it.
    unit, scale = ("MB", 2**20) if size >= 2**20 else ("KB", 2**10)
    return f"{size / scale:.1f}".removesuffix(".0") + f" {unit}"


def max_file_bytes() -> int:
    """The size limit of one definitions file (TALLY_MAX_DEFINITION_BYTES)."""
    return limit_from_env("TALLY_MAX_DEFINITION_BYTES", MAX_FILE_BYTES)


def max_nodes() -> int:
    """The most nodes one YAML document may expand to (TALLY_MAX_DEFINITION_NODES)."""
    return limit_from_env("TALLY_MAX_DEFINITION_NODES", MAX_NODES)


def expanded_size_check(root: yaml.Node, limit: int, byte_limit: int | None = None) -> int:
    """The number of nodes ``root`` expands to with every alias written out; raises at the
    innermost collection past ``limit`` nodes (or past ``byte_limit`` bytes of scalar text:
    a few aliases of a long string stay under the node limit and still expand to megabytes),
    or at one that contains itself.

    Iterative, memoised per node: the cost is the composed size, not the expanded one.

    Example:
        >>> expanded_size_check(yaml.compose("a: &x [1, 2]\\nb: [*x, *x]"), 100)
        13
    """
    sizes: dict[int, int] = {}
    weights: dict[int, int] = {}  # expanded bytes of scalar text
    open_nodes: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        children: list[yaml.Node]
        if isinstance(node, yaml.SequenceNode):
            children = list(node.value)
        elif isinstance(node, yaml.MappingNode):
            children = [part for pair in node.value for part in pair]
        else:
            sizes[key] = 1
            weights[key] = len(node.value) if isinstance(node.value, str) else 1
            continue
        if done:
            open_nodes.discard(key)
            size = 1 + sum(sizes[id(child)] for child in children)
            weight = sum(weights[id(child)] for child in children)
            if size > limit:
                raise _TooComplex(
                    None,
                    None,
                    f"this YAML expands to more than {limit:,} nodes (aliases repeat content)",
                    node.start_mark,
                )
            if byte_limit is not None and weight > byte_limit:
                raise _TooComplex(
                    None,
                    None,
                    f"this YAML expands to more than {_size_text(byte_limit)} of text (aliases "
                    "repeat content)",
                    node.start_mark,
                )
            sizes[key] = size
            weights[key] = weight
            continue
        if key in sizes:
            continue
        if key in open_nodes:
            raise _TooComplex(None, None, "an alias refers to its own anchor", node.start_mark)
        open_nodes.add(key)
        stack.append((node, True))
        stack.extend((child, False) for child in children if id(child) not in sizes)
    return sizes[id(root)]


def strings_with_lines(value: Any, line: int = 0) -> Iterator[tuple[int, str]]:
    """Every string (keys included) in a loaded document, with the nearest known line."""
    stack: list[tuple[Any, int]] = [(value, line)]
    while stack:
        item, at = stack.pop()
        if isinstance(item, str):
            yield at, item
        elif isinstance(item, dict):
            lines = getattr(item, "key_lines", {})
            for key, child in item.items():
                child_line = lines.get(key, getattr(item, "line", at))
                stack.append((key, child_line))
                stack.append((child, child_line))
        elif isinstance(item, list):
            lines = getattr(item, "item_lines", [])
            for index, child in enumerate(item):
                stack.append((child, lines[index] if index < len(lines) else at))


# libyaml's C scanner/parser is ~10x faster than PyYAML's pure-Python one; the constructor
# (where lines are recorded) stays in Python either way.
# mypy needs a static base class: it checks against SafeLoader, whose constructor API is the
# same SafeConstructor the C loader uses.
if TYPE_CHECKING:
    _BaseLoader = yaml.SafeLoader
else:
    _BaseLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _LineLoader(_BaseLoader):
    """SafeLoader that records lines and refuses duplicate keys (PyYAML keeps the last one)
    and documents that expand past the node limit."""

    def get_node(self) -> yaml.Node | None:
        # Measured between composing and constructing: nothing has been built yet.
        node = super().get_node()
        if node is not None:
            expanded_size_check(node, max_nodes(), max_file_bytes())
        return node

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> LineDict:
        self.flatten_mapping(node)
        result = LineDict()
        result.line = node.start_mark.line + 1
        result.key_lines = {}
        for key_node, value_node in node.value:
            key = self.construct_object(key_node, deep=True)
            if key in result:
                raise _DuplicateKey(
                    "while constructing a mapping",
                    node.start_mark,
                    f"duplicate key {key!r}",
                    key_node.start_mark,
                )
            result[key] = self.construct_object(value_node, deep=True)
            result.key_lines[key] = key_node.start_mark.line + 1
        return result

    def construct_sequence(self, node: yaml.SequenceNode, deep: bool = False) -> LineList:
        result = LineList(self.construct_object(child, deep=True) for child in node.value)
        result.line = node.start_mark.line + 1
        result.item_lines = [child.start_mark.line + 1 for child in node.value]
        return result


_LineLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _LineLoader.construct_mapping
)
_LineLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _LineLoader.construct_sequence
)


@dataclass(frozen=True)
class SourceFile:
    """One definitions file: its path as shown to users, and its YAML documents."""

    path: str
    documents: tuple[Any, ...]
    text: str


def file_name_check(name: str) -> None:
    """Refuses a definitions file name no file system takes (a NUL or other control
    character, more than 255 bytes) with a clear error instead of an OSError later.

    Example:
        >>> file_name_check("metrics/revenue.yml")
        >>> file_name_check("a\\x00.yml")
        Traceback (most recent call last):
        ...
        tally.errors.UserError: file name 'a\\x00.yml' contains a control character
    """
    shown = repr(name[:60] + ("…" if len(name) > 60 else ""))
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in name):
        problem, hint = "contains a control character", "use letters, digits, - _ . and /"
    elif len(name.encode("utf-8")) > MAX_NAME_BYTES:
        problem = f"is longer than {MAX_NAME_BYTES} bytes"
        hint = "use a shorter name (folders included)"
    else:
        return
    raise UserError(
        f"file name {shown} {problem}", code="bad_file_name", hint=hint, location="files"
    )


@dataclass(frozen=True)
class DbtProject:
    """A dbt project root: the folders dbt reads YAML from (``model-paths``, default
    ``models``), and what was wrong with ``dbt_project.yml`` if anything."""

    model_paths: tuple[Path, ...]
    problem: str | None = None
    line: int = 0


def dbt_project_at(root: Path) -> DbtProject | None:
    """The dbt project rooted at ``root`` (it holds dbt_project.yml), else None.

    Example:
        >>> dbt_project_at(Path("/nonexistent")) is None
        True
    """
    project_file = root / DBT_PROJECT_FILE
    if not root.is_dir() or not project_file.is_file():
        return None
    default = tuple(root / p for p in DBT_DEFAULT_MODEL_PATHS)
    try:
        config = yaml.safe_load(project_file.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 0
        return DbtProject(default, f"{DBT_PROJECT_FILE} is not readable YAML: {exc}", line)
    paths = (
        config.get("model-paths", config.get("source-paths")) if isinstance(config, dict) else None
    )
    if paths is None:
        return DbtProject(default)
    if not isinstance(paths, list) or not all(isinstance(p, str) and p for p in paths):
        return DbtProject(default, f"model-paths in {DBT_PROJECT_FILE} must be a list of folders")
    resolved = []
    for path in paths:
        target = (root / path).resolve()
        if not target.is_relative_to(root.resolve()):
            return DbtProject(default, f"model-paths entry {path!r} points outside the project")
        resolved.append(root / path)
    return DbtProject(tuple(resolved))


def _walk_yaml(folder: Path) -> list[Path]:
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS and not d.startswith("."))
        found.extend(
            Path(dirpath) / f
            for f in sorted(filenames)
            if f.endswith(YAML_SUFFIXES) and f not in DBT_CONFIG_FILES
        )
    return found


def discover_files(root: Path) -> list[Path]:
    """Every definitions file under ``root`` (or ``root`` itself), in a stable order.

    A dbt project root (it holds ``dbt_project.yml``) is read as dbt reads it: the YAML under
    its ``model-paths`` only, so that Taskfile.yml, .pre-commit-config.yaml, meltano.yml and
    the like beside it are never taken for definitions.
    """
    if root.is_file():
        return [root]
    dbt = dbt_project_at(root)
    if dbt is None:
        return _walk_yaml(root)
    return [path for folder in dbt.model_paths if folder.is_dir() for path in _walk_yaml(folder)]


def display_path(path: Path, root: Path) -> str:
    """The path users see in messages: relative to the folder they passed when possible."""
    base = root if root.is_dir() else root.parent
    try:
        return str(path.relative_to(base.parent if base.name else base))
    except ValueError:
        return str(path)


class FileRefused(Exception):
    """A definitions file that is not read: ``code``, ``message`` and ``hint`` say why."""

    def __init__(self, code: str, message: str, hint: str) -> None:
        super().__init__(message)
        self.code, self.message, self.hint = code, message, hint


def read_file_bytes(path: Path, limit: int) -> bytes:
    """THE way Tally reads a definitions file: a regular file only (not a FIFO, device or
    socket, even behind a symlink), its size checked before reading and again while reading
    (a file that grows, or lies in stat, stops at ``limit + 1`` bytes), opened non-blocking
    so a FIFO swapped in after the check cannot hang the reader.

    Raises:
        FileRefused: not readable, not a regular file, or larger than ``limit`` bytes.
    """
    try:
        info = os.stat(path)  # follows symlinks: a loop or a dangling link raises here
    except OSError as exc:
        raise FileRefused(
            "unreadable_file",
            f"cannot read this file: {exc.strerror or exc}",
            "a symlink loop or a link to nothing: fix or remove the link",
        ) from exc
    if not stat.S_ISREG(info.st_mode):
        raise FileRefused(
            "not_a_regular_file",
            "not a regular file (a FIFO, device, socket or folder named .yml)",
            "definitions must be plain files; remove or rename this entry",
        )
    too_large = FileRefused(
        "file_too_large",
        f"file is {info.st_size / 1024 / 1024:.1f} MB; the limit for one definitions file is "
        f"{_size_text(limit)}",
        "split it into several files (one per semantic model or domain); the limit is "
        "TALLY_MAX_DEFINITION_BYTES",
    )
    if info.st_size > limit:
        raise too_large
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        raise FileRefused("unreadable_file", f"cannot open this file: {exc.strerror or exc}",
                          "check its permissions") from exc  # fmt: skip
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):  # swapped between stat and open
            raise FileRefused("not_a_regular_file", "not a regular file",
                              "definitions must be plain files")  # fmt: skip
        chunks: list[bytes] = []
        read = 0
        while read <= limit:
            chunk = os.read(fd, min(1 << 20, limit + 1 - read))
            if not chunk:
                break
            chunks.append(chunk)
            read += len(chunk)
        if read > limit:
            raise too_large
        return b"".join(chunks)
    finally:
        os.close(fd)


def control_character_check(text: str) -> tuple[int, str] | None:
    """The (line, description) of the first control character a definition may not hold
    (NUL and the other C0 controls but tab, newline and carriage return; DEL; C1), or None.

    Example:
        >>> control_character_check("a: 1\\nb: x\\x00y")
        (2, 'NUL (U+0000)')
    """
    for index, ch in enumerate(text):
        code = ord(ch)
        if (code < 32 and ch not in "\t\n\r") or 127 <= code < 160:
            name = "NUL" if code == 0 else "control character"
            return text.count("\n", 0, index) + 1, f"{name} (U+{code:04X})"
    return None


def read_yaml_file(path: Path, shown_as: str, issues: IssueSet) -> SourceFile | None:
    """Reads and parses one file, recording (not raising) size, encoding and YAML errors."""
    try:
        raw = read_file_bytes(path, max_file_bytes())
    except FileRefused as refused:
        issues.add(refused.code, refused.message, file=shown_as, hint=refused.hint)
        return None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        issues.add(
            "not_utf8",
            f"byte 0x{raw[exc.start]:02x} at offset {exc.start} is not valid UTF-8",
            file=shown_as,
            line=line,
            hint="save the file as UTF-8",
        )
        return None
    found = control_character_check(text)
    if found is not None:
        issues.add(
            "control_character", f"the file holds a {found[1]}", file=shown_as, line=found[0],
            hint="remove it: definitions are text, and PostgreSQL refuses NUL in text",
        )  # fmt: skip
        return None
    try:
        documents = tuple(d for d in yaml.load_all(text, Loader=_LineLoader) if d is not None)
    except _TooComplex as exc:
        mark = exc.problem_mark
        issues.add(
            "yaml_too_complex",
            exc.problem or "this YAML expands too far",
            file=shown_as,
            line=mark.line + 1 if mark is not None else 0,
            hint="write the repeated content out or use fewer aliases; the limit per document "
            "is TALLY_MAX_DEFINITION_NODES",
        )
        return None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 0
        problem = exc.problem or "malformed YAML"
        issues.add(
            "yaml_syntax",
            f"{problem} ({exc.context})" if exc.context and "duplicate" in problem else problem,
            file=shown_as,
            line=line,
            hint=(
                "remove or rename the repeated key"
                if "duplicate" in problem
                else "check indentation and quoting on this line and the one above"
            ),
        )
        return None
    except yaml.YAMLError as exc:
        issues.add("yaml_syntax", str(exc), file=shown_as)
        return None
    # An escape ("\\0", "\\x01") puts a control character in a value the raw text lacks.
    for document in documents:
        for line, value in strings_with_lines(document):
            found = control_character_check(value)
            if found is not None:
                issues.add(
                    "control_character", f"a value holds a {found[1]}", file=shown_as, line=line,
                    hint="remove the escape: definitions are text, and PostgreSQL refuses NUL",
                )  # fmt: skip
                return None
    return SourceFile(shown_as, documents, text)


def tree_digest(root: Path, extra: bytes = b"") -> str:
    """SHA-256 over every definitions file's path and bytes, the parser's versions, and
    ``extra`` (what else decides the definitions: a dbt project's profile target).

    Identical bytes parsed by the same versions give identical definitions, so a sync whose
    digest equals the latest release's can stop before parsing anything.
    """
    from importlib.metadata import version

    digest = hashlib.sha256()
    for package in ("tally", "dbt-semantic-interfaces", "open-data-contract-standard"):
        digest.update(f"{package}={version(package)}\n".encode())
    if extra:
        digest.update(extra + b"\0")
    if root.exists():
        for path in discover_files(root):
            digest.update(display_path(path, root).encode("utf-8") + b"\0")
            try:
                digest.update(read_file_bytes(path, max_file_bytes()) + b"\0")
            except FileRefused as refused:  # read_tree reports it; the digest just differs
                digest.update(f"refused:{refused.code}".encode() + b"\0")
    return digest.hexdigest()


def _size_or_zero(path: Path) -> int:
    # A link to nothing or a loop is reported by read_yaml_file, file by file.
    try:
        return os.stat(path).st_size
    except OSError:
        return 0


def read_tree(root: Path, issues: IssueSet) -> Iterator[SourceFile]:
    """Reads every YAML file under ``root``; problems go to ``issues``."""
    if not root.exists():
        issues.add("no_such_path", f"{root} does not exist", file=str(root))
        return
    dbt = dbt_project_at(root)
    if dbt is not None and dbt.problem is not None:
        issues.add(
            "dbt_project",
            dbt.problem,
            file=display_path(root / DBT_PROJECT_FILE, root),
            line=dbt.line,
            hint="fix dbt_project.yml (dbt refuses it too); Tally read the default models/",
        )
    files = discover_files(root)
    if not files:
        where = (
            " or ".join(str(p.relative_to(root)) + "/" for p in dbt.model_paths)
            if dbt is not None
            else ""
        )
        issues.add(
            "empty_folder",
            f"no .yml or .yaml files under {root}"
            + (f" (a dbt project: read {where}, its model-paths)" if dbt else ""),
            file=str(root),
            hint="point at the folder that holds semantic_models:, metrics: and contracts",
        )
        return
    total = sum(_size_or_zero(p) for p in files)
    if total > MAX_TOTAL_BYTES:
        issues.add(
            "project_too_large",
            f"{total / 1024 / 1024:.0f} MB of YAML; the limit is {MAX_TOTAL_BYTES // 2**20} MB",
            file=str(root),
        )
        return
    for path in files:
        source = read_yaml_file(path, display_path(path, root), issues)
        if source is not None:
            yield source
