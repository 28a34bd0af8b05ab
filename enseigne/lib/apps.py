from django.apps import AppConfig


class LibConfig(AppConfig):
    name = "enseigne.lib"
    label = "lib"

    def ready(self) -> None:
        from django.db.backends.signals import connection_created

        from enseigne.lib import lookups  # noqa: F401  (registers field__any)
        from enseigne.lib.rowsecurity import switch_to_app_role

        # Infrastructure hook (not business behaviour): every PostgreSQL connection acts
        # as the unprivileged application role so row-level security applies.
        connection_created.connect(switch_to_app_role, dispatch_uid="enseigne-app-role")
