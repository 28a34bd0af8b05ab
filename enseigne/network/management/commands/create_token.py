from django.core.management.base import BaseCommand, CommandError

from enseigne.network.models import User
from enseigne.network.tokens import token_create


class Command(BaseCommand):
    help = "Create an API token for a user and print it (shown once)."

    def add_arguments(self, parser):
        parser.add_argument("email")
        parser.add_argument("--name", default="cli")

    def handle(self, *args, **options):
        user = User.objects.filter(email=options["email"].strip().lower(), is_active=True).first()
        if user is None:
            raise CommandError(f"No active user with the email {options['email']}.")
        _, key = token_create(user=user, name=options["name"])
        self.stdout.write(key)
