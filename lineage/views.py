from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from lineage.selectors import lineage_node_list
from lineage.ui_selectors import lineage_impact_get, lineage_view_get, node_page_url
from tally.ui import is_htmx

MAX_DEPTH = 4


def _depth(request: HttpRequest) -> int:
    text = request.GET.get("depth", "")
    return min(max(int(text), 1), MAX_DEPTH) if text.isdigit() else 2


@login_required
@require_GET
def lineage(request: HttpRequest) -> HttpResponse:
    node = request.GET.get("node", "").strip()[:500]
    context = {"node": node, "depth": _depth(request), "depths": range(1, MAX_DEPTH + 1)}
    if node:
        context["graph"] = lineage_view_get(
            node=node, depth=context["depth"], expand=request.GET.getlist("expand")[:20]
        )
    template = "lineage/_graph.html" if is_htmx(request) and node else "lineage/explorer.html"
    return render(request, template, context)


@login_required
@require_GET
def lineage_impact(request: HttpRequest) -> HttpResponse:
    node = request.GET.get("node", "").strip()[:500]
    context: dict[str, object] = {"node": node}
    if node:
        report = lineage_impact_get(node=node)
        context["report"] = report
        context["metrics"] = [(m, node_page_url(m)) for m in report.impact.metrics]
    return render(request, "lineage/impact.html", context)


@login_required
@require_GET
def lineage_nodes(request: HttpRequest) -> HttpResponse:
    # Suggestions for the node box (a <datalist>), as the user types.
    text = request.GET.get("node", "").strip()[:200]
    nodes = lineage_node_list(q=text, limit=30) if len(text) >= 2 else []
    return render(request, "lineage/_node_options.html", {"nodes": nodes})
