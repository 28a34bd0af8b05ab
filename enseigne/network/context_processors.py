from django.utils.functional import SimpleLazyObject

from enseigne.network.access import access_for
from enseigne.network.menu import menu_for


def navigation(request):
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    access = access_for(user)
    return {"access": access, "menu": SimpleLazyObject(lambda: menu_for(access))}
