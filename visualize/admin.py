"""Read-only Django admin for persisted pull events. Login is enforced by the admin site."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from visualize.models import PullRecord


@admin.register(PullRecord)
class PullRecordAdmin(admin.ModelAdmin):
    list_display = (
        "time",
        "direction",
        "peer",
        "kind",
        "key",
        "registry",
        "status",
        "size",
        "duration_ms",
        "method",
    )
    list_filter = ("direction", "status", "kind", "peer", "registry", "method")
    search_fields = ("key",)
    date_hierarchy = "time"
    ordering = ("-time", "-id")
    list_per_page = 100
    show_full_result_count = False  # COUNT(*) over a large history on every page is wasted work

    @admin.display(description="bytes", ordering="bytes")
    def size(self, obj: PullRecord) -> int:
        return obj.bytes

    @admin.display(description="duration (ms)", ordering="duration")
    def duration_ms(self, obj: PullRecord) -> str:
        return f"{obj.duration * 1000:.1f}"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: PullRecord | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: PullRecord | None = None) -> bool:
        return False
