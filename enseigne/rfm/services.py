"""HQ's RFM settings: the window and the R×F grid of its network."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from enseigne.identity.services import identity_root
from enseigne.network.models import Network, User

from .groups import DEFAULT_GRID, validate_grid
from .models import MAX_WINDOW_MONTHS, RfmPolicy


@transaction.atomic
def rfm_policy_update(
    *, actor: User, grid: object | None = None, window_months: object | None = None
) -> RfmPolicy:
    """Set the network's grid and/or window (HQ managing the customer base only); the
    scores follow in a full run of the network once this commits."""
    try:
        root = identity_root(actor)
    except LookupError:
        raise PermissionDenied(_("Only HQ sets the RFM groups.")) from None
    network = Network.objects.select_for_update().get(node__path=root)
    policy, _created = RfmPolicy.objects.get_or_create(network=network)
    if grid is not None:
        cleaned = validate_grid(grid)
        policy.grid = {} if cleaned == DEFAULT_GRID else cleaned
    if window_months is not None:
        try:
            months = int(str(window_months).strip())
        except ValueError:
            months = 0
        if not 1 <= months <= MAX_WINDOW_MONTHS:
            raise ValidationError(
                _("The window is a whole number of months from 1 to %(most)s.")
                % {"most": MAX_WINDOW_MONTHS}
            )
        policy.window_months = months
    policy.updated_by = actor
    policy.save()
    from .tasks import rfm_full_network

    transaction.on_commit(lambda: rfm_full_network(root))
    return policy
