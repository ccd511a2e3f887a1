"""Visualize pages on the admin port: the live graph, its JSON, and the measure page."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any

from django.conf import settings
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseBadRequest,
    HttpResponseNotModified,
    JsonResponse,
)
from django.shortcuts import render
from django.utils.cache import patch_cache_control
from django.views.decorators.http import require_GET

from visualize.graph import Direction, counters, etag, parse_direction
from visualize.hooks import measure_hooks
from visualize.measure import Measurer
from visualize.store import get_store

AsyncView = Callable[..., Awaitable[HttpResponse]]


def enabled_only(view: AsyncView) -> AsyncView:
    """404 unless ``--visualize-enabled``: as in the seed, the page is off by default."""

    @functools.wraps(view)
    async def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not settings.SPEGEL.visualize_enabled:
            raise Http404("visualize is disabled")
        return await view(request, *args, **kwargs)

    return wrapper


@require_GET
@enabled_only
async def index(request: HttpRequest) -> HttpResponse:
    try:
        direction = parse_direction(request.GET.get("direction"))
    except ValueError:
        direction = Direction.BOTH
    _, graph = get_store().snapshot(direction)
    context = {
        "direction": direction.value,
        "directions": [d.value for d in Direction],
        "counters": counters(graph),
        "nav": "graph",
    }
    return render(request, "visualize/index.html", context)


@require_GET
@enabled_only
async def graph(request: HttpRequest) -> HttpResponse:
    try:
        direction = parse_direction(request.GET.get("direction"))
    except ValueError as exc:
        return HttpResponseBadRequest(str(exc), content_type="text/plain")
    version, data = get_store().snapshot(direction)
    tag = etag(direction, version)
    if tag in _if_none_match(request):
        response: HttpResponse = HttpResponseNotModified()
    else:
        response = JsonResponse(data)
    response["ETag"] = tag
    patch_cache_control(response, no_cache=True)
    return response


def _if_none_match(request: HttpRequest) -> set[str]:
    header = request.headers.get("If-None-Match", "")
    return {part.strip().removeprefix("W/") for part in header.split(",") if part.strip()}


@require_GET
@enabled_only
async def measure(request: HttpRequest) -> HttpResponse:
    image = request.GET.get("image", "").strip()
    hooks = measure_hooks()
    result = None
    if image and hooks.ready:
        assert hooks.resolve is not None
        measurer = Measurer(
            hooks.resolve,
            hooks.registry_url,
            store=get_store(),
            timeout=float(getattr(settings, "VISUALIZE_MEASURE_TIMEOUT", 30.0)),
        )
        result = await measurer.measure(image)
    if request.GET.get("format") == "json":
        if result is None:
            error = "measure is not available yet" if image else "image is required"
            return JsonResponse({"error": error}, status=503 if image else 400)
        return JsonResponse(result.as_dict())
    context = {"image": image, "available": hooks.ready, "result": result, "nav": "measure"}
    return render(request, "visualize/measure.html", context)
