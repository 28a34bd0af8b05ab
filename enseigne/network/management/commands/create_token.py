from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from enseigne.lib.rowsecurity import ALL, db_scope
from enseigne.network.models import TokenScope, User
from enseigne.network.tokens import DEFAULT_LIFETIME_DAYS, WRITE_SCOPES, token_create


class Command(BaseCommand):
    help = "Create an API token for a user and print it (shown once)."

    def add_arguments(self, parser):
        parser.add_argument("email")
        parser.add_argument("--name", default="cli")
        parser.add_argument(
            "--scope",
            action="append",
            choices=TokenScope.values,
            help="What the token may do; repeat for several "
            f"(default: {', '.join(WRITE_SCOPES)}). read_only stands alone.",
        )
        parser.add_argument(
            "--expires",
            type=int,
            default=DEFAULT_LIFETIME_DAYS,
            metavar="DAYS",
            help=f"Days until the token expires, 1 to 365 (default {DEFAULT_LIFETIME_DAYS}).",
        )

    def handle(self, *args, **options):
        with db_scope(ALL):
            user = User.objects.filter(
                email=options["email"].strip().lower(), is_active=True
            ).first()
            if user is None:
                raise CommandError(f"No active user with the email {options['email']}.")
            try:
                _, key = token_create(
                    user=user,
                    name=options["name"],
                    scopes=options["scope"] or WRITE_SCOPES,
                    lifetime_days=options["expires"],
                )
            except ValidationError as exc:
                raise CommandError(" ".join(exc.messages)) from None
        self.stdout.write(key)
