from django.urls import path

from accounts import views

urlpatterns = [
    path("set-password/<uidb64>/<token>/", views.SetPasswordView.as_view(), name="client-set-password"),
    path("set-password/done/", views.SetPasswordDoneView.as_view(), name="client-set-password-done"),
]
