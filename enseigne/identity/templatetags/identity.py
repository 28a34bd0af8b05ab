"""What a store's contact page may say of the person behind the record.

The contact page belongs to contacts, which comes before identity and imports nothing of
it; the template asks this tag instead, so the rule stays here, in one place."""

from django import template

from enseigne.identity.selectors import other_units_count

register = template.Library()


@register.simple_tag
def other_units(contact) -> int | None:
    """How many other stores this record's person shops in (one controller mode), or None
    when the network's stores learn nothing of each other (separate controllers)."""
    return other_units_count(contact)
