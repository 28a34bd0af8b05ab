from django.contrib.auth import views as auth_views
from django.urls import path

from enseigne.network import profile, views

urlpatterns = [
    path(
        "login/",
        auth_views.LoginView.as_view(
            template_name="network/login.html", redirect_authenticated_user=True
        ),
        name="login",
    ),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path(".well-known/security.txt", views.security_txt, name="security_txt"),
    path("", views.home, name="home"),
    path("profile/", profile.profile, name="profile"),
    path(
        "profile/tokens/<uuid:public_id>/revoke/",
        profile.token_revoke_view,
        name="token_revoke",
    ),
    path("hq/nodes/new/", views.node_create, name="node_create"),
    path("hq/users/", views.users, name="users"),
    path("hq/users/<uuid:public_id>/", views.user_detail, name="user_detail"),
    path("hq/roles/", views.roles, name="roles"),
    path("hq/audit/", views.audit_log, name="audit_log"),
    path("units/<uuid:public_id>/edit/", views.unit_edit, name="unit_edit"),
]
