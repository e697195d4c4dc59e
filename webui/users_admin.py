"""User management for admins (/settings/users): list, add, reset a password, grant or take
admin rights, remove a user who owns nothing.

Registered on the settings blueprint by `register`, so the endpoints are settings.users,
settings.user, ... Every view answers 404 to non-admins, direct POSTs included: a member
learns nothing about who else uses homecal.
"""

from __future__ import annotations

from collections.abc import Callable

from flask import Blueprint, flash, g, redirect, url_for
from werkzeug.wrappers import Response

from daemon.errors import UsageError
from daemon.store import users
from daemon.store.users import User
from webui.forms import as_sentence
from webui.sessions import login_user
from webui.settings_forms import AddUserForm, ConfirmForm, RemoveUserForm, ResetPasswordForm
from webui.state import get_store

#: how the tables that point at users are named to people ("2 calendar accounts")
OWNED_LABELS = {
    "accounts": ("calendar account", "calendar accounts"),
    "rules": ("sync rule", "sync rules"),
    "booking_links": ("booking link", "booking links"),
}


def describe_owned(counts: dict[str, int]) -> str:
    """{"accounts": 2, "rules": 1} -> "2 calendar accounts and 1 sync rule"."""
    parts = []
    for table, n in sorted(counts.items()):
        one, many = OWNED_LABELS.get(table, (f"{table} entry", f"{table} entries"))
        parts.append(f"{n} {one if n == 1 else many}")
    if len(parts) <= 1:
        return "".join(parts) or "nothing"
    return ", ".join(parts[:-1]) + " and " + parts[-1]


def register(bp: Blueprint, *, render: Callable[..., str],
             admin_required: Callable[[int], Callable]) -> None:
    """Add the user-management views to the settings blueprint."""
    admin_only = admin_required(404)

    def _user_page(user: User, reset_form: ResetPasswordForm | None = None,
                   remove_form: RemoveUserForm | None = None, error: str | None = None) -> str:
        store = get_store()
        things = users.owned(store, user.id)
        return render(
            "settings/user.html", user=user, owned=describe_owned(things), owns_anything=bool(things),
            last_admin=user.is_admin and users.admin_count(store) <= 1,
            reset_form=reset_form or ResetPasswordForm(formdata=None),
            remove_form=remove_form or RemoveUserForm(formdata=None),
            role_form=ConfirmForm(formdata=None), error=error,
        )

    @bp.route("/users", methods=["GET", "POST"], endpoint="users")
    @admin_only
    def users_page() -> Response | str:
        store = get_store()
        form = AddUserForm()
        if form.validate_on_submit():
            try:
                user = users.create(store, form.username.data, form.password.data, is_admin=form.is_admin.data)
            except UsageError as err:  # e.g. the name is taken
                form.username.errors.append(as_sentence(str(err)))
            else:
                flash(f"User {user.username} was added. They can log in with the initial password now.", "success")
                return redirect(url_for("settings.users"))
        rows = [(u, describe_owned(users.owned(store, u.id))) for u in users.all_users(store)]
        return render("settings/users.html", rows=rows, form=form)

    @bp.route("/users/<int:user_id>")
    @admin_only
    def user(user_id: int) -> str:
        return _user_page(users.get(get_store(), user_id))

    @bp.route("/users/<int:user_id>/password", methods=["POST"])
    @admin_only
    def reset_password(user_id: int) -> Response | str:
        store = get_store()
        target = users.get(store, user_id)
        form = ResetPasswordForm()
        if not form.validate_on_submit():
            return _user_page(target, reset_form=form)
        updated = users.set_password(store, user_id, form.password.data)
        if updated.id == g.user.id:
            login_user(updated)  # resetting one's own password must not log oneself out here
        flash(f"The password of {target.username} was changed; their other sessions were logged out.", "success")
        return redirect(url_for("settings.user", user_id=user_id))

    def _set_admin(user_id: int, is_admin: bool) -> Response | str:
        store = get_store()
        target = users.get(store, user_id)
        try:
            updated = users.set_admin(store, user_id, is_admin)
        except UsageError as err:
            return _user_page(target, error=as_sentence(str(err)))
        if updated.id == g.user.id and not is_admin:
            flash("You are no longer an admin.", "info")
            return redirect(url_for("settings.index"))
        flash(f"{updated.username} is {'now an admin' if is_admin else 'no longer an admin'}.", "success")
        return redirect(url_for("settings.user", user_id=user_id))

    @bp.route("/users/<int:user_id>/grant-admin", methods=["POST"])
    @admin_only
    def grant_admin(user_id: int) -> Response | str:
        return _set_admin(user_id, True)

    @bp.route("/users/<int:user_id>/revoke-admin", methods=["POST"])
    @admin_only
    def revoke_admin(user_id: int) -> Response | str:
        return _set_admin(user_id, False)

    @bp.route("/users/<int:user_id>/remove", methods=["POST"])
    @admin_only
    def remove_user(user_id: int) -> Response | str:
        store = get_store()
        target = users.get(store, user_id)
        form = RemoveUserForm()
        if not form.validate_on_submit():
            return _user_page(target, remove_form=form)
        things = users.owned(store, user_id)
        if things:
            return _user_page(target, remove_form=form, error=(
                f"{target.username} still owns {describe_owned(things)}. "
                "Ask them to remove those first: only they can see them."))
        try:
            users.remove(store, user_id)
        except UsageError as err:  # the last admin, or something was added meanwhile
            return _user_page(target, remove_form=form, error=as_sentence(str(err)))
        flash(f"User {target.username} was removed.", "success")
        if target.id == g.user.id:
            return redirect(url_for("auth.login"))
        return redirect(url_for("settings.users"))
