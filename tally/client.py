"""Python client of Tally's HTTP API: metric queries as DataFrames, through Arrow.

    from tally.client import Tally

    tally = Tally("https://tally.example.com", token="tly_…")
    df = tally.query(metrics=["revenue"], group_by=["metric_time__month", "account__plan"],
                     where=["{{ Dimension('account__region') }} = 'EMEA'"])
    tally.compile(metrics=["revenue"], group_by=["metric_time__month"]).sql
    tally.metrics()                 # [{"name": "revenue", …}, …]
    tally.dimensions("revenue")     # ["account__plan", "metric_time__month", …]

Results travel as an Arrow IPC stream (``POST /api/v1/query?format=arrow``) and become a
pandas DataFrame (default, ``pip install 'tally[pandas]'``) or a polars one
(``frame="polars"``, ``pip install 'tally[polars]'``); ``frame="arrow"`` returns the
``pyarrow.Table``. Every error the API answers with is raised as :class:`TallyApiError`
carrying its code, message and hint. Needs only ``requests`` and ``pyarrow``; no Django.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import requests

ARROW_MEDIA_TYPE = "application/vnd.apache.arrow.stream"
Frame = Literal["pandas", "polars", "arrow"]


class TallyApiError(Exception):
    """An error answer of the API (or a transport failure), with the API's own text."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        hint: str | None = None,
        location: str | None = None,
    ) -> None:
        detail = f"{message} (hint: {hint})" if hint else message
        super().__init__(f"[{code}] {detail}" if code else detail)
        self.message = message
        self.status = status
        self.code = code
        self.hint = hint
        self.location = location


class TruncatedResult(TallyApiError):
    """The server's row cap cut the result off; narrow the query or add a limit."""


@dataclass(frozen=True)
class Compiled:
    sql: str
    dialect: str
    columns: list[str]
    release: str
    versions: dict[str, str]


class Tally:
    """A connection to one Tally server.

    Args:
        url: the server's base URL (``http://127.0.0.1:8000``).
        token: an API token, sent as ``Authorization: Bearer <token>``.
        username, password: HTTP basic credentials instead of a token (servers without
            token support, scripts run by a person).
        timeout: seconds per request.
    """

    def __init__(
        self,
        url: str,
        token: str | None = None,
        *,
        username: str | None = None,
        password: str | None = None,
        timeout: float = 300,
    ) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.session = requests.Session()
        self._authorize(token, username, password)

    def _authorize(self, token: str | None, username: str | None, password: str | None) -> None:
        # The only place credentials are attached to requests.
        if token:
            self.session.headers["Authorization"] = f"Bearer {token}"
        elif username is not None:
            self.session.auth = (username, password or "")

    # ------------------------------------------------------------------ requests

    def _request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        try:
            response = self.session.request(
                method, f"{self.url}/api/v1/{path}", timeout=self.timeout, **kwargs
            )
        except requests.RequestException as exc:
            raise TallyApiError(f"cannot reach Tally at {self.url}: {exc}") from exc
        if response.status_code >= 400:
            raise _api_error(response)
        return response

    @staticmethod
    def _body(
        metrics: Sequence[str],
        group_by: Sequence[str],
        where: Sequence[str],
        order_by: Sequence[str],
        limit: int | None,
        start_time: str | None,
        end_time: str | None,
        release: str | None,
        saved_query: str | None,
        having: Sequence[str] = (),
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "metrics": list(metrics),
            "group_by": list(group_by),
            "where": list(where),
            "order_by": list(order_by),
        }
        if having:
            body["having"] = list(having)
        optional = {
            "limit": limit,
            "start_time": start_time,
            "end_time": end_time,
            "release": release,
            "saved_query": saved_query,
        }
        body.update({k: v for k, v in optional.items() if v is not None})
        return body

    # ------------------------------------------------------------------ operations

    def query(
        self,
        metrics: Sequence[str] = (),
        group_by: Sequence[str] = (),
        where: Sequence[str] = (),
        order_by: Sequence[str] = (),
        limit: int | None = None,
        *,
        start_time: str | None = None,
        end_time: str | None = None,
        release: str | None = None,
        saved_query: str | None = None,
        having: Sequence[str] = (),
        frame: Frame = "pandas",
    ) -> Any:
        """Runs a metric query; returns a pandas (default) or polars DataFrame, or an Arrow
        table. Raises TruncatedResult when the server's row cap cut the result."""
        import pyarrow as pa

        body = self._body(
            metrics,
            group_by,
            where,
            order_by,
            limit,
            start_time,
            end_time,
            release,
            saved_query,
            having,
        )
        response = self._request(
            "POST",
            "query?format=arrow",
            json=body,
            headers={"Accept": ARROW_MEDIA_TYPE},
            stream=True,
        )
        with response:
            response.raw.decode_content = True
            try:
                reader = pa.ipc.open_stream(response.raw)
                batches = []
                metadata: dict[bytes, bytes] = {}
                while True:
                    try:
                        batch, custom = reader.read_next_batch_with_custom_metadata()
                    except StopIteration:
                        break
                    batches.append(batch)
                    if custom is not None:
                        metadata = dict(custom)
            except (pa.ArrowInvalid, OSError) as exc:
                raise TallyApiError(f"the result stream broke off: {exc}") from exc
        if metadata.get(b"tally.truncated") == b"true":
            raise TruncatedResult(
                f"the result has more rows than the server's cap "
                f"({metadata.get(b'tally.rows', b'?').decode()} sent)",
                code="truncated",
                hint="add a limit, a coarser grain or a filter",
            )
        table = pa.Table.from_batches(batches, schema=reader.schema)
        return _frame(table, frame)

    def compile(
        self,
        metrics: Sequence[str] = (),
        group_by: Sequence[str] = (),
        where: Sequence[str] = (),
        order_by: Sequence[str] = (),
        limit: int | None = None,
        *,
        start_time: str | None = None,
        end_time: str | None = None,
        release: str | None = None,
        saved_query: str | None = None,
        having: Sequence[str] = (),
        dialect: str | None = None,
    ) -> Compiled:
        """The SQL Tally runs for a query (for ``dialect``, default the warehouse's)."""
        body = self._body(
            metrics,
            group_by,
            where,
            order_by,
            limit,
            start_time,
            end_time,
            release,
            saved_query,
            having,
        )
        if dialect:
            body["dialect"] = dialect
        data = self._request("POST", "compile", json=body).json()
        return Compiled(
            sql=data["sql"],
            dialect=data["dialect"],
            columns=list(data["columns"]),
            release=data["release"],
            versions=dict(data["versions"]),
        )

    def metrics(self) -> list[dict[str, Any]]:
        """Every metric of the latest release (name, type, description, owner…)."""
        items: list[dict[str, Any]] = []
        path: str | None = "metrics?limit=500"
        while path:
            data = self._request("GET", path).json()
            if isinstance(data, list):
                return data
            items.extend(data.get("results", []))
            following = data.get("next")
            path = following.split("/api/v1/", 1)[1] if following else None
        return items

    def dimensions(self, metric: str, *, release: str | None = None) -> list[str]:
        """What ``metric`` can be grouped by (and filtered on)."""
        params = {"release": release} if release else None
        data = self._request("GET", f"metrics/{metric}/dimensions", params=params).json()
        return list(data["group_by"])


def _frame(table: Any, frame: Frame) -> Any:
    if frame == "arrow":
        return table
    if frame == "polars":
        import polars as pl

        return pl.from_arrow(table)
    if frame == "pandas":
        return table.to_pandas()
    raise ValueError(f"frame must be pandas, polars or arrow, not {frame!r}")


def _api_error(response: requests.Response) -> TallyApiError:
    try:
        error = response.json().get("error") or {}
    except ValueError:
        error = {}
    if not isinstance(error, dict) or not error.get("message"):
        text = response.text.strip().splitlines()[0] if response.text.strip() else response.reason
        return TallyApiError(f"HTTP {response.status_code}: {text}", status=response.status_code)
    return TallyApiError(
        str(error["message"]),
        status=response.status_code,
        code=error.get("code"),
        hint=error.get("hint"),
        location=error.get("location"),
    )
