"""Web pages of client users (not the API): setting a password from the one-time link that onboarding e-mails.

Django's password-reset confirmation does the work: the link's token is checked, moved into the session and
the URL redirected (so the token does not leak through the Referer header), and it stops working once the
password is set. The new password goes through ``AUTH_PASSWORD_VALIDATORS``.
"""

from django.contrib.auth import views as auth_views
from django.urls import reverse_lazy


class SetPasswordView(auth_views.PasswordResetConfirmView):
    template_name = "accounts/set_password.html"
    success_url = reverse_lazy("client-set-password-done")
    post_reset_login = False


class SetPasswordDoneView(auth_views.PasswordResetCompleteView):
    template_name = "accounts/set_password_done.html"
