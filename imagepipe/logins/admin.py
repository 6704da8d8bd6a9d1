"""Staff unlock locked-out logins and revoke API tokens; deactivating a user revokes theirs."""

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin

from .models import ApiToken, LoginFailures


class ListOnlyAdmin(admin.ModelAdmin):
    """Rows the logins write: staff list them and act on them, never add or edit one."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)  # each admin names its own verb for a deletion
        return actions


@admin.action(description="Unlock the selected logins (their failures are forgotten)", permissions=["delete"])
def unlock(modeladmin, request, queryset):
    unlocked, _ = queryset.delete()
    modeladmin.message_user(request, f"{unlocked} login(s) unlocked")


@admin.register(LoginFailures)
class LockedOutLoginAdmin(ListOnlyAdmin):
    """The usernames locked out from an address now: the row's failures and when the wait ends."""

    list_display = ["username", "address", "failures", "until"]
    search_fields = ["username", "address"]
    ordering = ["-until"]
    actions = [unlock]

    def get_queryset(self, request):
        return LoginFailures.objects.locked()


@admin.action(description="Revoke the selected tokens", permissions=["delete"])
def revoke_tokens(modeladmin, request, queryset):
    revoked, _ = queryset.delete()
    modeladmin.message_user(request, f"{revoked} token(s) revoked")


@admin.register(ApiToken)
class ApiTokenAdmin(ListOnlyAdmin):
    list_display = ["user", "created", "expires"]
    list_filter = ["created"]
    list_select_related = ["user"]
    search_fields = ["user__username"]
    fields = ["user", "created", "expires"]  # not the digest: it is no use to anyone
    readonly_fields = ["user", "created", "expires"]
    actions = [revoke_tokens]


@admin.action(description="Revoke the selected users' API tokens")
def revoke_users_tokens(modeladmin, request, queryset):
    revoked, _ = ApiToken.objects.filter(user__in=queryset).delete()
    modeladmin.message_user(request, f"{revoked} token(s) revoked")


User = get_user_model()
admin.site.unregister(User)


@admin.register(User)
class UserWithTokensAdmin(UserAdmin):
    """Django's user admin, with the users' API tokens: revoked by an action, or by deactivating."""

    actions = [revoke_users_tokens]

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        if not obj.is_active:
            # A deactivated user's tokens are refused anyway; deleted, they stay dead if the
            # account comes back.
            ApiToken.objects.filter(user=obj).delete()
