"""The console's own pages, added to a ModelAdmin's URLs beside Django's (messages.py, runs.py)."""

from django.urls import path


def page_path(model_admin, route: str, page, *, name: str):
    """`path()` for one of the console's pages: `page(model_admin, request, **the route's values)`.

    Behind the admin site's login and CSRF checks (admin_view), as Django's own
    admin pages are; each page still checks its own permission (guards).
    """
    view = model_admin.admin_site.admin_view(lambda request, **values: page(model_admin, request, **values))
    return path(route, view, name=name)
