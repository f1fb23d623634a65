"""The audit log in the admin: read only, filterable by action, door, queue and actor.

Kept out of sqs_app/admin (rewritten as a package for the staff console) and
registered from SqsAppConfig.ready().
"""

from django.contrib import admin

from .models import AuditEntry


class AuditEntryAdmin(admin.ModelAdmin):
    list_display = ("at", "actor", "action", "via", "queue", "count", "succeeded")
    list_filter = ("action", "via", "succeeded", "queue", ("at", admin.DateFieldListFilter))
    search_fields = ("actor", "queue", "message_ids")
    date_hierarchy = "at"
    ordering = ("-at", "-id")
    readonly_fields = [field.name for field in AuditEntry._meta.fields]
    list_per_page = 100
    # The admin's COUNT(*) over a large log is not worth a slow page.
    show_full_result_count = False

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


def register(site: admin.AdminSite | None = None) -> None:
    site = site or admin.site
    if not site.is_registered(AuditEntry):
        site.register(AuditEntry, AuditEntryAdmin)
