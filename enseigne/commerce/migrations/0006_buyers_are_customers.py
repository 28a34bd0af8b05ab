"""Records with an order become existing customers (order_hooks now keeps the flag; before,
an imported order left "Customer: no" next to its purchases)."""

from django.db import migrations


def flag_buyers(apps, schema_editor):
    Contact = apps.get_model("contacts", "Contact")
    Order = apps.get_model("commerce", "Order")
    buyers = Order.objects.filter(contact__isnull=False).values("contact_id")
    Contact.objects.filter(is_customer=False, pk__in=buyers).update(is_customer=True)


class Migration(migrations.Migration):
    dependencies = [
        ("commerce", "0005_ingest_without_checks"),
        ("contacts", "0017_consent_unit_recorded"),
    ]

    operations = [migrations.RunPython(flag_buyers, migrations.RunPython.noop)]
