"""`rules` predicates: ``user.has_perm("enseigne.<capability>", node)``."""

import rules

from enseigne.network.access import access_for
from enseigne.network.capabilities import Capability


def _capability_predicate(capability: str):
    @rules.predicate(name=f"has_{capability}")
    def predicate(user, node) -> bool:
        if node is None:
            return access_for(user).can_anywhere(capability)
        return access_for(user).can(capability, node)

    return predicate


for _capability in Capability:
    rules.add_perm(f"enseigne.{_capability.value}", _capability_predicate(_capability.value))
