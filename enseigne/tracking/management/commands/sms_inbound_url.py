from django.conf import settings
from django.core.management.base import BaseCommand
from django.urls import reverse

from enseigne.lib.signing import webhook_key


class Command(BaseCommand):
    help = "Print the secret URL your SMS provider posts replies to (STOP handling)."

    def handle(self, *args, **options):
        self.stdout.write(
            f"{settings.BASE_URL.rstrip('/')}{reverse('inbound_sms', args=[webhook_key('sms')])}"
        )
