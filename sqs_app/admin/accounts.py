"""Users, groups (with their queue grants) and JWT tokens, in the console's style (django-unfold)."""

from django.contrib import admin
from django.contrib.auth.admin import GroupAdmin as BaseGroupAdmin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.contrib.auth.models import Group, User
from rest_framework_simplejwt.token_blacklist import admin as token_admin
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken
from unfold.admin import ModelAdmin, TabularInline
from unfold.forms import AdminPasswordChangeForm, UserChangeForm, UserCreationForm

from ..models import QueueGrant

for model in (User, Group, OutstandingToken, BlacklistedToken):
    if admin.site.is_registered(model):
        admin.site.unregister(model)


@admin.register(User)
class UserAdmin(BaseUserAdmin, ModelAdmin):
    form = UserChangeForm
    add_form = UserCreationForm
    change_password_form = AdminPasswordChangeForm


class QueueGrantInline(TabularInline):
    """A group's queue grants: its members' queue actions are limited to these queues
    (none: every queue). See sqs_app.permissions."""

    model = QueueGrant
    extra = 0
    verbose_name = "queue grant"
    verbose_name_plural = "queue grants (none: every queue; otherwise only these)"


@admin.register(Group)
class GroupAdmin(BaseGroupAdmin, ModelAdmin):
    inlines = [QueueGrantInline]


# simplejwt's refresh tokens (read only there already): the same pages, the console's look.
@admin.register(OutstandingToken)
class OutstandingTokenAdmin(token_admin.OutstandingTokenAdmin, ModelAdmin):
    pass


@admin.register(BlacklistedToken)
class BlacklistedTokenAdmin(token_admin.BlacklistedTokenAdmin, ModelAdmin):
    pass
